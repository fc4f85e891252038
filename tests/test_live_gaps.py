"""Event ids committed out of order on PostgreSQL: a stream never skips a gap.

Ids are drawn when a transaction writes its event and become visible when it commits.
Here a writer holds id N open in its transaction while another commits N+1: the
subscriber must get neither until N is settled, then both in id order (commit), or N+1
alone right after the rollback — without waiting for ``LIVE_GAP_TIMEOUT``. A gap held
longer than that timeout is given up with a warning, the documented limit.

PostgreSQL only: SQLite serialises writers, so its ids always commit in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from fastapi import FastAPI
from fastapi.testclient import TestClient

from testproject.business.models import Company
from tests.factories import make_company
from tests.helpers import auth
from tests.livefeed import HeldWriter, feed_client, ready, subscribe

pytestmark = pytest.mark.postgresql

READ_ANY = ("business.companies.read.any",)


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    yield from feed_client(app, settings)


def test_a_later_id_waits_for_an_earlier_open_one_then_both_arrive_in_order(feed: TestClient) -> None:
    with subscribe(feed, "/companies/subscribe", headers=auth(scopes=READ_ANY)) as reader:
        ready(reader)
        with HeldWriter("first, committed last") as held:
            later = make_company(name="second, committed first")
            assert reader.quiet(1.0) == []  # N+1 is committed, but N may still appear
            held.release(commit=True)
            first, second = reader.changes(2)

    assert [first.data["object_id"], second.data["object_id"]] == [held.company_id, str(later.pk)]
    assert first.id is not None and second.id is not None and first.id < second.id


def delivery_behind_a_rolled_back_gap(
    feed: TestClient, name: str, *, quiet: float, timeout: float
) -> tuple[Any, Company, float, str]:
    """A committed company behind an id held by a writer that then rolls back.

    Returns the event delivered, the company, seconds from the rollback to the event, and
    the rolled-back company's id.
    """
    with subscribe(feed, "/companies/subscribe", headers=auth(scopes=READ_ANY)) as reader:
        ready(reader)
        with HeldWriter(f"rolled back {name}") as held:
            later = make_company(name=f"kept {name}")
            assert reader.quiet(quiet) == []  # the gap holds it back
            released = time.monotonic()
            held.release(commit=False)
            (event,) = reader.changes(1, timeout=timeout)
            waited = time.monotonic() - released
    assert held.company_id is not None
    return event, later, waited, held.company_id


def test_a_rolled_back_gap_is_settled_at_once(feed: TestClient) -> None:
    event, later, waited, rolled_back = delivery_behind_a_rolled_back_gap(feed, "alone", quiet=1.0, timeout=5)

    assert event.data["object_id"] == str(later.pk)
    assert waited < 5  # settled by the rollback, not by LIVE_GAP_TIMEOUT (30 s)
    assert not Company.objects.filter(pk=rolled_back).exists()


def test_a_gap_held_beyond_the_timeout_is_given_up_with_a_warning(
    feed: TestClient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "LIVE_GAP_TIMEOUT": 1.0}
    with (
        caplog.at_level(logging.WARNING, logger="djfapi.live"),
        subscribe(feed, "/companies/subscribe", headers=auth(scopes=READ_ANY)) as reader,
    ):
        ready(reader)
        with HeldWriter("held too long") as held:
            later = make_company(name="delivered after the timeout")
            (event,) = reader.changes(1, timeout=10)
            held.release(commit=True)

    assert event.data["object_id"] == str(later.pk)
    assert held.company_id is not None
    assert any("stayed missing" in record.getMessage() for record in caplog.records), caplog.text


def test_an_unrelated_long_transaction_does_not_hold_a_gap_back(feed: TestClient) -> None:
    """Another connection writing elsewhere (a batch job, a migration) keeps its xid open
    for the whole test: the gap behind a rolled-back event is still settled at once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        database = cursor.fetchone()[0]
    settings_dict = connection.settings_dict
    other = psycopg.connect(
        dbname=database,
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=settings_dict["USER"] or None,
        password=settings_dict["PASSWORD"] or None,
    )
    try:
        other.execute("CREATE TEMPORARY TABLE batch (n int)")
        other.execute("INSERT INTO batch VALUES (1)")  # holds an xid until the end of the test
        event, later, waited, _ = delivery_behind_a_rolled_back_gap(feed, "beside a batch job", quiet=0.5, timeout=10)
    finally:
        other.rollback()
        other.close()

    assert event.data["object_id"] == str(later.pk)
    assert waited < 5  # not LIVE_GAP_TIMEOUT (30 s): the batch job never wrote to the outbox


def test_many_concurrent_writers_lose_no_event(feed: TestClient) -> None:
    """Writers that commit out of id order, for a while: every event arrives once, in id order."""
    writers, per_writer = 6, 40
    created: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            for i in range(per_writer):
                with transaction.atomic():
                    company = make_company(name=f"w{number} {i}")
                    time.sleep(0.001 * ((number + i) % 4))  # commit order differs from id order
                with lock:
                    created.append(str(company.pk))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    with subscribe(feed, "/companies/subscribe", headers=auth(scopes=READ_ANY)) as reader:
        ready(reader)
        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        events = reader.changes(writers * per_writer, timeout=60)
        assert reader.quiet(0.5) == []

    ids = [event.id for event in events]
    assert ids == sorted(set(ids))
    assert sorted(event.data["object_id"] for event in events) == sorted(created)

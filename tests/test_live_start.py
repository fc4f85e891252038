"""Where a stream without a position starts: at the moment it subscribes.

Everything committed by then is history and is not sent; everything that commits
afterwards is. Event ids do not say which is which: an id is drawn when a transaction
writes its event and becomes visible when it commits, so a transaction still open at
subscription time may commit an id *below* one that committed before. And the hub's
horizon lags behind commits: held back by such an open id (or by one that was rolled
back, until the hub has seen it settle), or not woken yet by a commit in another
process. Today's mistake was to start a new stream at the horizon, so that the older
events above it arrived after ``ready``.

On PostgreSQL the tests use real concurrent transactions (``HeldWriter``). On SQLite a
rolled-back id leaves no gap (``AUTOINCREMENT`` is rolled back too) and writers take
turns, so the lag there comes from a write made by another process — a management
command, say — whose wake-up cannot reach this process (``LIVE_POLL_INTERVAL`` is set
far beyond the test); that test runs on both databases.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Max
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.live.models import ChangeEvent
from djfapi.live.outbox import Origin
from tests.factories import make_company
from tests.helpers import TENANT, auth
from tests.live.server import REPO_ROOT, database_url, server_environment
from tests.livefeed import Frame, HeldWriter, feed_client, ready, subscribe

READ_ANY = ("business.companies.read.any",)
PATH = "/companies/subscribe"


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    yield from feed_client(app, settings)


def names(frames: list[Frame]) -> list[str]:
    """The names of the companies the INSERT events carry."""
    return [frame.data["data"]["name"] for frame in frames]


@pytest.mark.postgresql
@pytest.mark.parametrize("commit", [True, False], ids=["held id commits after", "held id rolls back"])
@pytest.mark.parametrize("running", [False, True], ids=["hub starting", "hub running"])
def test_a_new_subscriber_gets_what_commits_after_it_even_below_what_committed_before(
    feed: TestClient, running: bool, commit: bool
) -> None:
    """Id N is held open, N+1 commits, then a subscriber arrives — the process's first (its
    hub starts behind the open id: the issue's case) or a second one. N+1 is history to
    it; N, if it commits now, is not. A subscriber that was there first gets everything,
    in id order."""
    headers = auth(scopes=READ_ANY)
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(subscribe(feed, PATH, headers=headers)) if running else None
        if first is not None:
            ready(first)
        with HeldWriter("held") as held:
            make_company(name="older")  # commits above the open id
            with subscribe(feed, PATH, headers=headers) as reader:
                ready(reader)
                held.release(commit=commit)
                make_company(name="newer")
                expected = ["held", "newer"] if commit else ["newer"]
                received = reader.changes(len(expected))
                received += reader.quiet(0.5)
        everything = first.changes(3 if commit else 2) if first is not None else []
        assert first is None or first.quiet(0.3) == []

    assert names(received) == expected
    if first is not None:
        assert names(everything) == [*(["held"] if commit else []), "older", "newer"]
        assert [frame.id for frame in everything] == sorted({frame.id for frame in everything})


def write_in_another_process() -> None:
    """A rolled-back company, then a committed one ("older"), written by a separate
    Python process on the test database (as a management command would)."""
    name = connection.settings_dict["NAME"]
    url = f"sqlite:///{name}" if connection.vendor == "sqlite" else database_url(name)
    script = (
        "import django\n"
        "django.setup()\n"
        "import testproject.api  # the router tree: what the feed captures\n"
        "from django.db import transaction\n"
        "from testproject.business.models import Company\n"
        "with transaction.atomic():\n"
        f"    Company.objects.create(tenant_id={TENANT!r}, name='rolled back')\n"
        "    transaction.set_rollback(True)\n"
        f"Company.objects.create(tenant_id={TENANT!r}, name='older')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=server_environment(url, DJANGO_SETTINGS_MODULE="tests.settings", PYTHONWARNINGS="ignore"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_a_new_subscriber_skips_what_another_process_committed_before_it(feed: TestClient, settings: Any) -> None:
    """The hub has not heard of the other process's commit when the second subscriber
    arrives (SQLite's wake-ups are in-process, the safety poll is a minute away): that
    commit is history to it all the same; it is news to the first subscriber."""
    settings.DJFAPI = {**settings.DJFAPI, "LIVE_POLL_INTERVAL": 60}
    headers = auth(scopes=READ_ANY)
    with subscribe(feed, PATH, headers=headers) as first:
        ready(first)
        write_in_another_process()
        with subscribe(feed, PATH, headers=headers) as second:
            ready(second)
            make_company(name="newer")
            received = second.changes(1)
            received += second.quiet(0.5)
        everything = first.changes(2)

    assert names(received) == ["newer"]
    assert names(everything) == ["older", "newer"]


def test_ready_names_the_newest_event_once_the_ids_below_it_are_settled(feed: TestClient) -> None:
    """The position ``ready`` gives is the newest event, not a point below ids that were
    rolled back (or pruned): a client resuming from it is not sent older events."""
    with transaction.atomic():
        make_company(name="rolled back")  # burns an id on PostgreSQL
        transaction.set_rollback(True)
    make_company(name="older")
    newest = ChangeEvent.objects.aggregate(newest=Max("id"))["newest"]

    with subscribe(feed, PATH, headers=auth(scopes=READ_ANY)) as reader:
        start = ready(reader)
        make_company(name="newer")
        received = reader.changes(1)

    assert start.id == newest
    assert names(received) == ["newer"]


def test_an_origin_tells_history_from_the_ids_that_may_still_commit() -> None:
    origin = Origin(after=10, through=20, missing=((12, 13), (17, 17)))  # 11, 14-16, 18-20 had committed

    assert origin.position == 11
    assert [event_id for event_id in range(9, 23) if not origin.is_history(event_id)] == [12, 13, 17, 21, 22]
    assert origin.settled(None) == Origin(20, 20)  # all rolled back: start after the newest
    assert origin.settled(13) == Origin(12, 20, ((13, 13), (17, 17)))  # 12 rolled back, 13 committed late
    assert origin.settled(17).position == 16

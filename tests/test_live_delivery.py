"""How the change feed delivers (``djfapi.live``): resuming without loss or duplicates,
retention and pruning, keep-alives, token expiry, slow readers, and the WebSocket variant.
"""

from __future__ import annotations

import datetime
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.live import prune_events
from djfapi.live.models import ChangeEvent, PruneMark
from testproject.business.models import Company
from tests.factories import make_company, make_department
from tests.helpers import OTHER_TENANT, auth
from tests.livefeed import SSEReader, feed_client, parse_lines, ready, subscribe


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    yield from feed_client(app, settings)


def rename(company: Company, name: str) -> None:
    company.name = name
    company.save()


def ids(frames: list[Any]) -> list[int]:
    return [frame.id for frame in frames]


# -- resuming -----------------------------------------------------------------------------


def test_reconnecting_with_last_event_id_replays_what_was_missed_then_goes_live(feed: TestClient) -> None:
    company = make_company()
    path = f"/companies/{company.pk}/departments/subscribe"
    with subscribe(feed, path, headers=auth()) as reader:
        ready(reader)
        for number in range(2):
            make_department(company, name=f"seen {number}")
        seen = reader.changes(2)
    missed = [make_department(company, name=f"missed {number}") for number in range(5)]
    make_department(make_company(name="Other"))  # not for this stream

    with subscribe(feed, path, headers={**auth(), "Last-Event-ID": str(seen[-1].id)}) as reader:
        assert ready(reader).id == seen[-1].id
        replayed = reader.changes(5)
        live = make_department(company, name="live")
        (after,) = reader.changes(1)

    assert [f.data["object_id"] for f in replayed] == [str(d.pk) for d in missed]
    assert ids(replayed) == sorted(set(ids(replayed))) and replayed[0].id > seen[-1].id
    assert (after.data["object_id"], after.id > replayed[-1].id) == (str(live.pk), True)


def test_a_long_gap_is_replayed_from_the_outbox_in_pages_by_another_process(app: FastAPI, feed: TestClient) -> None:
    company = make_company()
    path = f"/companies/{company.pk}/departments/subscribe"
    with subscribe(feed, path, headers=auth()) as reader:
        position = ready(reader).id
    missed = [make_department(company, name=f"missed {number}") for number in range(130)]

    with TestClient(app) as fresh, subscribe(fresh, f"{path}?last_event_id={position}", headers=auth()) as reader:
        ready(reader)
        replayed = reader.changes(130)

    assert [f.data["object_id"] for f in replayed] == [str(d.pk) for d in missed]
    assert ids(replayed) == sorted(set(ids(replayed)))


def test_the_last_event_id_header_wins_over_the_query_parameter(feed: TestClient) -> None:
    company = make_company()
    first = ChangeEvent.objects.get().id
    rename(company, "one")
    second = ChangeEvent.objects.latest("id").id
    rename(company, "two")

    path = f"/companies/subscribe?last_event_id={first}"
    with subscribe(feed, path, headers={**auth(), "Last-Event-ID": str(second)}) as reader:
        assert ready(reader).id == second
        (frame,) = reader.changes(1)

    assert frame.data["data"]["name"] == "two"


def test_a_websocket_resumes_with_since(feed: TestClient) -> None:
    company = make_company()
    with feed.websocket_connect("/companies/subscribe", headers=auth()) as websocket:
        position = websocket.receive_json()["id"]
    rename(company, "while away")

    with feed.websocket_connect(f"/companies/subscribe?since={position}", headers=auth()) as websocket:
        assert websocket.receive_json() == {"event": "ready", "id": position}
        message = websocket.receive_json()

    assert (message["event"], message["object_id"], message["data"]["name"]) == (
        "UPDATE",
        str(company.pk),
        "while away",
    )
    assert message["id"] > position


# -- retention and pruning -------------------------------------------------------------------


def test_resuming_from_before_the_retention_window_is_a_reset(feed: TestClient) -> None:
    company = make_company()
    with subscribe(feed, "/companies/subscribe", headers=auth()) as reader:
        position = ready(reader).id
    for number in range(3):
        rename(company, f"pruned {number}")
    assert prune_events(0) == 3  # all but the newest

    with subscribe(feed, "/companies/subscribe", headers={**auth(), "Last-Event-ID": str(position)}) as reader:
        reset = ready(reader)
        rename(company, "after the reset")
        (frame,) = reader.changes(1)

    assert reset.event == "reset"
    assert reset.data["reason"] == "retention" and "reload" in reset.data["message"]
    assert position < reset.id < frame.id  # carries on from now
    assert frame.data["data"]["name"] == "after the reset"


def test_resuming_from_an_unknown_position_is_a_reset(feed: TestClient) -> None:
    make_company()

    with subscribe(feed, "/companies/subscribe?last_event_id=999999999", headers=auth()) as reader:
        reset = ready(reader)

    assert (reset.event, reset.data["reason"]) == ("reset", "unknown_position")


def test_resuming_within_the_window_after_a_prune_is_not_a_reset(feed: TestClient) -> None:
    company = make_company()
    rename(company, "old")
    prune_events(0)
    position = ChangeEvent.objects.get().id

    with subscribe(feed, f"/companies/subscribe?last_event_id={position}", headers=auth()) as reader:
        assert ready(reader).event == "ready"


def test_prune_events_deletes_what_is_older_than_the_retention_and_keeps_the_newest(
    transactional_db: None, settings: Any
) -> None:
    company = make_company()
    for number in range(4):
        rename(company, str(number))
    newest = ChangeEvent.objects.latest("id").id
    settings.DJFAPI = {**settings.DJFAPI, "LIVE_RETENTION": 3600}

    assert prune_events() == 0  # all younger than an hour
    assert prune_events(now=timezone.now() + datetime.timedelta(hours=2)) == 4
    assert list(ChangeEvent.objects.values_list("id", flat=True)) == [newest]
    assert PruneMark.objects.get().pruned_through == newest - 1
    assert prune_events(0) == 0  # the newest always stays


def test_the_prune_command(transactional_db: None) -> None:
    company = make_company()
    rename(company, "again")
    out = io.StringIO()

    call_command("djfapi_prune_events", "--older-than", "0", stdout=out)

    assert out.getvalue().strip() == "Deleted 1 change events older than 0 seconds."
    assert ChangeEvent.objects.count() == 1


def test_streams_prune_the_outbox_while_they_run(feed: TestClient, settings: Any) -> None:
    company = make_company()
    for number in range(3):
        rename(company, str(number))
    settings.DJFAPI = {**settings.DJFAPI, "LIVE_RETENTION": 0, "LIVE_PRUNE_INTERVAL": 0.2}

    with subscribe(feed, "/companies/subscribe", headers=auth()) as reader:
        ready(reader)
        deadline = time.monotonic() + 5
        while ChangeEvent.objects.count() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)

    assert ChangeEvent.objects.count() == 1


# -- keep-alives, expiry, slow readers ----------------------------------------------------------


def test_idle_streams_get_keep_alive_comments(feed: TestClient) -> None:
    with subscribe(feed, "/companies/subscribe", headers=auth()) as reader:
        ready(reader)
        started = time.monotonic()
        pings = [reader.until(lambda f: f.comments == ["ping"], timeout=3)[-1] for _ in range(3)]

    assert all(frame.event is None and frame.data is None for frame in pings)
    assert time.monotonic() - started < 2.5  # every LIVE_HEARTBEAT (0.3 s here), not FastAPI's 15 s


def test_keep_alives_move_the_position_past_events_the_subscriber_may_not_see(feed: TestClient) -> None:
    theirs = make_company(tenant=OTHER_TENANT)

    with subscribe(feed, "/companies/subscribe", headers=auth()) as reader:
        start = ready(reader).id
        rename(theirs, "not for this subscriber")
        moved = reader.until(lambda f: f.id is not None, timeout=3)[-1]

    assert moved.event is None and moved.comments == ["ping"]
    assert moved.id == ChangeEvent.objects.latest("id").id > start


def test_websocket_keep_alives_are_ping_messages(feed: TestClient) -> None:
    with feed.websocket_connect("/companies/subscribe", headers=auth()) as websocket:
        position = websocket.receive_json()["id"]
        assert websocket.receive_json() == {"event": "ping", "id": position}


def test_the_stream_ends_when_the_token_expires(feed: TestClient) -> None:
    company = make_company()
    with subscribe(feed, "/companies/subscribe", headers=auth(expires=2)) as reader:
        ready(reader)
        rename(company, "before expiry")
        reader.changes(1)
        frames = reader.drain_until_end(timeout=5)

    assert frames[-1].event == "close"
    assert frames[-1].data == {"event": "close", "reason": "token_expired", "message": frames[-1].data["message"]}


def test_a_websocket_is_closed_with_4401_when_the_token_expires(feed: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with feed.websocket_connect("/companies/subscribe", headers=auth(expires=1)) as websocket:
        messages = [websocket.receive_json()]
        while messages[-1]["event"] != "close":
            messages.append(websocket.receive_json())
        with pytest.raises(WebSocketDisconnect) as closed:
            websocket.receive_json()

    assert messages[-1]["reason"] == "token_expired"
    assert (closed.value.code, closed.value.reason) == (4401, "token_expired")


def test_a_reader_that_stops_reading_is_closed_and_resumes_without_loss(feed: TestClient, settings: Any) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "LIVE_SEND_TIMEOUT": 0.5}
    company = make_company()

    with feed.stream("GET", "/companies/subscribe", headers=auth()) as response:
        chunks = response.iter_bytes()
        (opening,) = parse_lines(iter(next(chunks).decode().split("\n")))
        for number in range(3):
            rename(company, f"unread {number}")
        time.sleep(1.0)  # longer than the send timeout: the stream gives up on us
        rest = b"".join(chunks).decode()

    closing = list(parse_lines(iter(rest.split("\n"))))
    assert closing[-1].event == "close" and closing[-1].data["reason"] == "slow_consumer"
    assert not any(frame.is_change for frame in closing)  # the event it was stuck on was not sent

    with subscribe(feed, "/companies/subscribe", headers={**auth(), "Last-Event-ID": str(opening.id)}) as reader:
        ready(reader)
        resumed = reader.changes(3)

    assert [f.data["data"]["name"] for f in resumed] == ["unread 2"] * 3  # rendered as it is now
    assert ids(resumed) == sorted(set(ids(resumed)))


def test_websocket_messages_are_the_sse_events_json(feed: TestClient) -> None:
    company = make_company()
    with (
        feed.websocket_connect("/companies/subscribe", headers=auth()) as websocket,
        subscribe(feed, "/companies/subscribe", headers=auth()) as reader,
    ):
        websocket.receive_json()
        ready(reader)
        rename(company, "both")
        (frame,) = reader.changes(1)
        message = websocket.receive_json()
        while message["event"] == "ping":
            message = websocket.receive_json()

    assert message == frame.data


def test_a_reader_thread_sees_everything_the_stream_sent(feed: TestClient) -> None:
    # The SSEReader itself: frames are parsed as a browser parses them.
    frames = list(parse_lines(iter(["event: x", "id: 3", 'data: {"a":', "data: 1}", "", ": c", ""])))

    assert [(f.event, f.id, f.data, f.comments) for f in frames] == [("x", 3, {"a": 1}, []), (None, None, None, ["c"])]
    assert SSEReader  # used by the other tests

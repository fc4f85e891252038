"""The change feed across processes: two real uvicorn servers on one PostgreSQL database.

A subscriber holds an event stream open on server A while writes go through server B.
The safety poll is set to a minute, far beyond the wait, so an event that arrives came
by the wake-up carrier under test: PostgreSQL ``LISTEN/NOTIFY`` by default, Redis
pub/sub with ``DJFAPI_LIVE_REDIS_URL``. Both servers run the demo (``tests.live.app``)
on a copy of the seeded database; the Redis test uses a channel of its own, so that
parallel runs on the machine's shared Redis do not wake each other.

PostgreSQL only: SQLite cannot be shared by two servers in a way worth testing, and
on SQLite the feed is in-process (see ``test_live_events``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from testproject.seed import DEMO_TENANT, DEMO_USER
from tests.helpers import OTHER_TENANT, auth
from tests.live.figures import record
from tests.live.server import LiveServer, live_databases, start_server
from tests.livefeed import ready, subscribe

pytestmark = pytest.mark.postgresql

REDIS_URL = "redis://127.0.0.1:6379/0"
NO_POLL = "60"  # seconds: the safety poll cannot be what delivers within WAIT
WAIT = 10.0


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-processes")


@contextlib.contextmanager
def two_servers(config: pytest.Config, log_dir: Path, label: str, **env: str) -> Iterator[tuple[LiveServer, ...]]:
    """Two servers on one fresh copy of the seeded database; both stopped, the copy dropped, afterwards."""
    databases = live_databases(config)
    database = databases.create(label)
    servers: list[LiveServer] = []
    try:
        for name in ("a", "b"):
            servers.append(
                start_server(database, log_dir, label=f"{label}-{name}", DJFAPI_LIVE_POLL_INTERVAL=NO_POLL, **env)
            )
        yield tuple(servers)
    finally:
        for server in servers:
            server.stop()
        databases.drop(database)


def client_of(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(30.0, read=None))


def assert_delivered_across(writer: LiveServer, reader_server: LiveServer, carrier: str, config: pytest.Config) -> None:
    """A company created on ``writer`` reaches a subscriber of ``reader_server``; others' do not."""
    with (
        client_of(reader_server) as reading,
        client_of(writer) as writing,
        subscribe(reading, "/companies/subscribe", headers=auth(DEMO_TENANT, DEMO_USER)) as reader,
    ):
        start = ready(reader).id
        foreign = writing.post("/companies", json={"name": "Not yours"}, headers=auth(OTHER_TENANT))
        assert foreign.status_code == 201, foreign.text
        sent_at = time.monotonic()
        mine = writing.post(
            "/companies", json={"name": f"Made on B {uuid.uuid4().hex[:6]}"}, headers=auth(DEMO_TENANT, DEMO_USER)
        )
        assert mine.status_code == 201, mine.text

        (event,) = reader.changes(1, timeout=WAIT)
        latency = time.monotonic() - sent_at
        assert event.event == "INSERT"
        assert event.data["object_id"] == mine.json()["id"]
        assert event.data["data"] == mine.json()
        assert start is not None and event.id is not None and event.id > start
        assert reader.quiet(0.5) == []  # the other tenant's company never arrives

    record(config, f"change feed across processes ({carrier}): delivered in {latency * 1000:.0f} ms")


def test_a_write_on_one_process_reaches_subscribers_of_another_by_notify(
    request: pytest.FixtureRequest, log_dir: Path
) -> None:
    with two_servers(request.config, log_dir, "notify") as (a, b):
        assert_delivered_across(b, a, "LISTEN/NOTIFY", request.config)
        assert_delivered_across(a, b, "LISTEN/NOTIFY", request.config)


def test_redis_carries_the_wake_ups_when_configured(request: pytest.FixtureRequest, log_dir: Path) -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {REDIS_URL} is not answering (the machine provides it): {error}")
    channel = f"djfapi_test_{uuid.uuid4().hex[:8]}"
    with two_servers(
        request.config, log_dir, "redis", DJFAPI_LIVE_REDIS_URL=REDIS_URL, DJFAPI_LIVE_CHANNEL=channel
    ) as (a, b):
        assert_delivered_across(b, a, "Redis pub/sub", request.config)


def test_a_subscriber_that_reconnects_to_the_other_process_misses_nothing(
    request: pytest.FixtureRequest, log_dir: Path
) -> None:
    """Last-Event-ID is a position in the shared outbox: it means the same on every process."""
    headers = auth(DEMO_TENANT, DEMO_USER)
    with two_servers(request.config, log_dir, "resume") as (a, b), client_of(a) as on_a, client_of(b) as on_b:
        with subscribe(on_a, "/companies/subscribe", headers=headers) as reader:
            ready(reader)
            first = on_b.post("/companies", json={"name": "Before the drop"}, headers=headers).json()
            (seen,) = reader.changes(1, timeout=WAIT)
        missed = [on_b.post("/companies", json={"name": f"Missed {i}"}, headers=headers).json() for i in range(3)]

        resumed: list[Any] = []
        with subscribe(on_b, "/companies/subscribe", headers={**headers, "Last-Event-ID": str(seen.id)}) as reader:
            ready(reader)
            resumed = reader.changes(3, timeout=WAIT)
            assert reader.quiet(0.5) == []

    assert seen.data["object_id"] == first["id"]
    assert [event.data["object_id"] for event in resumed] == [company["id"] for company in missed]
    assert [event.id for event in resumed] == sorted({event.id for event in resumed})

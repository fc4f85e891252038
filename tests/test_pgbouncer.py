"""The demo behind a real PgBouncer in transaction-pooling mode (``.ci/pgbouncer``).

* The change feed's ``LISTEN`` needs a session of its own, which transaction pooling
  does not give: through PgBouncer the listener's server connection goes back to the
  pool after the ``LISTEN`` and the wake-ups are lost (refused case: nothing arrives
  while the safety poll sleeps). With ``DJFAPI["LIVE_LISTEN_DSN"]`` pointing the
  listener straight at PostgreSQL, the same write arrives at once; every other query
  of that server still goes through PgBouncer.
* Connection budget: the server's threads hold up to ``THREADPOOL_SIZE`` client
  connections to PgBouncer, while PostgreSQL sees at most PgBouncer's pool.

The whole PostgreSQL half of the suite also runs through a PgBouncer in CI (the third
pass of ``.ci/run``); this module starts one of its own, so it runs in every pass.
PostgreSQL only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from testproject.seed import DEMO_TENANT, DEMO_USER
from tests.helpers import auth
from tests.live.figures import record
from tests.live.server import (
    REPO_ROOT,
    Call,
    LiveServer,
    database_url,
    drive,
    live_databases,
    start_server,
    unexpected,
)
from tests.livefeed import ready, subscribe

pytestmark = pytest.mark.postgresql

NO_POLL = "60"
WAIT = 10.0
POOL_SIZE = 4


def direct_route() -> tuple[str, int]:
    """Host and port of PostgreSQL itself (in CI's PgBouncer pass, DATABASE_URL is PgBouncer)."""
    listen = os.environ.get("DJFAPI_LIVE_LISTEN_DSN")
    if listen:
        params = conninfo_to_dict(listen)
        return str(params.get("host", "127.0.0.1")), int(params.get("port", 5432))
    url = urlsplit(os.environ["DATABASE_URL"])
    return url.hostname or "127.0.0.1", url.port or 5432


@pytest.fixture(scope="module")
def pgbouncer() -> Iterator[int]:
    """A PgBouncer of this module's own on a free port, in front of PostgreSQL itself."""
    if shutil.which("pgbouncer") is None and not Path("/usr/sbin/pgbouncer").exists() and os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PgBouncer is not installed (CI=true: .ci/run installs it)")
        pytest.skip("PgBouncer is not installed (apt-get install pgbouncer)")
    # Not pytest's tmp_path: as root PgBouncer runs as "postgres", which may not enter it.
    directory = Path(tempfile.mkdtemp(prefix="djfapi-pgbouncer-", dir="/tmp"))
    host, port = direct_route()
    assert host in ("127.0.0.1", "localhost"), "the test's PgBouncer forwards to 127.0.0.1"
    script = str(REPO_ROOT / ".ci" / "pgbouncer")
    env = {**os.environ, "PGBOUNCER_UPSTREAM_PORT": str(port), "PGBOUNCER_POOL_SIZE": str(POOL_SIZE)}
    started = subprocess.run([script, "start", str(directory)], capture_output=True, text=True, env=env, timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield int(started.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run([script, "stop", str(directory)], capture_output=True, timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pgbouncer-servers")


def through(pgbouncer: int, database: str) -> str:
    return database_url(database, port=pgbouncer)


def direct_dsn() -> str:
    host, port = direct_route()
    return f"host={host} port={port}"


def delivered_within(reader_server: LiveServer, writer_server: LiveServer, seconds: float) -> bool:
    """Whether a company made on ``writer_server`` reaches a subscriber of ``reader_server`` in time."""
    timeout = httpx.Timeout(30.0, read=None)
    with (
        httpx.Client(base_url=reader_server.base_url, timeout=timeout) as reading,
        httpx.Client(base_url=writer_server.base_url, timeout=timeout) as writing,
        subscribe(reading, "/companies/subscribe", headers=auth(DEMO_TENANT, DEMO_USER)) as reader,
    ):
        ready(reader)
        time.sleep(0.5)  # the hub's listener connects after the stream opens
        made = writing.post(
            "/companies", json={"name": f"Pooled {uuid.uuid4().hex[:6]}"}, headers=auth(DEMO_TENANT, DEMO_USER)
        )
        assert made.status_code == 201, made.text
        changes = reader.quiet(seconds)
        return any(change.data["object_id"] == made.json()["id"] for change in changes)


class ClientWatch:
    """The peak number of PgBouncer's client connections to ``database`` (its admin console's SHOW CLIENTS)."""

    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url = admin_url
        self.database = database
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="pgbouncer clients", daemon=True)

    def _sample(self) -> None:
        # The admin console speaks only the simple query protocol: a client-side cursor.
        with psycopg.connect(self.admin_url, autocommit=True, cursor_factory=psycopg.ClientCursor) as admin:
            while not self._stop.is_set():
                rows = admin.execute("SHOW CLIENTS").fetchall()
                self.peak = max(self.peak, sum(1 for row in rows if row[2] == self.database))
                time.sleep(0.01)

    def __enter__(self) -> ClientWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_the_feed_listens_past_pgbouncer_only_with_a_direct_dsn(
    request: pytest.FixtureRequest, pgbouncer: int, log_dir: Path
) -> None:
    databases = live_databases(request.config)
    database = databases.create("pgbouncer-feed")
    servers: list[LiveServer] = []
    try:
        pooled = {"DJFAPI_LIVE_POLL_INTERVAL": NO_POLL, "DJFAPI_DISABLE_SERVER_SIDE_CURSORS": "1"}
        writer = start_server(database, log_dir, url=through(pgbouncer, database), label="writer", **pooled)
        blind = start_server(
            database, log_dir, url=through(pgbouncer, database), label="blind", DJFAPI_LIVE_LISTEN_DSN="", **pooled
        )
        direct = start_server(
            database,
            log_dir,
            url=through(pgbouncer, database),
            label="direct",
            DJFAPI_LIVE_LISTEN_DSN=direct_dsn(),
            **pooled,
        )
        servers += [writer, blind, direct]
        # LISTEN through transaction pooling: the wake-up is lost, only the (60 s) poll would find it.
        assert not delivered_within(blind, writer, 3.0)
        # The same server set-up with the listener on a direct connection: delivered.
        assert delivered_within(direct, writer, WAIT)
    finally:
        for server in servers:
            server.stop()
        databases.drop(database)


def test_postgresql_sees_pgbouncer_s_pool_not_the_server_s_threads(
    request: pytest.FixtureRequest, pgbouncer: int, log_dir: Path
) -> None:
    databases = live_databases(request.config)
    database = databases.create("pgbouncer-budget")
    threads = 16
    server = start_server(
        database,
        log_dir,
        url=through(pgbouncer, database),
        label="budget",
        threadpool_size=threads,
        DJFAPI_DISABLE_SERVER_SIDE_CURSORS="1",
    )
    try:
        reader = auth(DEMO_TENANT, DEMO_USER)
        calls = [Call("GET", "/live/slow?seconds=0.05", 200) for _ in range(100)]
        calls += [Call("GET", "/companies?limit=20", 200, headers=reader) for _ in range(100)]
        clients = ClientWatch(through(pgbouncer, "pgbouncer"), database)
        with clients, server.watch() as watch:
            outcomes = drive(server.base_url, calls, concurrency=32)
        assert unexpected(outcomes) == []
        assert clients.peak > watch.peak  # more connections held by the app than PostgreSQL ever saw
        assert 0 < watch.peak <= POOL_SIZE, f"PostgreSQL saw {watch.peak} connections at once"
        record(
            request.config,
            f"through PgBouncer (transaction pooling, pool {POOL_SIZE}), {threads} threads, 32 requests in flight: "
            f"up to {clients.peak} client connections to PgBouncer, at most {watch.peak} on PostgreSQL",
        )
    finally:
        server.stop()
        databases.drop(database)

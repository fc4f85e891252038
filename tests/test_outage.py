"""Database outages under a live uvicorn (SPEC §7): 503 with the error body, then recovery.

The database "goes away" for a running server in two ways that PostgreSQL itself
offers, on the server's own database only:

* ``ALTER DATABASE ... ALLOW_CONNECTIONS false`` plus ``pg_terminate_backend`` of the
  server's connections: every connection attempt is refused ("database is not
  currently accepting connections") until ``ALLOW_CONNECTIONS true``: the database
  comes back without the app restarting.
* ``pg_terminate_backend`` in a tight loop while a load runs: requests in flight lose
  their connection mid-query.

And one that cannot come back: a server configured with a port where nothing listens.
Each case runs for ``CONN_MAX_AGE=0``, ``CONN_MAX_AGE=60`` (with health checks) and
Django's connection pool. A health endpoint is not part of this (another issue).
PostgreSQL only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testproject.seed import DEMO_TENANT, DEMO_USER
from tests.helpers import auth
from tests.live.figures import record
from tests.live.server import (
    Call,
    LiveServer,
    Outcome,
    admin_connection,
    database_url,
    drive,
    running_server,
    unexpected,
)

pytestmark = pytest.mark.postgresql

SETUPS: dict[str, dict[str, str]] = {
    "CONN_MAX_AGE=0": {},
    "CONN_MAX_AGE=60": {"CONN_MAX_AGE": "60", "CONN_HEALTH_CHECKS": "1"},
    "pool": {
        "DJFAPI_DB_POOL": "1",
        "DJFAPI_DB_POOL_MAX_SIZE": "4",
        "DJFAPI_DB_POOL_TIMEOUT": "1",
        "CONN_HEALTH_CHECKS": "1",
    },
}
SETUP_NAMES = {"out0": "CONN_MAX_AGE=0", "out60": "CONN_MAX_AGE=60", "outpool": "pool"}
LEAKS = ("Traceback", "psycopg", "OperationalError", "FATAL", "SELECT", "djfapi_live_", "5432", "postgres")


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outage")


@pytest.fixture(scope="module", params=list(SETUPS))
def server(request: pytest.FixtureRequest, log_dir: Path) -> Iterator[LiveServer]:
    setup = request.param
    label = {name: label for label, name in SETUP_NAMES.items()}[setup]
    with running_server(request.config, log_dir, label, **SETUPS[setup]) as live:
        yield live


def calls(count: int = 100) -> list[Call]:
    """Requests that need the database (200) and some that do not (401, 422, 404 route)."""
    reader = auth(DEMO_TENANT, DEMO_USER)
    needs_database = [
        Call("GET", "/companies", 200, headers=reader),
        Call("GET", "/companies?status=active&order_by=-name", 200, headers=reader),
        Call("POST", "/companies", 201, {"name": "During the outage?"}, reader),
    ]
    without_database = [
        Call("GET", "/companies", 401),
        Call("GET", "/companies?limit=0", 422, headers=reader),
        Call("GET", "/nowhere", 404),
    ]
    pattern = needs_database * 2 + without_database
    return [pattern[index % len(pattern)] for index in range(count)]


def set_connections_allowed(database: str, allowed: bool) -> None:
    with admin_connection() as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')


def assert_unavailable(outcome: Outcome) -> None:
    """A SPEC §7 503 that says nothing about the database."""
    assert outcome.status == 503, (outcome.call, outcome.status, outcome.body[:300])
    body = json.loads(outcome.body)
    assert set(body) <= {"detail", "event_id"}, body
    assert set(body["detail"]) == {"type", "code", "message", "detail"}, body
    assert body["detail"]["type"] == "service_unavailable", body
    text = outcome.body.decode()
    for leak in LEAKS:
        assert leak not in text, (leak, text)


def wait_until_serving(server: LiveServer, timeout: float = 15.0) -> tuple[float, int]:
    """Seconds until ``GET /companies`` is a 200 again, and how many 503s came before."""
    reader = auth(DEMO_TENANT, DEMO_USER)
    started = time.monotonic()
    refused = 0
    while True:
        response = httpx.get(f"{server.base_url}/companies", headers=reader, timeout=30)
        if response.status_code == 200:
            return time.monotonic() - started, refused
        assert response.status_code == 503, response.text
        refused += 1
        assert time.monotonic() - started < timeout, "the app did not recover"
        time.sleep(0.1)


def test_outage_is_503_and_the_app_recovers_without_a_restart(
    request: pytest.FixtureRequest, server: LiveServer
) -> None:
    """Connections refused: every request that needs the database is a 503 with the SPEC
    body (no 500, no traceback, nothing about the database); the others keep their own
    answers. Then the database accepts connections again and the same process serves.

    Without djfapi's ``OperationalError`` handler these would be 500 ``internal_error``
    (the catch-all), and without the catch-all uvicorn's plain-text 500.
    """
    assert unexpected(drive(server.base_url, calls(30))) == []
    log_before = len(server.log())

    set_connections_allowed(server.database, False)
    try:
        server.watch().terminate()
        during = drive(server.base_url, calls(24 if "DJFAPI_DB_POOL" in server.env else 100), timeout=60)
    finally:
        set_connections_allowed(server.database, True)
    seconds, refused = wait_until_serving(server)
    after = drive(server.base_url, calls())

    for outcome in during:
        if outcome.call.expect in (200, 201):
            assert_unavailable(outcome)
        else:
            assert outcome.status == outcome.call.expect, (outcome.call, outcome.status)
    assert server.process.poll() is None  # the same process throughout
    assert unexpected(after) == []
    outage_log = server.log()[log_before:]
    assert "Traceback" not in outage_log
    assert "database unavailable" in outage_log  # logged as a warning, without details
    unavailable = sum(outcome.status == 503 for outcome in during)
    record(
        request.config,
        f"outage ({SETUP_NAMES[server.label]}): {unavailable}/{len(during)} requests 503 while connections "
        f"were refused, "
        f"none 500; serving again {seconds:.2f} s after the database came back ({refused} more 503s), "
        f"then {len(after)}/{len(after)} as expected",
    )


def test_connections_killed_mid_load_are_503_never_500(request: pytest.FixtureRequest, server: LiveServer) -> None:
    """``pg_terminate_backend`` every few milliseconds for the first second of a load:
    requests whose connection dies are 503 (never 500, never a hung request); the rest
    of the load and the one after it are served as usual."""
    stop = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        watch = server.watch()
        deadline = time.monotonic() + 1.0
        while not stop.is_set() and time.monotonic() < deadline:
            kills.extend(watch.terminate())
            time.sleep(0.005)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        during = drive(server.base_url, calls(200), timeout=60)
    finally:
        stop.set()
        thread.join()
    wait_until_serving(server)
    after = drive(server.base_url, calls())

    failed = [outcome for outcome in during if outcome.status != outcome.call.expect]
    for outcome in failed:
        assert outcome.call.expect in (200, 201), (outcome.call, outcome.status)
        assert_unavailable(outcome)
    assert kills
    assert unexpected(after) == []
    record(
        request.config,
        f"backends killed mid-load ({SETUP_NAMES[server.label]}): {len(kills)} kills during {len(during)} requests -> "
        f"{len(failed)} 503, none 500; then {len(after)}/{len(after)} as expected",
    )


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_database_is_503(request: pytest.FixtureRequest, log_dir: Path) -> None:
    """A server pointed at a port where nothing listens starts, and answers 503 (not 500)
    to every request that needs the database, with nothing in the log but warnings."""
    with running_server(request.config, log_dir, "closed", url=database_url("nowhere", port=closed_port())) as s:
        during = drive(s.base_url, calls(30))
        alive = s.process.poll() is None
        log = s.log()

    for outcome in during:
        if outcome.call.expect in (200, 201):
            assert_unavailable(outcome)
        else:
            assert outcome.status == outcome.call.expect
    assert alive
    assert "Traceback" not in log
    record(request.config, f"closed database port: {sum(o.status == 503 for o in during)}/{len(during)} 503, none 500")

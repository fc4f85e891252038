"""Connection hygiene under real concurrency (SPEC §8): the demo under uvicorn on PostgreSQL.

Each server is ``python -m uvicorn tests.live.app:app`` (one worker) on a copy of the
seeded demo database of its own, with ``DJFAPI["THREADPOOL_SIZE"] = 8`` so that the
bound on connections is small enough to be seen. A sampler reads ``pg_stat_activity``
every few milliseconds for that database and the server's ``application_name`` while
the load runs, and again afterwards. Three set-ups are measured:

* ``CONN_MAX_AGE=0``: at most 8 connections while the load runs, 0 afterwards; the same
  load through an endpoint without ``request_signalling`` leaves connections open, and
  clients that disconnect mid-request leave nothing behind either.
* ``CONN_MAX_AGE=60`` with ``CONN_HEALTH_CHECKS``: at most 8 connections, reused across
  requests; one killed by the server is replaced without a failed request beyond the
  one in flight (and without health checks it is not: the counter-proof).
* Django's pool (``OPTIONS["pool"]``, max 4): at most 4 server connections, all back in
  the pool afterwards; an unsignalled endpoint keeps them checked out.

PostgreSQL only (``pg_stat_activity``, ``pg_terminate_backend``, ``pg_sleep``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from testproject.seed import DEMO_TENANT, DEMO_USER
from tests.helpers import auth
from tests.live.figures import record
from tests.live.server import Call, LiveServer, Outcome, database_url, drive, running_server, unexpected

# direct_postgresql: every test counts the app's backends in pg_stat_activity, which behind
# PgBouncer are PgBouncer's (tests/test_pgbouncer.py measures that set-up).
pytestmark = [pytest.mark.postgresql, pytest.mark.direct_postgresql]

THREADPOOL_SIZE = 8
CONCURRENCY = 20
ROUNDS = 40  # x 13 calls = 520 requests
SPEC_ERROR_KEYS = {"type", "code", "message", "detail"}


# -- fixtures and helpers --------------------------------------------------------------


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-connections")


@pytest.fixture(scope="module")
def age0_server(request: pytest.FixtureRequest, log_dir: Path) -> Iterator[LiveServer]:
    """``CONN_MAX_AGE=0``: the default, and what SPEC §8 is about."""
    with running_server(request.config, log_dir, "age0", threadpool_size=THREADPOOL_SIZE) as server:
        yield server


def seeded(database: str) -> dict[str, Any]:
    """Ids of the seeded demo rows the loads address."""
    with psycopg.connect(database_url(database)) as connection:

        def company(name: str) -> str:
            return str(connection.execute("SELECT id FROM business_company WHERE name = %s", [name]).fetchone()[0])

        acme = company("Acme Corp")
        department = connection.execute(
            "SELECT id FROM business_companydepartment WHERE company_id = %s ORDER BY name LIMIT 1", [acme]
        ).fetchone()[0]
        code = connection.execute(
            "SELECT code FROM business_companycostcenter WHERE company_id = %s ORDER BY code LIMIT 1", [acme]
        ).fetchone()[0]
        return {"acme": acme, "umbrella": company("Umbrella"), "department": str(department), "code": code}


def mixed_calls(database: str, rounds: int = ROUNDS) -> list[Call]:
    """Successes and every kind of error, interleaved: 13 calls per round.

    200 (list, get, child list, PATCH in a transaction), 201 (a create), 404 (missing,
    and another tenant's company), 409 (duplicate cost centre code), 422 (bad value,
    unknown parameter), 401 (no token), 403 (no scope) and 500 (``/live/raise``, a
    handler that raises after its query).
    """
    ids = seeded(database)
    reader = auth(DEMO_TENANT, DEMO_USER)
    no_scope = auth(DEMO_TENANT, DEMO_USER, scopes=["business.companies.create"])
    acme = f"/companies/{ids['acme']}"
    calls = []
    for index in range(rounds):
        calls += [
            Call("GET", "/companies", 200, headers=reader),
            Call("GET", acme, 200, headers=reader),
            Call("GET", f"{acme}/departments", 200, headers=reader),
            Call("PATCH", f"{acme}/departments/{ids['department']}", 200, {"name": f"Dept {index}"}, reader),
            Call("POST", f"{acme}/costcenters", 201, {"code": f"LOAD-{uuid.uuid4().hex[:8]}", "name": "x"}, reader),
            Call("GET", f"/companies/{uuid.uuid4()}", 404, headers=reader),
            Call("GET", f"/companies/{ids['umbrella']}", 404, headers=reader),
            Call("POST", f"{acme}/costcenters", 409, {"code": ids["code"], "name": "dup"}, reader),
            Call("GET", "/companies?limit=0", 422, headers=reader),
            Call("GET", "/companies?nmae=x", 422, headers=reader),
            Call("GET", "/companies", 401),
            Call("GET", "/companies", 403, headers=no_scope),
        ]
        # Starlette re-raises a 500's exception after answering, and uvicorn then drops
        # the connection: "Connection: close" keeps the client from reusing it meanwhile.
        calls.append(Call("GET", "/live/raise", 500, headers={"Connection": "close"}))
    return calls


def statuses(outcomes: list[Outcome]) -> dict[int | None, int]:
    counted: dict[int | None, int] = {}
    for outcome in outcomes:
        counted[outcome.status] = counted.get(outcome.status, 0) + 1
    return dict(sorted(counted.items(), key=lambda item: (item[0] is None, item[0] or 0)))


def assert_spec_error(outcome: Outcome, error_type: str) -> None:
    body = json.loads(outcome.body)
    assert set(body) <= {"detail", "event_id"}, body
    assert set(body["detail"]) == SPEC_ERROR_KEYS, body
    assert body["detail"]["type"] == error_type, body
    assert "Traceback" not in outcome.body.decode()


def pool_state(server: LiveServer) -> dict[str, Any]:
    return httpx.get(f"{server.base_url}/live/pool", timeout=10).json()


def settled_pool(server: LiveServer, timeout: float = 10.0) -> dict[str, Any]:
    """The pool's state once nothing is checked out (or the last one seen)."""
    deadline = time.monotonic() + timeout
    state = pool_state(server)
    while state["checked_out"] and time.monotonic() < deadline:
        time.sleep(0.05)
        state = pool_state(server)
    return state


# -- CONN_MAX_AGE=0 ----------------------------------------------------------------------


def test_signalled_load_with_errors_holds_at_most_the_pool_size_and_ends_at_zero(
    request: pytest.FixtureRequest, age0_server: LiveServer
) -> None:
    """520 requests at concurrency 20, every kind of answer; PostgreSQL sees <= 8, then 0.

    Without ``request_signalling`` around the generated endpoints nothing closes their
    connections, and the count after the load stays at the number of worker threads
    (``test_unsignalled_endpoint_leaves_connections_open`` shows that very effect).
    Without djfapi's bounded thread pool (``limiter=`` in ``run_signalled``) anyio's
    default of 40 threads runs all 20 requests at once and the peak exceeds 8.
    """
    server = age0_server
    calls = mixed_calls(server.database)
    watch = server.watch()
    assert watch.count() == 0

    with watch:
        outcomes = drive(server.base_url, calls, concurrency=CONCURRENCY)
    final = watch.settle(0)

    assert unexpected(outcomes) == []
    for outcome in outcomes:
        if outcome.status not in (200, 201, 422):
            assert_spec_error(
                outcome,
                {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}.get(
                    outcome.status or 0, "internal_error"
                ),
            )
    assert 2 <= watch.peak <= THREADPOOL_SIZE, watch.peak
    assert final == 0
    assert "HandlerFailure" in server.log()  # the raising handler did run
    record(
        request.config,
        f"CONN_MAX_AGE=0: {len(outcomes)} requests at concurrency {CONCURRENCY} {statuses(outcomes)}; "
        f"connections peak {watch.peak} (threads {THREADPOOL_SIZE}), after the load {final}; "
        f"{len(watch.pids)} backends seen in {watch.samples} samples",
    )


def test_unsignalled_endpoint_leaves_connections_open(request: pytest.FixtureRequest, log_dir: Path) -> None:
    """The counter-proof: the same kind of query without ``request_signalling`` leaks.

    The signalled control on the same server ends at 0 connections; the unsignalled
    endpoint's threads keep theirs open for good (CONN_MAX_AGE=0 is never applied,
    since nothing sends ``request_finished``). If this stopped leaking, the 0 in the
    other tests would no longer prove that the signalling is what closes connections.
    """
    with running_server(request.config, log_dir, "unsignalled", threadpool_size=THREADPOOL_SIZE) as server:
        watch = server.watch()
        signalled = drive(server.base_url, [Call("GET", "/live/slow?seconds=0", 200)] * 200, concurrency=CONCURRENCY)
        after_signalled = watch.settle(0)
        assert unexpected(signalled) == []
        assert after_signalled == 0

        with watch:
            unsignalled = drive(server.base_url, [Call("GET", "/live/unsignalled", 200)] * 200, concurrency=20)
        left_open = watch.steady(1.0)

    assert unexpected(unsignalled) == []
    assert min(left_open) >= 1, left_open  # still open a second later, and not closing
    assert left_open[-1] == left_open[0], left_open
    record(
        request.config,
        f"unsignalled endpoint, CONN_MAX_AGE=0: 200 requests leave {left_open[-1]} connections open "
        f"(peak {watch.peak}); the signalled control leaves {after_signalled}",
    )


def test_disconnecting_clients_leak_nothing_and_do_not_lift_the_bound(
    request: pytest.FixtureRequest, age0_server: LiveServer
) -> None:
    """Clients that give up mid-request: their connections close, and the bound holds.

    24 clients ask for a 1 s database sleep and hang up after 0.2 s; the test app cancels
    a GET whose client is gone. A second wave of 24 follows at once. ``run_signalled``
    keeps a cancelled call's thread slot until the call has finished (and closed its
    connection), so the second wave waits: never more than 8 connections. With
    ``abandon_on_cancel=True`` the slots of the abandoned threads are handed to the
    second wave while those threads still hold their connections: the peak rose to
    23-30 when that was tried. Afterwards 0 connections, and the server still answers.
    """
    server = age0_server
    watch = server.watch()
    with watch:
        gone = drive(server.base_url, [Call("GET", "/live/slow?seconds=1", 200)] * 24, concurrency=24, timeout=0.2)
        busy_after_hang_up = sum(backend.state == "active" for backend in watch.backends())
        second = drive(server.base_url, [Call("GET", "/live/slow?seconds=0.2", 200)] * 24, concurrency=24)
        impatient = drive(server.base_url, [Call("GET", "/companies", 401)] * 40, concurrency=20, timeout=0.001)
    final = watch.settle(0)

    assert {outcome.status for outcome in gone} == {None}, statuses(gone)  # every client hung up
    assert busy_after_hang_up >= 1  # the queries were still running when their clients left
    assert unexpected(second) == []
    assert watch.peak <= THREADPOOL_SIZE, watch.peak
    assert final == 0
    reader = auth(DEMO_TENANT, DEMO_USER)
    assert httpx.get(f"{server.base_url}/companies", headers=reader, timeout=10).status_code == 200
    record(
        request.config,
        f"disconnecting clients, CONN_MAX_AGE=0: 24 cancelled + 24 + {len(impatient)} requests; "
        f"connections peak {watch.peak}, {busy_after_hang_up} still busy after the hang-up, after {final}",
    )


# -- CONN_MAX_AGE=60 ---------------------------------------------------------------------


def slow_request_in_background(server: LiveServer, seconds: float) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["response"] = httpx.get(f"{server.base_url}/live/slow?seconds={seconds}", timeout=30)
        except httpx.HTTPError as error:
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def wait_for_query(server: LiveServer, text: str, timeout: float = 10.0) -> None:
    watch = server.watch()
    deadline = time.monotonic() + timeout
    while not any(b.state == "active" and text in b.query for b in watch.backends()):
        assert time.monotonic() < deadline, f"no backend ran {text!r}"
        time.sleep(0.02)


def test_persistent_connections_are_reused_bounded_and_replaced_when_killed(
    request: pytest.FixtureRequest, log_dir: Path
) -> None:
    """``CONN_MAX_AGE=60`` with ``CONN_HEALTH_CHECKS``: <= 8 connections, reused; kills cost one request.

    Reuse shows as few distinct backend pids over hundreds of requests (with
    ``CONN_MAX_AGE=0`` every request has a new one). Then every connection is
    terminated by the server while one request is inside ``pg_sleep``: that request is
    a 503 with the SPEC body, and the next 260 requests all succeed on new connections.
    ``test_killed_persistent_connections_fail_requests_without_health_checks`` shows
    what the health checks prevent.
    """
    options = {"CONN_MAX_AGE": "60", "CONN_HEALTH_CHECKS": "1"}
    with running_server(request.config, log_dir, "age60", threadpool_size=THREADPOOL_SIZE, **options) as server:
        calls = mixed_calls(server.database, rounds=20)
        with server.watch() as first:
            before = drive(server.base_url, calls, concurrency=CONCURRENCY)
        held = first.steady(0.5)

        in_flight, result = slow_request_in_background(server, 5)
        wait_for_query(server, "pg_sleep")
        killed = server.watch().terminate()
        in_flight.join()

        with server.watch() as second:
            after = drive(server.base_url, mixed_calls(server.database, rounds=20), concurrency=CONCURRENCY)

    assert unexpected(before) == []
    assert 1 <= first.peak <= THREADPOOL_SIZE, first.peak
    assert len(first.pids) <= THREADPOOL_SIZE, first.pids  # reused, not one per request
    assert min(held) >= 1 and max(held) <= THREADPOOL_SIZE, held  # kept open between requests

    response = result["response"]
    assert response.status_code == 503
    assert_spec_error(Outcome(Call("GET", "/live/slow", 503), 503, response.content), "service_unavailable")
    assert len(killed) >= 2  # the one in flight and at least one idle connection

    assert unexpected(after) == []  # nothing failed but the request in flight
    assert second.peak <= THREADPOOL_SIZE
    assert not second.pids & set(killed)
    record(
        request.config,
        f"CONN_MAX_AGE=60 + CONN_HEALTH_CHECKS: {len(before)} requests used {len(first.pids)} connections "
        f"(peak {first.peak}, {held[-1]} kept open); {len(killed)} killed by pg_terminate_backend: 1 failed "
        f"request (the one in flight, 503), then {len(after)} requests all answered as expected "
        f"(peak {second.peak})",
    )


def test_persistent_connections_stay_bounded_across_idle_periods(request: pytest.FixtureRequest, log_dir: Path) -> None:
    """Idle worker threads keep (and reuse) their connections instead of dropping them.

    anyio's thread pool retires a thread idle for 10 s without closing its persistent
    connection, which then lingers until garbage collection — 15 connections for 8
    threads were seen that way. djfapi's own pool keeps its threads, so after a quiet
    spell the same connections serve again and the count never passes the pool size.
    """
    options = {"CONN_MAX_AGE": "60", "CONN_HEALTH_CHECKS": "1"}
    with running_server(request.config, log_dir, "idle", threadpool_size=THREADPOOL_SIZE, **options) as server:
        with server.watch() as first:
            drive(server.base_url, mixed_calls(server.database, rounds=10), concurrency=CONCURRENCY)
        time.sleep(11)  # longer than anyio's idle-thread timeout (10 s)
        with server.watch() as second:
            drive(server.base_url, mixed_calls(server.database, rounds=10), concurrency=CONCURRENCY)
        open_after = second.steady(0.5)

    assert max(open_after) <= THREADPOOL_SIZE, open_after
    assert second.peak <= THREADPOOL_SIZE, second.peak
    assert len(first.pids | second.pids) <= THREADPOOL_SIZE, (first.pids, second.pids)  # the same connections
    record(
        request.config,
        f"CONN_MAX_AGE=60 across an 11 s idle spell: {len(first.pids | second.pids)} distinct connections in all "
        f"(pool {THREADPOOL_SIZE}), {max(open_after)} open after",
    )


def test_killed_persistent_connections_fail_requests_without_health_checks(
    request: pytest.FixtureRequest, log_dir: Path
) -> None:
    """Without ``CONN_HEALTH_CHECKS`` each killed idle connection fails the next request on it.

    Django checks a persistent connection only after an error occurred on it, so the
    first query on a connection the server killed fails (a 503, never a 500); the
    connection is then dropped and the following requests succeed. This is why the
    README asks for ``CONN_HEALTH_CHECKS = True`` with ``CONN_MAX_AGE > 0``, and what
    would make the previous test fail if the setting were removed.
    """
    with running_server(request.config, log_dir, "age60nohc", threadpool_size=THREADPOOL_SIZE, CONN_MAX_AGE="60") as s:
        reader = auth(DEMO_TENANT, DEMO_USER)
        warm = drive(s.base_url, [Call("GET", "/companies", 200, headers=reader)] * 100, concurrency=CONCURRENCY)
        killed = s.watch().terminate()
        after = drive(s.base_url, [Call("GET", "/companies", 200, headers=reader)] * 100, concurrency=CONCURRENCY)
        recovered = drive(s.base_url, [Call("GET", "/companies", 200, headers=reader)] * 50, concurrency=CONCURRENCY)

    assert unexpected(warm) == []
    assert killed
    failed = [outcome for outcome in after if outcome.status != 200]
    assert failed, "every request succeeded: the health checks would prove nothing"
    assert len(failed) <= len(killed)
    for outcome in failed:
        assert outcome.status == 503
        assert_spec_error(outcome, "service_unavailable")
    assert unexpected(recovered) == []
    record(
        request.config,
        f"CONN_MAX_AGE=60 without health checks: {len(killed)} idle connections killed -> "
        f"{len(failed)} failed requests (503), then recovered",
    )


# -- Django's connection pool --------------------------------------------------------------


def test_pooled_connections_go_back_to_the_pool(request: pytest.FixtureRequest, log_dir: Path) -> None:
    """``OPTIONS["pool"]`` with max 4 (< 8 threads): <= 4 server connections, none checked out after.

    The pool, not the thread count, bounds the server's connections here; after the
    load nothing is checked out and the pool keeps its (at most 4) idle connections.
    The counter-proof on the same server: an endpoint without ``request_signalling``
    takes connections out of the pool and never gives them back.
    """
    options = {"DJFAPI_DB_POOL": "1", "DJFAPI_DB_POOL_MAX_SIZE": "4", "DJFAPI_DB_POOL_TIMEOUT": "2"}
    with running_server(request.config, log_dir, "pool", threadpool_size=THREADPOOL_SIZE, **options) as server:
        calls = mixed_calls(server.database)
        with server.watch() as watch:
            outcomes = drive(server.base_url, calls, concurrency=CONCURRENCY)
        after = settled_pool(server)
        server_side = watch.count()

        leaked = drive(server.base_url, [Call("GET", "/live/unsignalled", 200)] * 8, concurrency=8, timeout=10)
        leaked_state = pool_state(server)

    assert unexpected(outcomes) == []
    assert after["pooled"] is True
    assert after["checked_out"] == 0, after
    assert 1 <= watch.peak <= 4, watch.peak
    assert 1 <= server_side <= after["max_size"] == 4, (server_side, after)

    assert any(outcome.status == 200 for outcome in leaked)
    assert leaked_state["checked_out"] >= 1, leaked_state
    record(
        request.config,
        f"Django pool (max 4, threads {THREADPOOL_SIZE}): {len(outcomes)} requests; server connections "
        f"peak {watch.peak}, after {server_side} idle in the pool, checked out {after['checked_out']}; "
        f"unsignalled endpoint leaves {leaked_state['checked_out']} checked out",
    )

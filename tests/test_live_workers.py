"""The demo served by several worker processes: ``uvicorn --workers 2`` behind one port.

* A write answered by either worker reaches feed subscribers on *both* workers: each
  worker's hub listens for the wake-ups (PostgreSQL ``LISTEN``) and reads the shared
  outbox. The safety poll is set to a minute, so what arrives within the wait came by
  the wake-up. Another tenant's write reaches nobody, on either worker.
* Connections: with Django's pool of ``max_size`` connections per worker, the server
  never holds more than workers x ``max_size`` connections, under a load that keeps
  every thread of both workers busy; the peak is recorded for the docs.

Which worker a request lands on is the kernel's choice; an HTTP/1.1 keep-alive
connection stays with the worker that accepted it, so each client below first asks
``/live/pid`` and keeps its connection.

* A token revoked through one worker is refused by the other within the carrier's
  delay (``NOTIFY``; the safety reload set to a minute, so what comes sooner came by it).
* Rate limits with the Redis store count one budget across workers; with the in-process
  store (the counter-proof, documented as right for one worker only) each worker counts
  its own and lets twice as much through.

PostgreSQL only, as the feed's and the revocations' cross-process carrier is.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testproject.seed import DEMO_TENANT, DEMO_USER, DEMO_USER_PASSWORD_DEFAULT
from testproject.tokens import mint_token
from tests.helpers import OTHER_TENANT, auth, clear_of_a_window_boundary
from tests.live.figures import record
from tests.live.server import Call, LiveServer, drive, running_server, unexpected
from tests.livefeed import SSEReader, ready, subscribe

pytestmark = pytest.mark.postgresql

WORKERS = 2
NO_POLL = "60"
WAIT = 10.0


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-workers")


def one_connection_client(server: LiveServer) -> httpx.Client:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.Client(base_url=server.base_url, limits=limits, timeout=httpx.Timeout(30.0, read=None))


@contextlib.contextmanager
def clients_on_every_worker(server: LiveServer, per_worker: int) -> Iterator[dict[int, list[httpx.Client]]]:
    """``per_worker`` single-connection clients on each of the server's workers, by pid."""
    by_pid: dict[int, list[httpx.Client]] = defaultdict(list)
    spare: list[httpx.Client] = []
    try:
        deadline = time.monotonic() + 30
        while len(by_pid) < WORKERS or any(len(clients) < per_worker for clients in by_pid.values()):
            assert time.monotonic() < deadline, f"connections reached only workers {sorted(by_pid)}"
            client = one_connection_client(server)
            pid = client.get("/live/pid").json()["pid"]
            (by_pid[pid] if len(by_pid[pid]) < per_worker else spare).append(client)
            if not by_pid[pid]:
                del by_pid[pid]
        yield dict(by_pid)
    finally:
        for client in [*spare, *(c for clients in by_pid.values() for c in clients)]:
            client.close()


def test_a_write_on_any_worker_reaches_subscribers_on_every_worker(
    request: pytest.FixtureRequest, log_dir: Path
) -> None:
    with (
        running_server(
            request.config, log_dir, "workers-feed", workers=WORKERS, DJFAPI_LIVE_POLL_INTERVAL=NO_POLL
        ) as server,
        clients_on_every_worker(server, per_worker=2) as clients,
        contextlib.ExitStack() as streams,
    ):
        pids = sorted(clients)
        assert len(pids) == WORKERS
        # one subscriber per worker; the other client of each worker writes
        readers: dict[int, SSEReader] = {}
        for pid in pids:
            reader = streams.enter_context(
                subscribe(clients[pid][0], "/companies/subscribe", headers=auth(DEMO_TENANT, DEMO_USER))
            )
            ready(reader)
            readers[pid] = reader
        latencies: list[float] = []
        for writer_pid in pids:
            writer = clients[writer_pid][1]
            foreign = writer.post("/companies", json={"name": "Not yours"}, headers=auth(OTHER_TENANT))
            assert foreign.status_code == 201, foreign.text
            assert writer.get("/live/pid").json()["pid"] == writer_pid  # still the same worker
            name = f"On worker {writer_pid} {uuid.uuid4().hex[:6]}"
            sent_at = time.monotonic()
            mine = writer.post("/companies", json={"name": name}, headers=auth(DEMO_TENANT, DEMO_USER))
            assert mine.status_code == 201, mine.text
            for reader_pid, reader in readers.items():
                (change,) = reader.changes(1, timeout=WAIT)
                latencies.append(time.monotonic() - sent_at)
                assert change.event == "INSERT"
                assert change.data["object_id"] == mine.json()["id"], (
                    f"the subscriber on worker {reader_pid} got {change.data}, not the write on worker {writer_pid}"
                )
                assert reader.quiet(0.3) == []  # the other tenant's company reached nobody
        record(
            request.config,
            f"feed across {WORKERS} uvicorn workers: {len(latencies)} deliveries (write on each worker, "
            f"subscriber on each), slowest {max(latencies) * 1000:.0f} ms after the write's response",
        )


def test_connections_stay_within_workers_times_pool(request: pytest.FixtureRequest, log_dir: Path) -> None:
    max_size = 3
    with running_server(
        request.config,
        log_dir,
        "workers-pool",
        workers=WORKERS,
        threadpool_size=8,
        DJFAPI_DB_POOL="1",
        DJFAPI_DB_POOL_MAX_SIZE=str(max_size),
        DJFAPI_DB_POOL_TIMEOUT="20",
    ) as server:
        reader = auth(DEMO_TENANT, DEMO_USER)
        calls = [Call("GET", "/live/slow?seconds=0.05", 200) for _ in range(120)]
        calls += [Call("GET", "/companies?limit=20", 200, headers=reader) for _ in range(120)]
        with server.watch() as watch:
            outcomes = drive(server.base_url, calls, concurrency=32)
        assert unexpected(outcomes) == []
        assert 0 < watch.peak <= WORKERS * max_size, f"{watch.peak} connections at once"
        record(
            request.config,
            f"{WORKERS} workers x pool max_size {max_size}, 32 requests in flight: at most {watch.peak} "
            f"connections at once ({len(watch.pids)} backends over the run), bound {WORKERS * max_size}",
        )


def test_a_token_revoked_through_one_worker_is_refused_by_the_other(
    request: pytest.FixtureRequest, log_dir: Path
) -> None:
    with (
        running_server(
            request.config, log_dir, "workers-revoke", workers=WORKERS, DJFAPI_AUTH_REVOCATION_POLL_INTERVAL=NO_POLL
        ) as server,
        clients_on_every_worker(server, per_worker=1) as clients,
    ):
        (first,), (second,) = (clients[pid] for pid in sorted(clients))
        login = first.post("/auth/token", json={"username": DEMO_USER, "password": DEMO_USER_PASSWORD_DEFAULT})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert second.get("/companies", headers=headers).status_code == 200
        assert first.post("/auth/logout", headers=headers).status_code == 204
        revoked_at = time.monotonic()
        while True:
            answer = second.get("/companies", headers=headers)
            if answer.status_code == 401:
                break
            assert answer.status_code == 200, answer.text
            assert time.monotonic() - revoked_at < WAIT, "the other worker still accepts the revoked token"
            time.sleep(0.02)
        elapsed = time.monotonic() - revoked_at
        assert answer.json()["detail"]["code"] == "token_revoked"
    record(
        request.config,
        f"token revoked through one of {WORKERS} uvicorn workers: the other refused it after {elapsed * 1000:.0f} ms",
    )


@pytest.mark.parametrize("shared", [True, False], ids=["redis-store", "in-process-store"])
def test_rate_limits_hold_across_workers_with_the_shared_store(
    request: pytest.FixtureRequest, log_dir: Path, shared: bool
) -> None:
    limit = 6
    store = {"DJFAPI_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0"} if shared else {}
    # A subject of its own: the Redis counters of an earlier run (a minute's window) never count here.
    token = mint_token(tenant=DEMO_TENANT, user=f"limited-{uuid.uuid4().hex}", scopes=["business.companies.read.any"])
    headers = {"Authorization": f"Bearer {token}"}
    with (
        running_server(
            request.config,
            log_dir,
            "workers-limits",
            workers=WORKERS,
            DJFAPI_DEMO_READ_LIMIT=f"{limit}/minute",
            **store,
        ) as server,
        clients_on_every_worker(server, per_worker=1) as clients,
    ):
        (first,), (second,) = (clients[pid] for pid in sorted(clients))
        clear_of_a_window_boundary()
        within = [client.get("/companies", headers=headers).status_code for client in (first, second) * (limit // 2)]
        beyond = [client.get("/companies", headers=headers) for client in (first, second)]
    assert within == [200] * limit
    if shared:
        assert [answer.status_code for answer in beyond] == [429, 429]
        assert all(int(answer.headers["retry-after"]) >= 1 for answer in beyond)
    else:  # each worker counted half of the requests: the budget is per worker
        assert [answer.status_code for answer in beyond] == [200, 200]

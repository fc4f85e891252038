"""A real uvicorn serving ``tests.live.app`` on a PostgreSQL database of its own.

* ``LiveDatabases``: per test session, one migrated and seeded template database
  (``djfapi_live_<pid>_template``, made by ``python -m testproject seed``) and cheap
  copies of it (``CREATE DATABASE ... TEMPLATE``), one per server; all dropped at the
  end of the session, and leftovers of killed sessions (whose pid is gone) on the next.
* ``sqlite_server``: the same server on a seeded SQLite file of its own, for tests that
  run on both databases (the SQLite half of the suite has no PostgreSQL to copy).
* ``LiveServer``: ``python -m uvicorn tests.live.app:app`` in a subprocess, one worker,
  its connections named by ``application_name`` so that ``pg_stat_activity`` tells
  them apart; stopped by the fixture that started it, also when the test fails.
* ``ConnectionWatch``: samples the server's backends in ``pg_stat_activity`` every few
  milliseconds from a connection to the ``postgres`` database (so it never counts itself).
* ``drive``: sends a list of requests at a fixed concurrency and collects the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from tests.helpers import behind_pooler

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = "djfapi_live_"
STARTUP_TIMEOUT = 30.0
DEFAULT_THREADPOOL_SIZE = 8


# -- databases -----------------------------------------------------------------------


def database_url(name: str, *, port: int | None = None) -> str:
    """``DATABASE_URL`` with its database name (and, if given, its port) replaced."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    if port is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport
        parts = parts._replace(netloc=f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}")
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_connection() -> psycopg.Connection[Any]:
    """An autocommit connection to the ``postgres`` database of the suite's server.

    Never a prepared statement: behind a transaction-pooling PgBouncer (CI's third pass)
    a statement prepared on one server connection is unknown, or taken, on the next.
    """
    return psycopg.connect(database_url("postgres"), autocommit=True, connect_timeout=5, prepare_threshold=None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LiveDatabases:
    """The live databases of one test session (see the module docstring)."""

    def __init__(self) -> None:
        self.prefix = f"{PREFIX}{os.getpid()}_"
        self.template = f"{self.prefix}template"
        self._created: list[str] = []
        self._counter = itertools.count(1)
        self._template_ready = False

    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        with admin_connection() as admin:
            self._drop_stale(admin)
            admin.execute(f'CREATE DATABASE "{self.template}"')
        self._created.append(self.template)
        result = subprocess.run(
            [sys.executable, "-m", "testproject", "seed"],
            cwd=REPO_ROOT,
            env=server_environment(database_url(self.template)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"seeding the live template failed:\n{result.stdout}\n{result.stderr}")
        self._template_ready = True

    @staticmethod
    def _drop_stale(admin: psycopg.Connection[Any]) -> None:
        """Drop live databases left behind by sessions that were killed."""
        rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [PREFIX + "%"]).fetchall()
        for (name,) in rows:
            match = re.match(rf"{PREFIX}(\d+)_", name)
            if match and not _alive(int(match.group(1))):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create(self, label: str) -> str:
        """A fresh copy of the migrated and seeded template."""
        self._ensure_template()
        name = f"{self.prefix}{label}_{next(self._counter)}"
        with admin_connection() as admin:
            # A pooler (CI's PgBouncer pass) keeps the seeding's server connection to the
            # template open for a while; a template must have no session to be copied.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.template],
            )
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self._created.append(name)
        return name

    def drop(self, name: str) -> None:
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._created:
            self._created.remove(name)

    def drop_all(self) -> None:
        for name in reversed(list(self._created)):
            self.drop(name)


_DATABASES_KEY = pytest.StashKey[LiveDatabases]()


def live_databases(config: pytest.Config) -> LiveDatabases:
    """The session's ``LiveDatabases``, dropped when the session ends."""
    databases = config.stash.get(_DATABASES_KEY, None)
    if databases is None:
        databases = config.stash[_DATABASES_KEY] = LiveDatabases()
        config.add_cleanup(databases.drop_all)
    return databases


# -- the server ----------------------------------------------------------------------


def server_environment(url: str, **overrides: str) -> dict[str, str]:
    """The environment of a live server (or of the seeding CLI) on database ``url``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJFAPI_DB_", "CONN_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["DJANGO_SETTINGS_MODULE"] = "testproject.settings"  # pytest-django exported tests.settings
    env["DATABASE_URL"] = url
    env["PYTHONUNBUFFERED"] = "1"
    # No safety reload of the revoked tokens while connections are counted (tests that
    # need it set their own interval).
    env.setdefault("DJFAPI_AUTH_REVOCATION_POLL_INTERVAL", "3600")
    env.update(overrides)
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_status(pid: int, key: str) -> int:
    """A ``kB`` figure from ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class LiveServer:
    """A running ``uvicorn tests.live.app:app``."""

    base_url: str
    database: str
    application_name: str
    threadpool_size: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)
    label: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kb(self) -> int:
        return _proc_status(self.pid, "VmRSS")

    def peak_rss_kb(self) -> int:
        """The high-water mark of the resident set: grows with any transient allocation."""
        return _proc_status(self.pid, "VmHWM")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def watch(self) -> ConnectionWatch:
        return ConnectionWatch(self.database, self.application_name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    database: str,
    log_dir: Path,
    *,
    threadpool_size: int = DEFAULT_THREADPOOL_SIZE,
    url: str | None = None,
    label: str = "",
    workers: int = 1,
    http: str = "auto",
    **env: str,
) -> LiveServer:
    """Start uvicorn on ``database`` (``url`` overrides where it connects) and wait until it answers.

    ``env`` adds settings switches, e.g. ``CONN_MAX_AGE="60"``, ``DJFAPI_DB_POOL="1"``;
    ``workers`` > 1 runs uvicorn's ``--workers`` (one process per worker behind one port);
    ``http`` pins uvicorn's HTTP parser (``h11``, ``httptools``; ``auto``: httptools when installed).
    """
    application_name = f"{database}_app"
    environment = server_environment(
        url or database_url(database),
        DJFAPI_THREADPOOL_SIZE=str(threadpool_size),
        DJFAPI_DB_APPLICATION_NAME=application_name,
        DJFAPI_LIVE_PARENT_PID=str(os.getpid()),
        **env,
    )
    for attempt in range(3):
        port = _free_port()
        log_path = log_dir / f"uvicorn-{database}-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.live.app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    *(["--workers", str(workers)] if workers > 1 else []),
                    *(["--http", http] if http != "auto" else []),
                ],
                cwd=REPO_ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(
            f"http://127.0.0.1:{port}",
            database,
            application_name,
            threadpool_size,
            process,
            log_path,
            environment,
            label,
        )
        try:
            if _wait_until_up(server):
                return server
        except BaseException:
            server.stop()
            raise
        server.stop()
        if "address already in use" not in server.log().lower() or attempt == 2:
            raise RuntimeError(f"the live server did not start:\n{server.log()}")
    raise AssertionError("unreachable")


def _wait_until_up(server: LiveServer) -> bool:
    """True once ``/live/ping`` answers; False when the process exited first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.base_url}/live/ping", timeout=1.0).status_code == 200:
                return True
        time.sleep(0.1)
    raise RuntimeError(f"the live server did not answer within {STARTUP_TIMEOUT} s:\n{server.log()}")


@contextlib.contextmanager
def running_server(
    config: pytest.Config, log_dir: Path, label: str, *, keep_database: bool = False, **options: Any
) -> Iterator[LiveServer]:
    """A server on a fresh copy of the seeded database; both gone afterwards, whatever happens."""
    databases = live_databases(config)
    database = databases.create(label)
    try:
        server = start_server(database, log_dir, label=label, **options)
        try:
            yield server
        finally:
            server.stop()
    finally:
        if not keep_database:
            databases.drop(database)


def seeded_sqlite(log_dir: Path, label: str) -> tuple[Path, str]:
    """A freshly migrated and seeded SQLite file in ``log_dir`` (``python -m testproject seed``): its path and URL."""
    path = log_dir / f"{label}-{os.getpid()}-{next(_sqlite_counter)}.sqlite3"
    url = f"sqlite:///{path}"
    result = subprocess.run(
        [sys.executable, "-m", "testproject", "seed"],
        cwd=REPO_ROOT,
        env=server_environment(url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"seeding {path} failed:\n{result.stdout}\n{result.stderr}")
    return path, url


@contextlib.contextmanager
def sqlite_server(log_dir: Path, label: str, **options: Any) -> Iterator[LiveServer]:
    """A server on a freshly seeded SQLite file in ``log_dir``; stopped afterwards, whatever happens."""
    path, url = seeded_sqlite(log_dir, label)
    server = start_server(path.stem, log_dir, url=url, label=label, **options)
    try:
        yield server
    finally:
        server.stop()


_sqlite_counter = itertools.count(1)


# -- pg_stat_activity ----------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    pid: int
    state: str | None
    query: str


class ConnectionWatch:
    """The live server's connections as PostgreSQL sees them.

    Used as a context manager it samples them in a background thread: ``peak`` is the
    largest number seen at once, ``pids`` every backend seen, ``samples`` how many
    snapshots were taken.
    """

    INTERVAL = 0.005

    def __init__(self, database: str, application_name: str) -> None:
        self.database = database
        self.application_name = application_name
        self.peak = 0
        self.samples = 0
        self.pids: set[int] = set()
        self.active_seen = 0  # the most backends seen busy in a query at once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    _QUERY = (
        "SELECT pid, state, query FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()"
    )

    def backends(self, connection: psycopg.Connection[Any] | None = None) -> list[Backend]:
        if connection is None:
            with admin_connection() as admin:
                return self.backends(admin)
        rows = connection.execute(self._QUERY, [self.database, self.application_name]).fetchall()
        return [Backend(*row) for row in rows]

    def count(self) -> int:
        return len(self.backends())

    def settle(self, expected: int, timeout: float = 10.0) -> int:
        """The count once it is ``expected`` (a closed backend exits asynchronously), or the last count."""
        deadline = time.monotonic() + timeout
        with admin_connection() as admin:
            count = len(self.backends(admin))
            while count != expected and time.monotonic() < deadline:
                time.sleep(0.05)
                count = len(self.backends(admin))
        return count

    def steady(self, seconds: float = 1.0) -> list[int]:
        """Counts over ``seconds``: to show that connections stay open rather than closing late."""
        counts = []
        with admin_connection() as admin:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                counts.append(len(self.backends(admin)))
                time.sleep(0.1)
        return counts

    _QUERY_DATABASE = "SELECT pid, state, query FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"

    def terminate(self, *, only_busy_with: str | None = None) -> list[int]:
        """``pg_terminate_backend`` the server's connections (or those running a query containing the text).

        Behind a pooler the backends are the pooler's, named by whichever client used them
        last; the database is this server's own copy, so all of its backends are killed.
        """
        with admin_connection() as admin:
            backends = (
                [Backend(*row) for row in admin.execute(self._QUERY_DATABASE, [self.database]).fetchall()]
                if behind_pooler()
                else self.backends(admin)
            )
            victims = [
                backend.pid
                for backend in backends
                if only_busy_with is None or (backend.state == "active" and only_busy_with in backend.query)
            ]
            for pid in victims:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        return victims

    def __enter__(self) -> ConnectionWatch:
        self._thread = threading.Thread(target=self._sample, name="pg_stat_activity sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)
        if self._error is not None and exc_info[0] is None:
            raise self._error

    def _sample(self) -> None:
        try:
            with admin_connection() as admin:
                while not self._stop.is_set():
                    backends = self.backends(admin)
                    self.samples += 1
                    self.peak = max(self.peak, len(backends))
                    self.active_seen = max(self.active_seen, sum(b.state == "active" for b in backends))
                    self.pids.update(backend.pid for backend in backends)
                    time.sleep(self.INTERVAL)
        except BaseException as error:  # reported by __exit__
            self._error = error


# -- load ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request of a load, and the status it must get."""

    method: str
    path: str
    expect: int
    json: Any = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Outcome:
    call: Call
    status: int | None  # None: the client gave up (timeout) or the transport failed
    body: bytes
    error: str | None = None


def drive(base_url: str, calls: Sequence[Call], *, concurrency: int = 20, timeout: float = 30.0) -> list[Outcome]:
    """Send ``calls`` with ``concurrency`` requests in flight at any time; answers in order."""
    return asyncio.run(_drive(base_url, calls, concurrency, timeout))


async def _drive(base_url: str, calls: Sequence[Call], concurrency: int, timeout: float) -> list[Outcome]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:

        async def send(call: Call) -> Outcome:
            async with gate:
                try:
                    response = await client.request(call.method, call.path, json=call.json, headers=call.headers)
                except httpx.HTTPError as error:
                    return Outcome(call, None, b"", f"{type(error).__name__}: {error}")
                return Outcome(call, response.status_code, response.content)

        return list(await asyncio.gather(*(send(call) for call in calls)))


def unexpected(outcomes: Sequence[Outcome]) -> list[tuple[str, str, int, int | None, str]]:
    """The outcomes whose status is not the expected one, readably."""
    return [
        (o.call.method, o.call.path, o.call.expect, o.status, o.error or o.body[:200].decode(errors="replace"))
        for o in outcomes
        if o.status != o.call.expect
    ]

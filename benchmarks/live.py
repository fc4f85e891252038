"""Change-feed fan-out: event delivery latency and memory of N SSE subscribers on one process.

Issue 8 asks for "a benchmark [that] holds 200 concurrent subscribers on one process
and reports event delivery latency p50/p99 and memory". From the repository root::

    python -m benchmarks.live                      # 200 subscribers, 200 events at 20/s, SQLite
    python -m benchmarks.live --quick              # 50 subscribers, 50 events
    python -m benchmarks.live --subscribers 500 --events 300 --rate 50
    python -m benchmarks.live --distinct-users     # every subscriber its own user: no sharing
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_livebench python -m benchmarks.live

Method:

1. **Database.** A fresh one per run: an SQLite file in the work directory
   (``benchmarks/.work/``, or ``BENCH_WORK_DIR``) unless ``DATABASE_URL`` is set; then a
   PostgreSQL database ``<name>_<pid>`` created next to the one the URL names (leftovers
   of killed runs, whose pid is gone, are dropped first). ``python -m testproject seed``
   migrates and seeds it in a subprocess (``testproject.settings``, tenant ``demo``).
   The file or database is removed at the end, whatever happens.
2. **Server.** ``uvicorn testproject.asgi:app``, one worker, in a child process with the
   demo's default settings (``LIVE_POLL_INTERVAL`` 2 s, ``LIVE_HEARTBEAT`` 15 s). Its
   memory is read from ``/proc/<pid>/status`` (``VmRSS``, and ``VmHWM`` for the peak),
   its CPU time from ``/proc/<pid>/stat``. The child gets SIGTERM if this process dies.
3. **Phases**, all on that one server, each measured from this (separate) process with
   ``httpx.AsyncClient``, one TCP connection per subscription:

   * warm-up: 1 subscriber and 5 events, not reported (first requests, lazy imports);
   * baseline: 1 subscriber, ``--events`` events at ``--rate`` per second;
   * fan-out: ``--subscribers`` subscriptions to ``GET /companies/subscribe`` opened at
     once; once all got their ``ready`` event (and 1 s later) the idle RSS is read; then
     the same number of events at the same rate.

   An event is ``POST /companies`` (a new company, the demo user's token with every
   scope), sent on connections of their own on a fixed schedule, open loop: each POST
   goes out at its time whether or not the earlier ones have been answered (up to 16 in
   flight), so a slow server does not lower the offered rate. Each POST's send time and
   the time its response came back are recorded; every subscriber must then receive exactly one ``INSERT`` whose
   ``object_id`` is the POST's ``id`` (missing, duplicate and unexpected deliveries are
   counted, and events whose ids go backwards).

Latency is *arrival - POST response* (what a client that wrote and waits for others to
see it observes; it can be negative: the feed may deliver before the response is
read) and *arrival - POST sent* (the full path: request, transaction, outbox,
wake-up, fan-out, framing). Percentiles are nearest-rank over every (subscriber,
event) pair; "spread" is, per event, last arrival - first arrival across subscribers,
i.e. how long the fan-out of one event takes. The fan-out figures are also given as a
ratio to the 1-subscriber baseline of the same run, on the same server.

Why measure like this: the client keeps its hot path to appending bytes and counting
``INSERT`` markers, and timestamps each received chunk; frames are parsed only after
the phase, each stamped with the time of the chunk that completed it. So the client's
own cost (one Python process reading 200 sockets on the same 2 cores as the server)
stays small; its CPU time and its event-loop lag are reported so that it can be judged.
By default all subscribers share one token (200 tabs of one dashboard: ``stream.Shared``
evaluates each event once for all); ``--distinct-users`` gives each its own user, the
case where visibility is evaluated per subscriber.

Results are printed and written as JSON to ``<work dir>/live-<vendor>.json``, next to
the server's log ``live-server.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import math
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from benchmarks.config import WORK_DIR, ensure_work_dir
from benchmarks.server import stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]

SETTINGS_MODULE = "testproject.settings"
FEED = "/companies/subscribe"
COLLECTION = "/companies"
INSERT_MARK = b"event: INSERT\n"
READY_MARK = b"event: ready\n"

STARTUP_TIMEOUT = 60.0  # seconds for the server to answer /health
READY_TIMEOUT = 60.0  # seconds for every subscription to get its ready event
IDLE_SETTLE = 1.0  # seconds between the last ready event and reading the idle RSS
DUPLICATE_GRACE = 1.0  # seconds to keep listening once everything arrived
WARMUP_EVENTS = 5
BUSY_MACHINE = 0.25  # share of the CPUs other processes may use before the report warns
WRITER_CONNECTIONS = 16  # POSTs in flight at most
DEFAULTS = {"subscribers": 200, "events": 200}
QUICK = {"subscribers": 50, "events": 50}


# -- small helpers ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    """Milliseconds: count, p50, p99, max (and min, for latencies that can be negative)."""

    count: int
    p50: float
    p99: float
    max: float
    min: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = [value * 1000 for value in seconds]
        if not ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(len(ms), percentile(ms, 50), percentile(ms, 99), max(ms), min(ms))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark process dies (Linux prctl)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_environment(database_url: str) -> dict[str, str]:
    """The environment of the seeding CLI and of the server."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    env["DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- the database ----------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    url: str
    vendor: str
    name: str


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _admin_url(parts: Any) -> str:
    return urlunsplit(parts._replace(path="/postgres"))


def _drop_stale_databases(admin: Any, base: str) -> None:
    """Drop ``<base>_<pid>`` databases of benchmark runs that were killed."""
    from psycopg import sql

    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [base + "\\_%"]).fetchall()
    for (name,) in rows:
        match = re.fullmatch(rf"{re.escape(base)}_(\d+)", name)
        if match and not _alive(int(match.group(1))):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def scratch_database(*, keep: bool = False) -> Iterator[Database]:
    """A fresh, empty database for this run (see the module docstring); removed afterwards unless ``keep``."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        path = WORK_DIR / f"live-{os.getpid()}.sqlite3"
        _remove_sqlite(path)
        try:
            yield Database(f"sqlite:///{path}", "sqlite", str(path))
        finally:
            if not keep:
                _remove_sqlite(path)
        return
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"DATABASE_URL: only postgres:// is supported (or none, for SQLite), not {parts.scheme}://")
    import psycopg
    from psycopg import sql

    base = parts.path.lstrip("/") or "djfapi_livebench"
    name = f"{base}_{os.getpid()}"
    with psycopg.connect(_admin_url(parts), autocommit=True, connect_timeout=10) as admin:
        _drop_stale_databases(admin, base)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield Database(urlunsplit(parts._replace(path=f"/{name}")), "postgresql", name)
    finally:
        if not keep:
            with psycopg.connect(_admin_url(parts), autocommit=True, connect_timeout=10) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def seed(database: Database) -> None:
    """Migrate and seed the demo data with ``python -m testproject seed``."""
    result = subprocess.run(
        [sys.executable, "-m", "testproject", "seed"],
        cwd=WORK_DIR,
        env=child_environment(database.url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{result.stdout}\n{result.stderr}")


# -- the server ------------------------------------------------------------------------


class Server:
    """``uvicorn testproject.asgi:app``, one worker, for the length of a ``with`` block."""

    def __init__(self, database: Database, log_path: Path) -> None:
        self.database = database
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Server:
        self.port = _free_port()
        command = [sys.executable, "-m", "uvicorn", "testproject.asgi:app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=WORK_DIR,
                env=child_environment(self.database.url),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start-up:\n{self.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {STARTUP_TIMEOUT} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def memory_kb(self, key: str) -> int:
        """A ``kB`` figure of ``/proc/<pid>/status``: ``VmRSS``, ``VmHWM``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        raise KeyError(key)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of the server, of this process and of the whole machine."""

    server: float
    client: float
    machine: float

    @classmethod
    def take(cls, server: Server) -> CpuSample:
        return cls(server.cpu_seconds(), time.process_time(), machine_busy_seconds())

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(self.server - other.server, self.client - other.client, self.machine - other.machine)


# -- tokens ------------------------------------------------------------------------------


def mint_tokens(count: int, *, distinct_users: bool) -> tuple[str, list[str]]:
    """The writer's token and one per subscriber: the demo user with every scope (or one user each)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE  # the server's JWT settings
    import django

    django.setup()
    from testproject.seed import DEMO_TENANT, DEMO_USER
    from testproject.tokens import ALL_SCOPES, mint_token

    def token(user: str) -> str:
        return mint_token(tenant=DEMO_TENANT, user=user, scopes=ALL_SCOPES, expires=4 * 3600)

    shared = token(DEMO_USER)
    if not distinct_users:
        return shared, [shared] * count
    return shared, [token(f"{DEMO_USER}-{index}") for index in range(count)]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- one subscriber ----------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    event: str | None
    id: int | None
    data: str
    arrived: float


class Subscriber:
    """One SSE subscription: raw bytes and chunk arrival times while running, frames afterwards."""

    def __init__(self, index: int, token: str) -> None:
        self.index = index
        self.token = token
        self.buffer = bytearray()
        self.chunks: list[tuple[float, int]] = []  # (arrival, buffer length after the chunk)
        self.inserts = 0
        self._scanned = 0
        self.ready = asyncio.Event()
        self.status: int | None = None
        self.error: str | None = None
        self.ended = False

    async def run(self, client: httpx.AsyncClient) -> None:
        try:
            async with client.stream("GET", FEED, headers=_auth(self.token)) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    self.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
                    return
                async for chunk in response.aiter_raw():
                    self._feed(chunk)
            self.ended = True  # the server ended the stream
        except httpx.HTTPError as error:
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.ready.set()  # never leave the phase waiting for a failed subscriber

    def _feed(self, chunk: bytes) -> None:
        """The hot path: keep the bytes, stamp the chunk, count INSERT markers."""
        self.buffer += chunk
        self.chunks.append((time.monotonic(), len(self.buffer)))
        start = max(self._scanned - len(INSERT_MARK) + 1, 0)
        self.inserts += self.buffer.count(INSERT_MARK, start)
        self._scanned = len(self.buffer)
        if not self.ready.is_set() and READY_MARK in self.buffer:
            self.ready.set()

    @property
    def failed(self) -> bool:
        return self.error is not None or self.ended

    def frames(self) -> list[Frame]:
        """Every complete frame, stamped with the arrival of the chunk that completed it."""
        ends = [end for _, end in self.chunks]
        frames: list[Frame] = []
        start = 0
        while (stop := self.buffer.find(b"\n\n", start)) != -1:
            end = stop + 2
            arrived = self.chunks[bisect.bisect_left(ends, end)][0]
            frames.append(_parse_block(bytes(self.buffer[start:stop]).decode(), arrived))
            start = end
        return frames


def _parse_block(block: str, arrived: float) -> Frame:
    event: str | None = None
    event_id: int | None = None
    data: list[str] = []
    for line in block.split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "id":
            event_id = int(value)
        elif name == "data":
            data.append(value)
    return Frame(event, event_id, "\n".join(data), arrived)


# -- writes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    index: int
    object_id: str | None
    status: int | None
    sent: float
    done: float


async def write_events(base_url: str, token: str, count: int, rate: float, label: str) -> list[Write]:
    """``count`` POSTs at ``rate`` per second on a fixed schedule, open loop (slow answers delay nothing)."""
    limits = httpx.Limits(max_connections=WRITER_CONNECTIONS)
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0, headers=_auth(token), limits=limits) as client:
        start = time.monotonic()
        tasks: list[asyncio.Task[Write]] = []
        for index in range(count):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_write_one(client, index, f"live-bench {label} {index}")))
        return list(await asyncio.gather(*tasks))


async def _write_one(client: httpx.AsyncClient, index: int, name: str) -> Write:
    sent = time.monotonic()
    try:
        response = await client.post(COLLECTION, json={"name": name})
    except httpx.HTTPError:
        return Write(index, None, None, sent, time.monotonic())
    done = time.monotonic()
    object_id = response.json().get("id") if response.status_code == 201 else None
    return Write(index, object_id, response.status_code, sent, done)


# -- a phase -----------------------------------------------------------------------------


@dataclass
class PhaseResult:
    label: str
    subscribers: int
    events: int
    connect_seconds: float  # from opening the subscriptions until all got ready
    failed_subscribers: int
    write_errors: int
    achieved_rate: float
    expected: int
    delivered: int
    missing: int
    duplicates: int
    unexpected: int
    out_of_order: int
    early: int  # deliveries that arrived before the POST's response did
    latency_response: Summary
    latency_send: Summary
    spread: Summary
    post_roundtrip: Summary
    server_cpu_seconds: float
    client_cpu_seconds: float
    client_lag: Summary
    other_cpu_seconds: float  # CPU time used by every other process on the machine meanwhile
    events_seconds: float  # wall time from the first write until every delivery (or the deadline)
    memory_kb: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # per write, ms from the first send


@dataclass(frozen=True)
class PhaseSpec:
    label: str
    tokens: list[str]
    writer_token: str
    events: int
    rate: float
    deadline: float  # seconds after the last write for every delivery


async def _monitor_lag(samples: list[float], interval: float = 0.01) -> None:
    """Event-loop lag of this (client) process: how late a 10 ms sleep wakes up."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(interval)
        samples.append(time.monotonic() - before - interval)


async def _wait_delivered(subscribers: Sequence[Subscriber], events: int, deadline: float) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if all(s.inserts >= events or s.failed for s in subscribers):
            await asyncio.sleep(DUPLICATE_GRACE)
            return
        await asyncio.sleep(0.01)


async def _open(subscribers: Sequence[Subscriber], client: httpx.AsyncClient) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(subscriber.run(client)) for subscriber in subscribers]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subscribers)), READY_TIMEOUT)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return tasks


async def run_phase(server: Server, spec: PhaseSpec) -> PhaseResult:
    """Open the subscriptions, read the idle RSS, write the events, wait for their delivery."""
    subscribers = [Subscriber(index, token) for index, token in enumerate(spec.tokens)]
    limits = httpx.Limits(max_connections=len(subscribers) + 8, max_keepalive_connections=0)
    timeout = httpx.Timeout(30.0, read=None)
    memory: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=timeout) as client:
        opened = time.monotonic()
        tasks = await _open(subscribers, client)
        connect_seconds = time.monotonic() - opened
        await asyncio.sleep(IDLE_SETTLE)
        memory["rss_idle"] = server.memory_kb("VmRSS")
        lag: list[float] = []
        monitor = asyncio.create_task(_monitor_lag(lag))
        cpu, events_started = CpuSample.take(server), time.monotonic()
        writes = await write_events(server.url, spec.writer_token, spec.events, spec.rate, spec.label)
        await _wait_delivered(subscribers, spec.events, spec.deadline)
        cpu, events_seconds = CpuSample.take(server) - cpu, time.monotonic() - events_started
        memory["rss_after"] = server.memory_kb("VmRSS")
        memory["hwm_after"] = server.memory_kb("VmHWM")
        for task in [monitor, *tasks]:
            task.cancel()
        await asyncio.gather(monitor, *tasks, return_exceptions=True)
    return analyse(spec, subscribers, writes, connect_seconds, (cpu, events_seconds), lag, memory)


# -- analysis ----------------------------------------------------------------------------


@dataclass
class _Tally:
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    early: int = 0
    from_response: list[float] = field(default_factory=list)
    from_send: list[float] = field(default_factory=list)
    arrivals: dict[str, list[float]] = field(default_factory=dict)


def _count_subscriber(tally: _Tally, frames: list[Frame], by_object: dict[str, Write]) -> None:
    inserts = [frame for frame in frames if frame.event == "INSERT"]
    ids = [frame.id for frame in inserts if frame.id is not None]
    tally.out_of_order += sum(1 for before, after in itertools.pairwise(ids) if after <= before)
    seen: Counter[str] = Counter()
    for frame in inserts:
        object_id = json.loads(frame.data).get("object_id")
        write = by_object.get(object_id)
        if write is None:
            tally.unexpected += 1
            continue
        seen[object_id] += 1
        if seen[object_id] > 1:
            continue
        tally.delivered += 1
        tally.from_response.append(frame.arrived - write.done)
        tally.from_send.append(frame.arrived - write.sent)
        tally.early += frame.arrived < write.done
        tally.arrivals.setdefault(object_id, []).append(frame.arrived)
    tally.missing += sum(1 for object_id in by_object if seen[object_id] == 0)
    tally.duplicates += sum(count - 1 for count in seen.values() if count > 1)


def analyse(
    spec: PhaseSpec,
    subscribers: Sequence[Subscriber],
    writes: Sequence[Write],
    connect_seconds: float,
    cpu_time: tuple[CpuSample, float],
    lag: Sequence[float],
    memory: dict[str, int],
) -> PhaseResult:
    """Match every subscriber's INSERT frames to the writes and summarise."""
    cpu, events_seconds = cpu_time
    by_object = {write.object_id: write for write in writes if write.object_id is not None}
    tally = _Tally()
    for subscriber in subscribers:
        _count_subscriber(tally, subscriber.frames(), by_object)
    errors = [f"subscriber {s.index}: {s.error or 'stream ended by the server'}" for s in subscribers if s.failed]
    errors += [f"POST {w.index}: status {w.status}" for w in writes if w.object_id is None]
    span = writes[-1].sent - writes[0].sent if len(writes) > 1 else 0.0
    return PhaseResult(
        label=spec.label,
        subscribers=len(subscribers),
        events=len(writes),
        connect_seconds=connect_seconds,
        failed_subscribers=sum(s.failed for s in subscribers),
        write_errors=len(writes) - len(by_object),
        achieved_rate=(len(writes) - 1) / span if span else math.nan,
        expected=len(by_object) * len(subscribers),
        delivered=tally.delivered,
        missing=tally.missing,
        duplicates=tally.duplicates,
        unexpected=tally.unexpected,
        out_of_order=tally.out_of_order,
        early=tally.early,
        latency_response=Summary.of(tally.from_response),
        latency_send=Summary.of(tally.from_send),
        spread=Summary.of([max(times) - min(times) for times in tally.arrivals.values()]),
        post_roundtrip=Summary.of([w.done - w.sent for w in writes]),
        server_cpu_seconds=cpu.server,
        client_cpu_seconds=cpu.client,
        other_cpu_seconds=max(cpu.machine - cpu.server - cpu.client, 0.0),
        events_seconds=events_seconds,
        client_lag=Summary.of(lag),
        memory_kb=memory,
        errors=errors[:20],
        timeline=_timeline(writes, tally.arrivals),
    )


def _timeline(writes: Sequence[Write], arrivals: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Per write, in ms: when it was sent (from the first send), its round trip, its first and last delivery."""
    origin = writes[0].sent if writes else 0.0
    rows = []
    for write in writes:
        times = arrivals.get(write.object_id or "", [])
        rows.append(
            {
                "index": write.index,
                "status": write.status,
                "sent": round((write.sent - origin) * 1000, 3),
                "roundtrip": round((write.done - write.sent) * 1000, 3),
                "first_delivery": round((min(times) - write.sent) * 1000, 3) if times else None,
                "last_delivery": round((max(times) - write.sent) * 1000, 3) if times else None,
                "deliveries": len(times),
            }
        )
    return rows


# -- the run -----------------------------------------------------------------------------


@dataclass
class RunResult:
    vendor: str
    database: str
    options: dict[str, Any]
    machine: dict[str, Any]
    memory_kb: dict[str, int]
    phases: dict[str, PhaseResult]
    server_log_problems: list[str]


async def run_phases(server: Server, args: argparse.Namespace) -> tuple[dict[str, PhaseResult], dict[str, int]]:
    """Warm-up, the 1-subscriber baseline, then the fan-out phase; with the server's memory between them."""
    writer, tokens = mint_tokens(args.subscribers, distinct_users=args.distinct_users)
    memory = {"rss_start": server.memory_kb("VmRSS")}
    phases: dict[str, PhaseResult] = {}
    specs = [
        PhaseSpec("warmup", [writer], writer, WARMUP_EVENTS, args.rate, args.deadline),
        PhaseSpec("baseline", [writer], writer, args.events, args.rate, args.deadline),
    ]
    for spec in specs:
        phases[spec.label] = await run_phase(server, spec)
    await asyncio.sleep(IDLE_SETTLE)  # the baseline's stream has gone
    memory["rss_before_subscribers"] = server.memory_kb("VmRSS")
    fanout = PhaseSpec("fanout", tokens, writer, args.events, args.rate, args.deadline)
    phases["fanout"] = await run_phase(server, fanout)
    memory.update(
        rss_idle_subscribers=phases["fanout"].memory_kb["rss_idle"],
        rss_after_events=phases["fanout"].memory_kb["rss_after"],
        peak_hwm=phases["fanout"].memory_kb["hwm_after"],
    )
    return phases, memory


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "httpx": httpx.__version__,
    }


def _log_problems(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(r"error|warning|traceback|exception", line, re.I)][:50]


def run(args: argparse.Namespace) -> RunResult:
    ensure_work_dir()
    load_before = os.getloadavg()[0]
    log_path = WORK_DIR / "live-server.log"
    with scratch_database(keep=args.keep_database) as database:
        seed(database)
        with Server(database, log_path) as server:
            phases, memory = asyncio.run(run_phases(server, args))
        problems = _log_problems(server.log())
    options = {key: value for key, value in vars(args).items() if key != "quick"}
    host = {**machine(), "load_before": load_before, "load_after": os.getloadavg()[0]}
    return RunResult(database.vendor, database.name, options, host, memory, phases, problems)


# -- the report --------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _ratio(value: float, reference: float) -> str:
    return "-" if math.isnan(value) or math.isnan(reference) or reference <= 0 else f"x{value / reference:.2f}"


def latency_table(base: PhaseResult, fan: PhaseResult) -> list[str]:
    header = (
        f"{'':18}{'subs':>6}{'delivered':>14}{'missing':>9}{'dup':>5}{'p50 resp':>10}{'p99 resp':>10}"
        f"{'max resp':>10}{'p50 sent':>10}{'p99 sent':>10}{'p99 spread':>12}"
    )
    lines = [header]
    for name, phase in (("1 subscriber", base), (f"{fan.subscribers} subscribers", fan)):
        lines.append(
            f"{name:18}{phase.subscribers:>6}{f'{phase.delivered}/{phase.expected}':>14}{phase.missing:>9}"
            f"{phase.duplicates:>5}{_ms(phase.latency_response.p50):>10}{_ms(phase.latency_response.p99):>10}"
            f"{_ms(phase.latency_response.max):>10}{_ms(phase.latency_send.p50):>10}{_ms(phase.latency_send.p99):>10}"
            f"{_ms(phase.spread.p99):>12}"
        )
    response, sent = (base.latency_response, fan.latency_response), (base.latency_send, fan.latency_send)
    lines.append(
        f"{'ratio to 1':18}{'':6}{'':14}{'':9}{'':5}{_ratio(response[1].p50, response[0].p50):>10}"
        f"{_ratio(response[1].p99, response[0].p99):>10}{_ratio(response[1].max, response[0].max):>10}"
        f"{_ratio(sent[1].p50, sent[0].p50):>10}{_ratio(sent[1].p99, sent[0].p99):>10}"
    )
    return lines


def memory_table(memory: dict[str, int], subscribers: int) -> list[str]:
    added = memory["rss_idle_subscribers"] - memory["rss_before_subscribers"]
    rows = [
        ("at start", memory["rss_start"], ""),
        ("before subscribers (warm)", memory["rss_before_subscribers"], ""),
        (
            f"{subscribers} idle subscribers",
            memory["rss_idle_subscribers"],
            f"   +{added / 1024:.1f} MiB, {added / subscribers:.1f} KiB/subscriber",
        ),
        ("after the events", memory["rss_after_events"], ""),
        ("peak (VmHWM)", memory["peak_hwm"], ""),
    ]
    return [f"  {label:<28}{kb / 1024:8.1f} MiB{extra}" for label, kb, extra in rows]


def _phase_notes(phase: PhaseResult) -> list[str]:
    roundtrip = phase.post_roundtrip
    return [
        f"  {phase.label}: {phase.events} POSTs at {phase.achieved_rate:.1f}/s, round trip p50 {_ms(roundtrip.p50)} "
        f"p99 {_ms(roundtrip.p99)} max {_ms(roundtrip.max)} ms; {phase.subscribers} subscribed in "
        f"{phase.connect_seconds:.2f} s, failed {phase.failed_subscribers}; write errors {phase.write_errors}",
        f"    unexpected {phase.unexpected}, out of order {phase.out_of_order}, arrived before the POST response "
        f"{phase.early} (min resp {_ms(phase.latency_response.min)} ms); spread p50 {_ms(phase.spread.p50)} ms",
        f"    CPU during the events: server {phase.server_cpu_seconds:.2f} s, client {phase.client_cpu_seconds:.2f} s, "
        f"other processes {phase.other_cpu_seconds:.2f} s (in {phase.events_seconds:.1f} s: "
        f"{_other_cores(phase):.2f} cores); client loop lag p50 {_ms(phase.client_lag.p50)} p99 "
        f"{_ms(phase.client_lag.p99)} ms",
    ]


def _other_cores(phase: PhaseResult) -> float:
    """CPUs kept busy by processes other than the server and the client, on average."""
    return phase.other_cpu_seconds / phase.events_seconds if phase.events_seconds > 0 else 0.0


def report(result: RunResult) -> str:
    base, fan = result.phases["baseline"], result.phases["fanout"]
    options, m = result.options, result.machine
    users = "one user each" if options["distinct_users"] else "one shared token"
    lines = [
        f"djfapi.live fan-out: GET {FEED} (SSE), {result.vendor}, one uvicorn worker; "
        f"{options['events']} POST {COLLECTION} at {options['rate']:g}/s; subscribers: {users}",
        f"machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}; load average {m['load_before']:.2f} "
        f"before, {m['load_after']:.2f} after",
        "",
        "delivery latency (ms; resp = arrival - POST response, sent = arrival - POST sent; "
        "spread = last - first arrival of one event)",
        *latency_table(base, fan),
        "",
        "server memory (RSS, /proc/<pid>/status)",
        *memory_table(result.memory_kb, fan.subscribers),
        "",
        "notes",
        *_phase_notes(base),
        *_phase_notes(fan),
    ]
    for phase in (base, fan):
        lines += [f"  ! {phase.label}: {error}" for error in phase.errors]
    lines += [f"  ! server log: {line}" for line in result.server_log_problems]
    busy = max(_other_cores(phase) for phase in (base, fan))
    if busy > BUSY_MACHINE * (m["nproc"] or 1):
        lines.append(
            f"  ! other processes kept {busy:.2f} of {m['nproc']} CPUs busy: these figures measure a shared machine"
        )
    return "\n".join(lines)


def write_json(result: RunResult) -> Path:
    path = WORK_DIR / f"live-{result.vendor}.json"
    path.write_text(json.dumps(asdict(result), indent=2, default=str) + "\n")
    return path


# -- command line ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, help="concurrent SSE subscribers (default 200; quick 50)")
    parser.add_argument("--events", type=int, help="writes per phase (default 200; quick 50)")
    parser.add_argument("--rate", type=float, default=20.0, help="writes per second (default 20)")
    parser.add_argument("--quick", action="store_true", help="50 subscribers and 50 events (unless given)")
    parser.add_argument(
        "--distinct-users", action="store_true", help="one user per subscriber (no shared visibility work)"
    )
    parser.add_argument(
        "--deadline", type=float, default=30.0, help="seconds after the last write for every delivery (default 30)"
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="keep the database (to inspect the outbox; a kept PostgreSQL one goes at the next run)",
    )
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.subscribers < 1 or args.events < 1 or args.rate <= 0:
        parser.error("--subscribers, --events and --rate must be positive")
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: server stopped, database dropped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    result = run(args)
    print(report(result))
    print(f"\nresults: {write_json(result)}; server log: {WORK_DIR / 'live-server.log'}")
    clean = all(
        phase.missing == phase.duplicates == phase.unexpected == phase.failed_subscribers == phase.write_errors == 0
        for phase in result.phases.values()
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())

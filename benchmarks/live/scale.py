"""The feed at scale: 1,000 subscribers over 100 users and 10 tenants on one process.

SPEC §10 "The feed never slows writes": with that population, delivery p99 under
250 ms from the write's commit, nothing lost, in order, no duplicates, and a write's
response time within 1.5x of the same write with no subscribers. From the repository
root::

    python -m benchmarks.live scale                  # 1,000 subscribers, 300 writes at 20/s, SQLite
    python -m benchmarks.live scale --quick          # 200 subscribers, 20 users, 4 tenants, 100 writes
    python -m benchmarks.live scale --runs 3         # three runs (fresh database and server each), medians
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_livebench python -m benchmarks.live scale
    DJFAPI_GC_THRESHOLD=default python -m benchmarks.live scale   # the interpreter's collector thresholds

The server runs the demo's settings, and so the demo's ``DJFAPI["GC_THRESHOLD"]``
(10,000; see ``djfapi.ops.collector``); the report names the thresholds in effect.

The population (``benchmarks.live.seeding``): user ``n`` belongs to tenant ``n % 10``
and owns one company there. Every third user subscribes with the ``own`` scope
(``business.companies.read.own``: the demo's filter then asks for companies the user
owns, an ``EXISTS`` on employees), the others with ``any`` (their tenant's companies;
half of them with every scope of the demo, half with ``read.any`` alone, so that
their grants differ). Subscriber ``i`` is user ``i % 100``: ten tabs per user, all on
``GET /companies/subscribe`` over SSE (``benchmarks.live.sse``).

The phases, on one uvicorn worker (``benchmarks.live.app``, demo settings; on
PostgreSQL with persistent connections, ``CONN_MAX_AGE=60`` and health checks, as
``docs/deployment.md`` recommends):

1. warm-up: 10 subscribers, 20 writes (not reported);
2. quiet: the writes with no subscriber — the reference for write latency;
3. loaded: the subscriptions are opened (all ``ready``, then the idle RSS), then the
   same number of writes at the same rate;
4. quiet again, to see whether the server drifted meanwhile.

The writes go round the users (so round the tenants), each as its user with every
scope: three of four ``PATCH /companies/{the user's company}`` (a rename: an UPDATE
that the tenant's ``any`` subscribers and the owner's ``own`` subscribers see), one of
four ``POST /companies`` (an INSERT only ``any`` subscribers see), open loop at
``--rate`` (``benchmarks.live.writes``).

Checks: after the loaded phase the outbox is read back with each event's commit time
(``GET /bench/live/events``); every subscriber must have received exactly the events
its scope lets it see (its tenant's, and for ``own`` only UPDATEs of its user's
company), in id order, each once. Latency is *arrival - commit* per delivery, p50/p99/
max over all of them; write latency is each write's round trip, loaded against quiet.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.config import WORK_DIR, ensure_work_dir
from benchmarks.live import harness
from benchmarks.live.database import Database, run_command, scratch_database
from benchmarks.live.server import CpuSample, Server, machine
from benchmarks.live.sse import Subscriber, close_all, open_all
from benchmarks.live.stats import Summary, median_spread, ms
from benchmarks.live.writes import Write, WriteSpec, write_schedule

FEED = "/companies/subscribe"
APP = "benchmarks.live.app:app"
READ_ANY, READ_OWN = "business.companies.read.any", "business.companies.read.own"
READY_TIMEOUT = 180.0
IDLE_SETTLE = 1.0
WARMUP = {"subscribers": 10, "writes": 20}
DEFAULTS = {"subscribers": 1000, "users": 100, "tenants": 10, "writes": 300}
QUICK = {"subscribers": 200, "users": 20, "tenants": 4, "writes": 100}
TARGET_P99_MS = 250.0
TARGET_WRITE_RATIO = 1.5


@dataclass(frozen=True)
class User:
    name: str
    tenant: str
    company: str
    own: bool  # subscribes with read.own
    read_token: str
    write_token: str


def population(database: Database, tenants: int, users: int) -> list[User]:
    """Seed the database and mint every user's tokens."""
    lines = run_command(database, "-m", "benchmarks.live.seeding", str(tenants), str(users)).splitlines()
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    harness.setup_django()
    from testproject.tokens import ALL_SCOPES

    people = []
    for index, row in enumerate(rows):
        own = index % 3 == 0
        scopes = (READ_OWN,) if own else (ALL_SCOPES if index % 2 else (READ_ANY,))
        people.append(
            User(
                row["user"],
                row["tenant"],
                row["company"],
                own,
                harness.mint(row["tenant"], row["user"], scopes),
                harness.mint(row["tenant"], row["user"], ALL_SCOPES),
            )
        )
    return people


def write_specs(users: Sequence[User], count: int, label: str) -> list[WriteSpec]:
    """Round the users: three PATCHes of the user's company for one POST of a new one."""
    specs = []
    for index in range(count):
        user = users[index % len(users)]
        if (index + index // len(users)) % 4 == 3:
            specs.append(WriteSpec("POST", "/companies", {"name": f"{label} {index}"}, user.write_token, user))
        else:
            body = {"name": f"{user.name}'s company, {label} {index}"}
            specs.append(WriteSpec("PATCH", f"/companies/{user.company}", body, user.write_token, user))
    return specs


# -- a phase ----------------------------------------------------------------------------


@dataclass
class Deliveries:
    subscribers: int = 0
    expected: int = 0
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    failed_subscribers: int = 0
    latency: Summary = field(default_factory=lambda: Summary.of([]))
    latency_own: Summary = field(default_factory=lambda: Summary.of([]))
    latency_any: Summary = field(default_factory=lambda: Summary.of([]))
    connect_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    timeline: list[tuple[int, float, float, float, int]] = field(default_factory=list)  # per event, see _timeline


@dataclass
class PhaseResult:
    label: str
    writes: int
    write_errors: int
    achieved_rate: float
    write_latency: Summary
    write_latency_by_method: dict[str, Summary]
    deliveries: Deliveries
    server_cpu_seconds: float
    client_cpu_seconds: float
    other_cpu_seconds: float
    seconds: float
    client_lag: Summary
    memory_kb: dict[str, int] = field(default_factory=dict)


def _visible(user: User, event: harness.OutboxEvent) -> bool:
    if event.tenant_id != user.tenant:
        return False
    return not user.own or (event.action == "UPDATE" and event.object_id == user.company)


def check_deliveries(
    subscribers: Sequence[Subscriber], owners: Sequence[User], events: Sequence[harness.OutboxEvent]
) -> Deliveries:
    """Each subscriber's change frames against exactly what its scope lets it see."""
    result = Deliveries(subscribers=len(subscribers))
    committed = {event.id: event.committed for event in events}
    latencies: dict[bool, list[float]] = {True: [], False: []}
    arrivals: dict[int, list[float]] = {}
    for subscriber, user in zip(subscribers, owners, strict=True):
        expected = [event.id for event in events if _visible(user, event)]
        frames = [frame for frame in subscriber.frames() if frame.event in ("INSERT", "UPDATE", "DELETE")]
        received = [frame.id for frame in frames if frame.id is not None]
        counts = Counter(received)
        wanted = set(expected)
        result.expected += len(expected)
        result.delivered += len(wanted & counts.keys())
        result.missing += len(wanted - counts.keys())
        result.unexpected += sum(count for event_id, count in counts.items() if event_id not in wanted)
        result.duplicates += sum(count - 1 for event_id, count in counts.items() if event_id in wanted and count > 1)
        result.out_of_order += sum(1 for before, after in itertools.pairwise(received) if after <= before)
        for frame in frames:
            commit = committed.get(frame.id or -1)
            if frame.id in wanted and commit is not None:
                latencies[user.own].append(frame.arrived - commit)
                arrivals.setdefault(frame.id, []).append(frame.arrived - commit)
        if subscriber.failed:
            result.failed_subscribers += 1
            result.errors.append(f"subscriber {subscriber.index}: {subscriber.error or 'stream ended by the server'}")
    result.latency = Summary.of(latencies[True] + latencies[False])
    result.latency_own, result.latency_any = Summary.of(latencies[True]), Summary.of(latencies[False])
    result.errors = result.errors[:20]
    result.timeline = _timeline(events, arrivals)
    return result


def _timeline(
    events: Sequence[harness.OutboxEvent], arrivals: dict[int, list[float]]
) -> list[tuple[int, float, float, float, int]]:
    """Per event: id, commit (s from the first commit), first and last delivery (ms from its commit), deliveries."""
    origin = min((event.committed for event in events if event.committed), default=0.0)
    rows = []
    for event in events:
        times = arrivals.get(event.id)
        if event.committed is None or not times:
            continue
        rows.append(
            (
                event.id,
                round(event.committed - origin, 3),
                round(min(times) * 1000, 1),
                round(max(times) * 1000, 1),
                len(times),
            )
        )
    return rows


async def run_phase(
    server: Server, label: str, users: Sequence[User], subscriptions: int, writes: int, args: argparse.Namespace
) -> PhaseResult:
    owners = [users[index % len(users)] for index in range(subscriptions)]
    subscribers = [Subscriber(index, user.read_token, FEED) for index, user in enumerate(owners)]
    memory: dict[str, int] = {}
    before = await harness.fetch_events(server.url)
    start_id = before[-1].id if before else 0
    opened = time.monotonic()
    tasks = await open_all(subscribers, "127.0.0.1", server.port, READY_TIMEOUT) if subscribers else []
    connect_seconds = time.monotonic() - opened
    if subscribers:
        await asyncio.sleep(IDLE_SETTLE)
    memory["rss_idle"] = server.memory_kb("VmRSS")
    lag: list[float] = []
    monitor = asyncio.create_task(harness.monitor_lag(lag))
    cpu, started = CpuSample.take(server), time.monotonic()
    profiler = _start_profiler(server, label, args)
    done = await write_schedule(server.url, write_specs(users, writes, f"{label}-{os.getpid()}"), args.rate)
    events = [event for event in await harness.fetch_events(server.url, start_id)]
    expected = {id(s): sum(1 for e in events if _visible(user, e)) for s, user in zip(subscribers, owners, strict=True)}
    await harness.wait_delivered(subscribers, lambda s: expected[id(s)], args.deadline)
    if os.environ.get("BENCH_GC_DUMP") and label == "loaded":
        (WORK_DIR / "live-scale-gc.json").write_text(httpx.get(f"{server.url}/bench/live/gc", timeout=60).text)
    cpu, seconds = CpuSample.take(server) - cpu, time.monotonic() - started
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(30)
    memory["rss_after"] = server.memory_kb("VmRSS")
    memory["hwm_after"] = server.memory_kb("VmHWM")
    monitor.cancel()
    await close_all([monitor, *tasks])  # type: ignore[list-item]
    events = await harness.fetch_events(server.url, start_id)  # commit times of late events too
    deliveries = check_deliveries(subscribers, owners, events)
    deliveries.connect_seconds = connect_seconds
    return _phase_result(label, done, deliveries, cpu, seconds, lag, memory)


def _start_profiler(server: Server, label: str, args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the server for the phase (``--profile``), as collapsed stacks."""
    if not args.profile or label != "loaded":
        return None
    output = WORK_DIR / f"live-scale-{label}.py-spy.txt"
    command = [
        "py-spy",
        "record",
        "-p",
        str(server.pid),
        "-o",
        str(output),
        "-f",
        "raw",
        "-r",
        "100",
        "--threads",
        "--gil",
        "--nonblocking",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _phase_result(
    label: str,
    writes: list[Write],
    deliveries: Deliveries,
    cpu: CpuSample,
    seconds: float,
    lag: list[float],
    memory: dict[str, int],
) -> PhaseResult:
    span = writes[-1].sent - writes[0].sent if len(writes) > 1 else 0.0
    by_method = {
        method: Summary.of([w.roundtrip for w in writes if w.spec.method == method]) for method in ("PATCH", "POST")
    }
    return PhaseResult(
        label=label,
        writes=len(writes),
        write_errors=sum(not write.ok for write in writes),
        achieved_rate=(len(writes) - 1) / span if span else math.nan,
        write_latency=Summary.of([w.roundtrip for w in writes]),
        write_latency_by_method=by_method,
        deliveries=deliveries,
        server_cpu_seconds=cpu.server,
        client_cpu_seconds=cpu.client,
        other_cpu_seconds=cpu.others,
        seconds=seconds,
        client_lag=Summary.of(lag),
        memory_kb=memory,
    )


# -- a run -------------------------------------------------------------------------------


@dataclass
class RunResult:
    vendor: str
    options: dict[str, Any]
    machine: dict[str, Any]
    phases: dict[str, PhaseResult]
    memory_kb: dict[str, int]
    server_log_problems: list[str]
    gc_threshold: list[int] = field(default_factory=list)  # the server's collector thresholds

    @property
    def loaded(self) -> PhaseResult:
        return self.phases["loaded"]

    def quiet_write(self, attribute: str) -> float:
        """The quiet phases' write latency (``p50``/``p99``), the mean of before and after."""
        values = [getattr(self.phases[name].write_latency, attribute) for name in ("quiet", "quiet_after")]
        return statistics.fmean(values)

    def write_ratio(self, attribute: str) -> float:
        return getattr(self.loaded.write_latency, attribute) / self.quiet_write(attribute)

    @property
    def clean(self) -> bool:
        d = self.loaded.deliveries
        errors = sum(phase.write_errors for phase in self.phases.values())
        return d.missing == d.duplicates == d.unexpected == d.out_of_order == d.failed_subscribers == errors == 0


async def run_phases(server: Server, users: list[User], args: argparse.Namespace) -> dict[str, PhaseResult]:
    phases = {"warmup": await run_phase(server, "warmup", users, WARMUP["subscribers"], WARMUP["writes"], args)}
    phases["quiet"] = await run_phase(server, "quiet", users, 0, args.writes, args)
    phases["loaded"] = await run_phase(server, "loaded", users, args.subscribers, args.writes, args)
    await asyncio.sleep(IDLE_SETTLE)  # the streams have gone
    phases["quiet_after"] = await run_phase(server, "quiet_after", users, 0, args.writes, args)
    return phases


def run_once(args: argparse.Namespace) -> RunResult:
    ensure_work_dir()
    load_before = os.getloadavg()[0]
    log_path = WORK_DIR / "live-scale-server.log"
    env = {"CONN_MAX_AGE": "60", "CONN_HEALTH_CHECKS": "1"}
    with scratch_database(keep=args.keep_database) as database:
        users = population(database, args.tenants, args.users)
        with Server(database, log_path, APP, env=env) as server:
            rss_start = server.memory_kb("VmRSS")
            threshold = httpx.get(f"{server.url}/bench/live/gc", timeout=60).json()["threshold"]
            phases = asyncio.run(run_phases(server, users, args))
        problems = harness.log_problems(server.log())
    loaded = phases["loaded"].memory_kb
    memory = {
        "rss_start": rss_start,
        "rss_before_subscribers": phases["quiet"].memory_kb["rss_after"],
        "rss_idle_subscribers": loaded["rss_idle"],
        "rss_after_events": loaded["rss_after"],
        "peak_hwm": loaded["hwm_after"],
    }
    options = {key: value for key, value in vars(args).items() if key != "quick"}
    host = {**machine(), "load_before": load_before, "load_after": os.getloadavg()[0]}
    return RunResult(database.vendor, options, host, phases, memory, problems, threshold)


# -- the report --------------------------------------------------------------------------


def report(result: RunResult) -> str:
    options, m = result.options, result.machine
    loaded, d = result.loaded, result.loaded.deliveries
    own = sum(1 for index in range(options["users"]) if index % 3 == 0)
    added = result.memory_kb["rss_idle_subscribers"] - result.memory_kb["rss_before_subscribers"]
    lines = [
        f"djfapi.live at scale: GET {FEED} (SSE), {result.vendor}, one uvicorn worker; {options['subscribers']} "
        f"subscribers over {options['users']} users ({own} own) and {options['tenants']} tenants; "
        f"{options['writes']} writes at {options['rate']:g}/s (3 PATCH : 1 POST)",
        f"machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}; load average {m['load_before']:.2f} before, "
        f"{m['load_after']:.2f} after; server's garbage collector thresholds {tuple(result.gc_threshold)}",
        "",
        f"deliveries: {d.delivered}/{d.expected}, missing {d.missing}, duplicates {d.duplicates}, unexpected "
        f"{d.unexpected}, out of order {d.out_of_order}, failed subscribers {d.failed_subscribers} "
        f"(subscribed in {d.connect_seconds:.1f} s)",
        f"delivery latency from commit (ms): p50 {ms(d.latency.p50)}  p99 {ms(d.latency.p99)}  max "
        f"{ms(d.latency.max)}   [any: p99 {ms(d.latency_any.p99)}; own: p99 {ms(d.latency_own.p99)}]   "
        f"target p99 < {TARGET_P99_MS:g}",
        "",
        "write round trip (ms)      p50      p99      max   PATCH p50   POST p50",
    ]
    for name in ("quiet", "loaded", "quiet_after"):
        phase = result.phases[name]
        w, by = phase.write_latency, phase.write_latency_by_method
        lines.append(
            f"  {name:<20}{ms(w.p50):>9}{ms(w.p99):>9}{ms(w.max):>9}"
            f"{ms(by['PATCH'].p50):>12}{ms(by['POST'].p50):>11}"
            f"   ({phase.achieved_rate:.1f}/s, errors {phase.write_errors},"
            f" server CPU {phase.server_cpu_seconds:.1f} s)"
        )
    lines += [
        f"  loaded / quiet          x{result.write_ratio('p50'):.2f}    x{result.write_ratio('p99'):.2f}"
        f"            target p50 within x{TARGET_WRITE_RATIO:g}",
        "",
        f"server RSS: {result.memory_kb['rss_before_subscribers'] / 1024:.1f} MiB before subscribers, "
        f"{result.memory_kb['rss_idle_subscribers'] / 1024:.1f} MiB with them idle (+{added / 1024:.1f} MiB, "
        f"{added / max(options['subscribers'], 1):.1f} KiB each), {result.memory_kb['rss_after_events'] / 1024:.1f} "
        f"MiB after the writes, peak {result.memory_kb['peak_hwm'] / 1024:.1f} MiB",
        f"CPU during the loaded writes: server {loaded.server_cpu_seconds:.1f} s,"
        f" client {loaded.client_cpu_seconds:.1f} s, other processes {loaded.other_cpu_seconds:.1f} s"
        f" in {loaded.seconds:.1f} s; client loop lag p99 "
        f"{ms(loaded.client_lag.p99)} ms",
    ]
    lines += [f"  ! {error}" for error in d.errors]
    lines += [f"  ! server log: {line}" for line in result.server_log_problems]
    other = loaded.other_cpu_seconds / loaded.seconds if loaded.seconds else 0.0
    lines += harness.busy_warning(other, m["nproc"])
    return "\n".join(lines)


def summary(results: Sequence[RunResult]) -> str:
    """Medians (min-max) of several runs."""

    def row(name: str, values: list[float]) -> str:
        return f"  {name:<34}{median_spread(values)}"

    loaded = [r.loaded for r in results]
    return "\n".join(
        [
            f"{len(results)} runs on {results[0].vendor}: median (min-max)",
            row("delivery p50 from commit (ms)", [p.deliveries.latency.p50 for p in loaded]),
            row("delivery p99 from commit (ms)", [p.deliveries.latency.p99 for p in loaded]),
            row("delivery max from commit (ms)", [p.deliveries.latency.max for p in loaded]),
            row("write p50 quiet (ms)", [r.quiet_write("p50") for r in results]),
            row("write p50 loaded (ms)", [p.write_latency.p50 for p in loaded]),
            row("write p50 loaded / quiet", [r.write_ratio("p50") for r in results]),
            row("write p99 quiet (ms)", [r.quiet_write("p99") for r in results]),
            row("write p99 loaded (ms)", [p.write_latency.p99 for p in loaded]),
            row("write p99 loaded / quiet", [r.write_ratio("p99") for r in results]),
            row(
                "idle RSS added (MiB)",
                [(r.memory_kb["rss_idle_subscribers"] - r.memory_kb["rss_before_subscribers"]) / 1024 for r in results],
            ),
            row("server CPU, loaded phase (s)", [p.server_cpu_seconds for p in loaded]),
            f"  all deliveries exact, in order, once: {all(r.clean for r in results)}",
        ]
    )


def write_json(results: Sequence[RunResult]) -> Path:
    path = WORK_DIR / f"live-scale-{results[0].vendor}.json"
    path.write_text(json.dumps([asdict(result) for result in results], indent=2, default=str) + "\n")
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live scale", description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, help="SSE subscribers (default 1000; quick 200)")
    parser.add_argument("--users", type=int, help="distinct users (default 100; quick 20)")
    parser.add_argument("--tenants", type=int, help="tenants (default 10; quick 4)")
    parser.add_argument("--writes", type=int, help="writes per phase (default 300; quick 100)")
    parser.add_argument("--rate", type=float, default=20.0, help="writes per second (default 20)")
    parser.add_argument("--runs", type=int, default=1, help="runs, each on a fresh database and server (default 1)")
    parser.add_argument("--quick", action="store_true", help="a smaller population (unless given)")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds after the last write (default 30)")
    parser.add_argument("--keep-database", action="store_true", help="keep the database")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during the loaded phase")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if min(args.subscribers, args.users, args.tenants, args.writes, args.runs) < 1 or args.rate <= 0:
        parser.error("every count and the rate must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.stop_cleanly_on_sigterm()
    results = []
    for number in range(args.runs):
        result = run_once(args)
        results.append(result)
        print(f"\n== run {number + 1} of {args.runs} ==\n{report(result)}", flush=True)
    if len(results) > 1:
        print("\n" + summary(results))
    print(f"\nresults: {write_json(results)}; server log: {WORK_DIR / 'live-scale-server.log'}")
    return 0 if all(result.clean for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())

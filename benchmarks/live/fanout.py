"""Fan-out: delivery latency and memory of N SSE subscribers of one feed on one process.

Issue 8 asked for "a benchmark [that] holds 200 concurrent subscribers on one process
and reports event delivery latency p50/p99 and memory". From the repository root::

    python -m benchmarks.live                      # 200 subscribers, 200 events at 20/s, SQLite
    python -m benchmarks.live --quick              # 50 subscribers, 50 events
    python -m benchmarks.live --subscribers 500 --events 300 --rate 50
    python -m benchmarks.live --distinct-users     # every subscriber its own user (same tenant)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_livebench python -m benchmarks.live

Method: a fresh database seeded with the demo (``benchmarks.live.database``); the demo
under one uvicorn worker (``benchmarks.live.app``, which also notes each event's commit
time); phases, all on that one server:

* warm-up: 1 subscriber and 5 events, not reported (first requests, lazy imports);
* baseline: 1 subscriber, ``--events`` events at ``--rate`` per second;
* fan-out: ``--subscribers`` subscriptions to ``GET /companies/subscribe`` opened at
  once; once all got their ``ready`` event (and 1 s later) the idle RSS is read; then
  the same number of events at the same rate.

An event is ``POST /companies`` (the demo user's token with every scope), open loop
(``benchmarks.live.writes``). Every subscriber must then receive exactly one ``INSERT``
whose ``object_id`` is the POST's ``id`` (missing, duplicate and unexpected deliveries
are counted, and events whose ids go backwards).

Latency is *arrival - commit* (the event's transaction committed, as the server noted
it), *arrival - POST response* (what a client that wrote and waits for others to see
it observes; it can be negative) and *arrival - POST sent* (the full path). Percentiles
are nearest-rank over every (subscriber, event) pair; "spread" is, per event, last
arrival - first arrival across subscribers: how long the fan-out of one event takes.

By default all subscribers share one token (200 tabs of one dashboard); with
``--distinct-users`` each has its own user of the same tenant and scopes, which the
feed groups by what their row filter and field scopes produce. ``python -m
benchmarks.live scale`` is the benchmark of many users and tenants
(``benchmarks.live.scale``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.config import WORK_DIR, ensure_work_dir
from benchmarks.live import harness
from benchmarks.live.database import scratch_database, seed_demo
from benchmarks.live.server import CpuSample, Server, machine
from benchmarks.live.sse import Frame, Subscriber, close_all, open_all
from benchmarks.live.stats import Summary, ms, ratio
from benchmarks.live.writes import Write, WriteSpec, write_schedule

FEED = "/companies/subscribe"
COLLECTION = "/companies"
READY_TIMEOUT = 60.0  # seconds for every subscription to get its ready event
IDLE_SETTLE = 1.0  # seconds between the last ready event and reading the idle RSS
WARMUP_EVENTS = 5
DEFAULTS = {"subscribers": 200, "events": 200}
QUICK = {"subscribers": 50, "events": 50}
APP = "benchmarks.live.app:app"


def mint_tokens(count: int, *, distinct_users: bool) -> tuple[str, list[str]]:
    """The writer's token and one per subscriber: the demo user with every scope (or one user each)."""
    harness.setup_django()
    from testproject.seed import DEMO_TENANT, DEMO_USER
    from testproject.tokens import ALL_SCOPES

    shared = harness.mint(DEMO_TENANT, DEMO_USER, ALL_SCOPES)
    if not distinct_users:
        return shared, [shared] * count
    return shared, [harness.mint(DEMO_TENANT, f"{DEMO_USER}-{index}", ALL_SCOPES) for index in range(count)]


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
    latency_commit: Summary
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


@dataclass(frozen=True)
class PhaseSpec:
    label: str
    tokens: list[str]
    writer_token: str
    events: int
    rate: float
    deadline: float  # seconds after the last write for every delivery


async def run_phase(server: Server, spec: PhaseSpec) -> PhaseResult:
    """Open the subscriptions, read the idle RSS, write the events, wait for their delivery."""
    subscribers = [Subscriber(index, token, FEED) for index, token in enumerate(spec.tokens)]
    memory: dict[str, int] = {}
    opened = time.monotonic()
    tasks = await open_all(subscribers, "127.0.0.1", server.port, READY_TIMEOUT)
    connect_seconds = time.monotonic() - opened
    await asyncio.sleep(IDLE_SETTLE)
    memory["rss_idle"] = server.memory_kb("VmRSS")
    lag: list[float] = []
    monitor = asyncio.create_task(harness.monitor_lag(lag))
    cpu, events_started = CpuSample.take(server), time.monotonic()
    specs = [
        WriteSpec("POST", COLLECTION, {"name": f"live-bench {spec.label} {index}"}, spec.writer_token)
        for index in range(spec.events)
    ]
    writes = await write_schedule(server.url, specs, spec.rate)
    await harness.wait_delivered(subscribers, lambda s: spec.events, spec.deadline)
    cpu, events_seconds = CpuSample.take(server) - cpu, time.monotonic() - events_started
    memory["rss_after"] = server.memory_kb("VmRSS")
    memory["hwm_after"] = server.memory_kb("VmHWM")
    monitor.cancel()
    await close_all([monitor, *tasks])  # type: ignore[list-item]
    commits = {event.id: event.committed for event in await harness.fetch_events(server.url) if event.committed}
    return analyse(spec, subscribers, writes, commits, connect_seconds, (cpu, events_seconds), lag, memory)


@dataclass
class _Tally:
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    early: int = 0
    from_commit: list[float] = field(default_factory=list)
    from_response: list[float] = field(default_factory=list)
    from_send: list[float] = field(default_factory=list)
    arrivals: dict[str, list[float]] = field(default_factory=dict)


def _count_subscriber(
    tally: _Tally, frames: list[Frame], by_object: dict[str, Write], commits: dict[int, float]
) -> None:
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
        committed = commits.get(frame.id or -1)
        if committed is not None:
            tally.from_commit.append(frame.arrived - committed)
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
    commits: dict[int, float],
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
        _count_subscriber(tally, subscriber.frames(), by_object, commits)
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
        latency_commit=Summary.of(tally.from_commit),
        latency_response=Summary.of(tally.from_response),
        latency_send=Summary.of(tally.from_send),
        spread=Summary.of([max(times) - min(times) for times in tally.arrivals.values()]),
        post_roundtrip=Summary.of([w.roundtrip for w in writes]),
        server_cpu_seconds=cpu.server,
        client_cpu_seconds=cpu.client,
        other_cpu_seconds=cpu.others,
        events_seconds=events_seconds,
        client_lag=Summary.of(lag),
        memory_kb=memory,
        errors=errors[:20],
    )


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


def run(args: argparse.Namespace) -> RunResult:
    ensure_work_dir()
    load_before = os.getloadavg()[0]
    log_path = WORK_DIR / "live-server.log"
    with scratch_database(keep=args.keep_database) as database:
        seed_demo(database)
        with Server(database, log_path, APP) as server:
            phases, memory = asyncio.run(run_phases(server, args))
        problems = harness.log_problems(server.log())
    options = {key: value for key, value in vars(args).items() if key != "quick"}
    host = {**machine(), "load_before": load_before, "load_after": os.getloadavg()[0]}
    return RunResult(database.vendor, database.name, options, host, memory, phases, problems)


# -- the report --------------------------------------------------------------------------


def latency_table(base: PhaseResult, fan: PhaseResult) -> list[str]:
    header = (
        f"{'':18}{'subs':>6}{'delivered':>14}{'missing':>9}{'dup':>5}{'p50 commit':>12}{'p99 commit':>12}"
        f"{'max commit':>12}{'p50 resp':>10}{'p99 resp':>10}{'p99 sent':>10}{'p99 spread':>12}"
    )
    lines = [header]
    for name, phase in (("1 subscriber", base), (f"{fan.subscribers} subscribers", fan)):
        lines.append(
            f"{name:18}{phase.subscribers:>6}{f'{phase.delivered}/{phase.expected}':>14}{phase.missing:>9}"
            f"{phase.duplicates:>5}{ms(phase.latency_commit.p50):>12}{ms(phase.latency_commit.p99):>12}"
            f"{ms(phase.latency_commit.max):>12}{ms(phase.latency_response.p50):>10}"
            f"{ms(phase.latency_response.p99):>10}{ms(phase.latency_send.p99):>10}{ms(phase.spread.p99):>12}"
        )
    commit = (base.latency_commit, fan.latency_commit)
    lines.append(
        f"{'ratio to 1':18}{'':6}{'':14}{'':9}{'':5}{ratio(commit[1].p50, commit[0].p50):>12}"
        f"{ratio(commit[1].p99, commit[0].p99):>12}{ratio(commit[1].max, commit[0].max):>12}"
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


def _other_cores(phase: PhaseResult) -> float:
    return phase.other_cpu_seconds / phase.events_seconds if phase.events_seconds > 0 else 0.0


def _phase_notes(phase: PhaseResult) -> list[str]:
    roundtrip = phase.post_roundtrip
    return [
        f"  {phase.label}: {phase.events} POSTs at {phase.achieved_rate:.1f}/s, round trip p50 {ms(roundtrip.p50)} "
        f"p99 {ms(roundtrip.p99)} max {ms(roundtrip.max)} ms; {phase.subscribers} subscribed in "
        f"{phase.connect_seconds:.2f} s, failed {phase.failed_subscribers}; write errors {phase.write_errors}",
        f"    unexpected {phase.unexpected}, out of order {phase.out_of_order}, arrived before the POST response "
        f"{phase.early} (min resp {ms(phase.latency_response.min)} ms); spread p50 {ms(phase.spread.p50)} ms",
        f"    CPU during the events: server {phase.server_cpu_seconds:.2f} s, client {phase.client_cpu_seconds:.2f} s, "
        f"other processes {phase.other_cpu_seconds:.2f} s (in {phase.events_seconds:.1f} s: "
        f"{_other_cores(phase):.2f} cores); client loop lag p50 {ms(phase.client_lag.p50)} p99 "
        f"{ms(phase.client_lag.p99)} ms",
    ]


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
        "delivery latency (ms; commit = arrival - the event's commit, resp = arrival - POST response, "
        "sent = arrival - POST sent; spread = last - first arrival of one event)",
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
    lines += harness.busy_warning(max(_other_cores(phase) for phase in (base, fan)), m["nproc"])
    return "\n".join(lines)


def write_json(result: RunResult) -> Path:
    path = WORK_DIR / f"live-{result.vendor}.json"
    path.write_text(json.dumps(asdict(result), indent=2, default=str) + "\n")
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, help="concurrent SSE subscribers (default 200; quick 50)")
    parser.add_argument("--events", type=int, help="writes per phase (default 200; quick 50)")
    parser.add_argument("--rate", type=float, default=20.0, help="writes per second (default 20)")
    parser.add_argument("--quick", action="store_true", help="50 subscribers and 50 events (unless given)")
    parser.add_argument("--distinct-users", action="store_true", help="one user per subscriber")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.stop_cleanly_on_sigterm()
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

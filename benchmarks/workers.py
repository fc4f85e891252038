"""``python -m benchmarks workers``: djfapi's read throughput with 1 and with 2 uvicorn workers.

The read workloads (W1 list, W2 get, W3 filtered child list, W6 aggregate) at one
concurrency, djfapi served by ``uvicorn --workers 1`` and ``--workers 2`` (both
servers up, idle but the one measured), each cell warm-up then a timed window, the
two worker counts one after the other within each round (their order alternating),
so that the ratio is always taken between figures measured seconds apart. With
``--rounds N`` the table shows each figure's median with its range. The load
generator is a process of its own and shares the machine's cores with the workers:
on a 2-core machine two workers compete with it, which is part of what is measured
(its CPU share is printed). Results are also written as JSON to the work directory.

    python -m benchmarks workers --rounds 3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_bench python -m benchmarks workers --rounds 3
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.config import DEFAULT_COMPANIES, SCOPES, TENANT, USER, ensure_work_dir, setup_django

READ_WORKLOADS = ("W1", "W2", "W3", "W6")
WORKER_COUNTS = (1, 2)


@dataclass(frozen=True)
class WorkerOptions:
    workloads: tuple[str, ...] = READ_WORKLOADS
    concurrency: int = 16
    duration: float = 10.0
    warmup: float = 3.0
    rounds: int = 3
    companies: int = DEFAULT_COMPANIES


def _spread(values: Sequence[float], fmt: str) -> str:
    if not values:
        return "-"
    middle = format(statistics.median(values), fmt)
    if len(values) == 1:
        return middle
    return f"{middle} [{format(min(values), fmt)}-{format(max(values), fmt)}]"


def run_workers(options: WorkerOptions) -> int:
    setup_django()
    from benchmarks.runner import Options as RunOptions
    from benchmarks.runner import describe_environment, drive
    from benchmarks.seed import seed
    from benchmarks.server import Server
    from benchmarks.workloads import build
    from testproject.tokens import mint_token

    work = ensure_work_dir()
    seed(options.companies)
    workloads = {key: workload for key, workload in build().items() if key in options.workloads}
    token = mint_token(tenant=TENANT, user=USER, scopes=SCOPES, expires=48 * 3600)
    print("\n".join(describe_environment(RunOptions(companies=options.companies))), flush=True)
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    servers: dict[int, Server] = {}

    def serving(count: int) -> Server:
        """The server with ``count`` workers, started again if it is gone (the machine is shared)."""
        server = servers.get(count)
        if server is not None and server.process is not None and server.process.poll() is None:
            return server
        if server is not None:
            print(f"the {count}-worker server was gone; starting it again", flush=True)
            server.__exit__(None, None, None)
        server = servers[count] = Server("djfapi", workers=count).__enter__()
        time.sleep(3.0)  # every worker of a multi-worker server has imported the app
        return server

    try:
        for number in range(options.rounds):
            order = WORKER_COUNTS if number % 2 == 0 else tuple(reversed(WORKER_COUNTS))
            for key, workload in workloads.items():
                for count in order:
                    result = drive(
                        serving(count).port,
                        None,  # several processes: the server's own CPU is not split out
                        workload.requests,
                        token,
                        options.concurrency,
                        options.warmup,
                        options.duration,
                        workload.status,
                    )
                    result["round"] = number
                    results.setdefault((key, count), []).append(result)
                    print(
                        f"round {number + 1} {key} workers={count}: {result['rps']:,.0f} req/s, "
                        f"p50 {result['p50_ms'] or 0:.1f} ms, p99 {result['p99_ms'] or 0:.1f} ms, "
                        f"errors {result['errors']}",
                        flush=True,
                    )
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    lines = table(workloads, results, options)
    print("\n".join(lines))
    path = work / "workers.json"
    path.write_text(
        json.dumps({"options": options.__dict__, "results": {f"{k}/{c}": r for (k, c), r in results.items()}}, indent=2)
    )
    print(f"\nresults: {path}")
    errors = sum(result["errors"] for runs in results.values() for result in runs)
    return 1 if errors else 0


def table(
    workloads: dict[str, Any], results: dict[tuple[str, int], list[dict[str, Any]]], options: WorkerOptions
) -> list[str]:
    """Requests/s per worker count and the 2-worker/1-worker ratio, round by round, as medians [ranges]."""
    lines = [
        "",
        f"djfapi read throughput, 1 vs 2 uvicorn workers, concurrency {options.concurrency}, "
        f"{options.rounds} round(s) of {options.duration:g} s cells: median [lowest-highest]",
        "",
        "| workload | 1 worker req/s | 2 workers req/s | 2 / 1 | generator CPU (2 workers) |",
        "|---|---|---|---|---|",
    ]
    left_out = 0
    for key, workload in workloads.items():
        # A cell with errors (a server killed by someone else on a shared machine) is left
        # out, and so is the other worker count's cell of that round.
        by_round = {
            count: {r["round"]: r for r in results.get((key, count), []) if not r["errors"]} for count in (1, 2)
        }
        rounds = sorted(set(by_round[1]) & set(by_round[2]))
        left_out += sum(len(results.get((key, count), [])) for count in (1, 2)) - 2 * len(rounds)
        one, two = [by_round[1][n] for n in rounds], [by_round[2][n] for n in rounds]
        ratios = [b["rps"] / a["rps"] for a, b in zip(one, two, strict=True) if a["rps"]]
        generator = [result["generator_cpu"] * 100 for result in two if result.get("generator_cpu") is not None]
        lines.append(
            f"| {key} {workload.title} | {_spread([r['rps'] for r in one], ',.0f')} | "
            f"{_spread([r['rps'] for r in two], ',.0f')} | {_spread(ratios, '.2f')} | {_spread(generator, '.0f')}% |"
        )
    if left_out:
        lines.append(f"\n{left_out} cell(s) with errors left out, with their pair of the same round")
    return lines

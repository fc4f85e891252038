"""``python -m benchmarks``: seed, check, measure and print the tables.

First, for each contender in turn (the baseline first, always: every ratio needs it),
an instrumented server for the untimed pass: content check against the baseline, SQL
statements per request, memory. Then every contender is served by its own clean
server process, all started together (an idle server costs nothing), and the timed
cells run cell by cell: for each workload and concurrency, each contender one after
the other, warm-up then the timed window. Contenders measured seconds apart share
the machine's conditions, so the ratios hold up even when the machine is shared.
``rounds`` repeats the whole sweep (rotating the contenders' order); every ratio is
taken within a round, and the tables show each cell's median over the rounds with
their range. Servers and the load generator are separate processes sharing the
CPUs: the generator's own CPU, the server's and everyone else's are printed per cell,
and the generator's ceiling against a bare ASGI app first.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from benchmarks.config import DEFAULT_COMPANIES, REPO_ROOT, SCOPES, TENANT, USER, ensure_work_dir, setup_django
from benchmarks.contenders import DEFAULT_CONTENDERS, TRIVIAL


@dataclass(frozen=True)
class Options:
    contenders: tuple[str, ...] = DEFAULT_CONTENDERS
    workloads: tuple[str, ...] = ("W1", "W2", "W3", "W4", "W5", "W6")
    concurrency: tuple[int, ...] = (1, 16)
    duration: float = 10.0
    warmup: float = 2.0
    companies: int = DEFAULT_COMPANIES
    rounds: int = 1
    pg_connections: str = "persistent"  # on PostgreSQL: "persistent" (CONN_MAX_AGE + health checks) or "pool"

    @classmethod
    def quick(cls) -> Options:
        return cls(duration=2.0, warmup=0.5)


def drive(
    url_port: int,
    server_pid: int | None,
    requests: Sequence[Any],
    token: str,
    concurrency: int,
    warmup: float,
    duration: float,
    expect: int,
) -> dict[str, Any]:
    """Run the load generator against ``127.0.0.1:url_port`` in its own process."""
    job = {
        "host": "127.0.0.1",
        "port": url_port,
        "server_pid": server_pid,
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
        "expect": [expect],
        "requests": [
            {
                "method": request.method,
                "path": request.path,
                "headers": {"Authorization": f"Bearer {token}"}
                | ({"Content-Type": "application/json"} if request.body is not None else {}),
                "body_b64": base64.b64encode(request.encoded_body()).decode(),
            }
            for request in requests
        ],
    }
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen"],
        input=json.dumps(job).encode(),
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=warmup + duration + 300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed: {completed.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(completed.stdout)


def describe_environment(options: Options) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
        else:
            cursor.execute("SELECT sqlite_version()")
        database = f"{connection.vendor} {cursor.fetchone()[0]}"
    packages = ["django", "fastapi", "starlette", "pydantic", "uvicorn", "djangorestframework", "django-ninja"]
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    cpu = _cpu_model()
    speedups = [name for name in ("uvloop", "httptools") if _importable(name)]
    lines = [
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs ({cpu}); Python {platform.python_version()}",
        f"database: {database}; {_connections(connection)}",
        f"packages: {versions}",
        f"uvicorn: 1 worker, {'+'.join(speedups) if speedups else 'asyncio event loop + h11 (no uvloop/httptools)'}",
    ]
    if "bolt" in options.contenders:
        from benchmarks.contenders.bolt import venv

        venv.ensure()  # made now, before the checks, so that its versions can be printed
        lines.append(f"bolt: {venv.versions()}")
    rounds = f"median of {options.rounds} rounds [range]" if options.rounds > 1 else "1 round"
    return [
        *lines,
        f"djfapi: {_git_state()}",
        f"cells: warm-up {options.warmup:g}s, {options.duration:g}s timed, concurrency {list(options.concurrency)}, "
        f"{rounds}; servers and load generator share the machine's CPUs",
    ]


def _connections(connection: Any) -> str:
    config = connection.settings_dict
    if connection.vendor == "postgresql":
        pool = config["OPTIONS"].get("pool")
        if pool:
            return f"every contender on Django's psycopg pool ({pool})"
        return (
            f"baseline, djfapi and bolt keep persistent connections (CONN_MAX_AGE={config['CONN_MAX_AGE']}, "
            f"CONN_HEALTH_CHECKS={config['CONN_HEALTH_CHECKS']}); drf and ninja, whose requests each run in a new "
            f"thread under Django's ASGI handler, on Django's psycopg pool"
        )
    return (
        f"FastAPI and bolt contenders keep connections (CONN_MAX_AGE={config.get('CONN_MAX_AGE')}), "
        f"Django-ASGI contenders close them per request (CONN_MAX_AGE=0)"
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _git_state() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "djfapi", "testproject"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with uncommitted changes in djfapi/ or testproject/" if dirty else "")


def run(options: Options) -> int:
    os.environ["BENCH_PG_CONNECTIONS"] = options.pg_connections  # before the settings load; servers inherit it
    setup_django()
    from benchmarks.checks import Inspection, inspect
    from benchmarks.report import (
        CPU_LEGEND,
        STATEMENTS_LEGEND,
        Cell,
        memory_table,
        ratio_matrix,
        statements_and_writes,
        throughput_table,
    )
    from benchmarks.seed import restore, seed
    from benchmarks.server import Server
    from benchmarks.workloads import Request, build
    from testproject.tokens import mint_token

    ensure_work_dir()
    seed(options.companies)
    workloads = {key: workload for key, workload in build().items() if key in options.workloads}
    titles = {key: workload.title for key, workload in workloads.items()}
    token = mint_token(tenant=TENANT, user=USER, scopes=SCOPES, expires=48 * 3600)
    contenders = ["baseline", *(name for name in options.contenders if name != "baseline")]
    environment = describe_environment(options)
    print("\n".join(environment), flush=True)

    ceiling = {}
    with Server(TRIVIAL.name) as server:
        for concurrency in options.concurrency:
            probe = drive(
                server.port,
                server.pid,
                [Request("GET", "/")],
                token,
                concurrency,
                options.warmup,
                min(options.duration, 5.0),
                200,
            )
            ceiling[concurrency] = probe
    ceiling_line = "load generator ceiling (bare ASGI app under the same uvicorn): " + ", ".join(
        f"c={c}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, generator CPU {r['generator_cpu'] * 100:.0f}%"
        for c, r in ceiling.items()
    )
    print(ceiling_line, flush=True)

    inspections: dict[str, Inspection] = {}
    for name in contenders:
        with Server(name, instrumented=True) as server:
            inspection = inspect(server, workloads, token, inspections.get("baseline"))
        inspections[name] = inspection
        problems = [f"{key}: {problem}" for key, problem in inspection.problems.items()]
        if inspection.memory_problem:
            problems.append(f"memory page: {inspection.memory_problem}")
        print(f"checked {name}: " + ("; ".join(problems) if problems else "same content as the baseline"), flush=True)

    cells: dict[tuple[str, str, int], Cell] = {}
    rounds: list[list[dict[str, Any]]] = []
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(Server(name)) for name in contenders}
        for number in range(options.rounds):
            started = time.monotonic()
            order = contenders[number % len(contenders) :] + contenders[: number % len(contenders)]
            results: list[dict[str, Any]] = []
            for key, workload in workloads.items():
                for concurrency in options.concurrency:
                    for name in order:
                        cell = cells.setdefault((name, key, concurrency), Cell(name, key, concurrency))
                        if key in inspections[name].problems:
                            cell.skipped = "content differs from baseline" if name != "baseline" else "baseline failed"
                            continue
                        server = servers[name]
                        try:
                            result = drive(
                                server.port,
                                server.pid,
                                workload.requests,
                                token,
                                concurrency,
                                options.warmup,
                                options.duration,
                                workload.status,
                            )
                        finally:
                            if workload.writes:
                                restore(out=lambda _: None)
                        cell.results.append(result)
                        results.append({"contender": name, "workload": key, "concurrency": concurrency, **result})
            rounds.append(results)
            print(f"round {number + 1} of {options.rounds}: {time.monotonic() - started:.0f}s", flush=True)

    position = {(w, c): i for i, (w, c) in enumerate((w, c) for w in workloads for c in options.concurrency)}
    timed = sorted(
        cells.values(), key=lambda cell: (position[(cell.workload, cell.concurrency)], contenders.index(cell.contender))
    )
    spread = " (median of the rounds [range])" if options.rounds > 1 else ""
    writes = [key for key, workload in workloads.items() if workload.writes]
    output = [
        "",
        *environment,
        ceiling_line,
        "",
        throughput_table(timed, inspections, titles),
        CPU_LEGEND,
        "",
        f"requests/s relative to the careful baseline, ratios taken within each round{spread}:",
        ratio_matrix(timed, contenders),
        "",
        f"SQL statements per request, and the writes' p99 latency at the highest concurrency{spread}:",
        statements_and_writes(timed, contenders, inspections, writes),
        STATEMENTS_LEGEND,
        "",
        "memory: one page of 1,000 companies with nested departments and costcenters (tracemalloc peak per request):",
        memory_table(inspections),
    ]
    print("\n".join(output), flush=True)
    _save(options, environment, ceiling, timed, inspections, rounds)
    return 0 if not any(result["errors"] for cell in timed for result in cell.results) else 1


def _save(
    options: Options,
    environment: list[str],
    ceiling: dict[int, Any],
    cells: list[Any],
    inspections: dict[str, Any],
    rounds: list[list[dict[str, Any]]],
) -> None:
    from django.db import connection

    path = ensure_work_dir() / f"results-{connection.vendor}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    data = {
        "options": dataclasses.asdict(options),
        "environment": environment,
        "ceiling": ceiling,
        "cells": [dataclasses.asdict(cell) for cell in cells],
        "rounds": rounds,
        "queries": {name: {key: i.queries(key) for key in i.samples} for name, i in inspections.items()},
        "memory": {name: {"peak": i.memory_peak, "body": i.memory_body} for name, i in inspections.items()},
        "problems": {name: i.problems for name, i in inspections.items() if i.problems},
    }
    path.write_text(json.dumps(data, indent=2))
    print(f"results saved to {path}")

"""Command line of the benchmark suite; see the package docstring for usage."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from benchmarks.config import DEFAULT_COMPANIES
from benchmarks.contenders import CONTENDERS
from benchmarks.runner import Options

PG_CONNECTIONS = ("persistent", "pool")  # as benchmarks.settings, which needs Django to import

COMMANDS = ("run", "seed", "profile", "growth", "row-counts", "workers")


def _names(text: str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from {', '.join(allowed)}")
    return names


def _parser() -> argparse.ArgumentParser:
    workloads = ("W1", "W2", "W3", "W4", "W5", "W6")
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="seed if needed, check, measure, print the tables (the default)")
    run.add_argument("--quick", action="store_true", help="short cells (0.5s warm-up, 2s timed): a smoke run")
    run.add_argument("--contenders", type=lambda t: _names(t, tuple(CONTENDERS), "contender"))
    run.add_argument("--workloads", type=lambda t: _names(t, workloads, "workload"))
    run.add_argument("--duration", type=float, help="timed seconds per cell (default 10, quick 2)")
    run.add_argument("--warmup", type=float, help="warm-up seconds per cell (default 2, quick 0.5)")
    run.add_argument("--concurrency", type=lambda t: tuple(int(n) for n in t.split(",")), help="connections, e.g. 1,16")
    run.add_argument("--companies", type=int, default=DEFAULT_COMPANIES, help="companies per tenant")
    run.add_argument(
        "--rounds",
        type=int,
        help="repeat the timed sweep N times; tables show each cell's median with the range (default 1)",
    )
    run.add_argument(
        "--pg-connections",
        choices=PG_CONNECTIONS,
        help="on PostgreSQL: persistent connections (CONN_MAX_AGE=60 + CONN_HEALTH_CHECKS; drf and ninja, "
        "which cannot keep one under Django's ASGI handler, on Django's pool), the default; or the pool for all",
    )

    seed = sub.add_parser("seed", help="seed the database (reused when its size already matches)")
    seed.add_argument("--companies", type=int, default=DEFAULT_COMPANIES, help="companies per tenant")
    seed.add_argument("--force", action="store_true", help="wipe and seed again even when the size matches")

    profile = sub.add_parser("profile", help="profile a contender in-process with pyinstrument")
    profile.add_argument("--contender", choices=tuple(CONTENDERS)[:2], default="djfapi")
    profile.add_argument("--workloads", type=lambda t: _names(t, workloads, "workload"), default=("W1", "W2", "W3"))
    profile.add_argument("--requests", type=int, default=400, help="profiled requests per workload")
    profile.add_argument("--companies", type=int, default=DEFAULT_COMPANIES, help="companies per tenant")
    growth = sub.add_parser("growth", help="list costs at 10k/100k/1M rows on PostgreSQL (benchmarks.growth)")
    growth.add_argument(
        "--sizes", type=lambda t: tuple(int(n) for n in t.split(",")), default=(10_000, 100_000, 1_000_000)
    )
    growth.add_argument("--runs", type=int, default=3, help="rounds; each class's figure is the median of its rounds")
    growth.add_argument("--requests", type=int, default=30, help="timed requests per class and round")
    growth.add_argument("--without-advised-indexes", action="store_true", help="drop the demo's advised indexes")
    growth.add_argument(
        "--reseed", action="store_true", help="seed again even where a database holds the same seed already"
    )
    counts = sub.add_parser("row-counts", help="single-row write costs with and without a row counter (djfapi.counts)")
    counts.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the median of its rounds")
    counts.add_argument("--writes", type=int, default=500, help="timed writes of each kind per round and side")
    workers = sub.add_parser("workers", help="djfapi's read workloads with 1 and 2 uvicorn workers")
    workers.add_argument(
        "--workloads", type=lambda t: _names(t, workloads, "workload"), default=("W1", "W2", "W3", "W6")
    )
    workers.add_argument("--concurrency", type=int, default=16, help="connections in flight")
    workers.add_argument("--duration", type=float, default=10.0, help="timed seconds per cell")
    workers.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per cell")
    workers.add_argument("--rounds", type=int, default=3, help="repeat the sweep; medians and ranges")
    workers.add_argument("--companies", type=int, default=DEFAULT_COMPANIES, help="companies per tenant")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in (*COMMANDS, "-h", "--help"):
        arguments.insert(0, "run")
    args = _parser().parse_args(arguments)
    if args.command == "seed":
        from benchmarks.config import ensure_work_dir, setup_django

        setup_django()
        ensure_work_dir()
        from benchmarks.seed import seed

        seed(args.companies, force=args.force)
        return 0
    if args.command == "growth":
        from benchmarks.growth import run as run_growth

        return run_growth(args.sizes, args.runs, args.requests, args.without_advised_indexes, args.reseed)
    if args.command == "row-counts":
        from benchmarks.row_counts import run as run_row_counts

        return run_row_counts(args.rounds, args.writes)
    if args.command == "profile":
        from benchmarks.profiling import profile

        return profile(args.contender, args.workloads, args.requests, args.companies)
    if args.command == "workers":
        from benchmarks.workers import WorkerOptions, run_workers

        return run_workers(
            WorkerOptions(
                workloads=args.workloads,
                concurrency=args.concurrency,
                duration=args.duration,
                warmup=args.warmup,
                rounds=args.rounds,
                companies=args.companies,
            )
        )
    from benchmarks.runner import run

    options = Options.quick() if args.quick else Options()
    overrides = {
        name: getattr(args, name)
        for name in ("contenders", "workloads", "duration", "warmup", "concurrency", "rounds", "pg_connections")
        if getattr(args, name) is not None
    }
    return run(dataclasses.replace(options, companies=args.companies, **overrides))


if __name__ == "__main__":
    sys.exit(main())

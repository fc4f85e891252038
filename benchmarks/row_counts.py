"""What keeping row counts costs a write: the demo's companies with and without their counter.

``djfapi.counts.CreateRowCount`` adds triggers to the table; every INSERT, UPDATE and
DELETE runs one. This times single-row writes, each in its own transaction as the API
makes them, with the demo's counter (tenant, status) in place and without it (its
migration reversed), alternating in every round, and prints the ratio::

    python -m benchmarks row-counts                      # SQLite, a scratch file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_counts python -m benchmarks row-counts

Each cell is the median over ``--rounds`` rounds of each round's median microseconds
per write, with the spread of the round medians.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.config import ensure_work_dir

KINDS = ("insert", "update a counted column (status)", "update another column (name)", "delete")


def _setup() -> str:
    import django

    work = ensure_work_dir()
    if not os.environ.get("DATABASE_URL"):
        scratch = work / "row-counts.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            (work / f"row-counts.sqlite3{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    django.setup()
    from django.db import connection

    if connection.vendor == "postgresql":
        from benchmarks.seed import ensure_postgres_database

        ensure_postgres_database(lambda line: print(line, file=sys.stderr))
    return str(connection.vendor)


def _counter(on: bool) -> None:
    from django.core.management import call_command

    from djfapi.counts import forget_counters

    call_command("migrate", "business", *(() if on else ("0004",)), verbosity=0)
    forget_counters()


def _time_writes(writes: int) -> dict[str, float]:
    """Median microseconds per write of each kind, ``writes`` of each."""
    from django.db import transaction

    from testproject.business.models import Company

    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    created: list[Company] = []

    def insert(n: int) -> None:
        created.append(Company.objects.create(tenant_id=tenant, name=f"C{n:05d}"))

    def update_status(n: int) -> None:
        company = created[n]
        company.status = Company.Status.INACTIVE if company.status == Company.Status.ACTIVE else Company.Status.ACTIVE
        company.save(update_fields=["status"])

    def update_name(n: int) -> None:
        created[n].name = f"R{n:05d}"
        created[n].save(update_fields=["name"])

    def delete(n: int) -> None:
        created[n].delete()

    steps: dict[str, Callable[[int], Any]] = dict(zip(KINDS, (insert, update_status, update_name, delete), strict=True))
    medians = {}
    for kind, step in steps.items():
        samples = []
        for n in range(writes):
            started = time.perf_counter()
            with transaction.atomic():
                step(n)
            samples.append((time.perf_counter() - started) * 1e6)
        medians[kind] = statistics.median(samples)
    return medians


def run(rounds: int = 3, writes: int = 500) -> int:
    vendor = _setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from testproject.business.models import Company

    # A table that is not empty: 20,000 companies over 20 tenants.
    Company.objects.bulk_create(
        (Company(tenant_id=f"t{n % 20}", name=f"Seed {n}") for n in range(20_000)), batch_size=2000
    )
    rounds_with: dict[str, list[float]] = {kind: [] for kind in KINDS}
    rounds_without: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for index in range(rounds):
        order = (True, False) if index % 2 == 0 else (False, True)  # neither side always goes first
        for on in order:
            _counter(on)
            _time_writes(50)  # warm-up
            for kind, median in _time_writes(writes).items():
                (rounds_with if on else rounds_without)[kind].append(median)
        print(f"round {index + 1} of {rounds} done", file=sys.stderr, flush=True)
    _counter(True)

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

    print(f"\n{vendor}: microseconds per single-row write in its own transaction, median of {rounds} rounds "
          f"({writes} writes each)\n")  # fmt: skip
    print("| write | without a counter | with the counter | ratio |")
    print("|---|---|---|---|")
    for kind in KINDS:
        ratio = statistics.median(rounds_with[kind]) / statistics.median(rounds_without[kind])
        print(f"| {kind} | {cell(rounds_without[kind])} | {cell(rounds_with[kind])} | {ratio:.2f}x |")
    return 0

"""How list costs grow with the table: the request classes of issue 17 at 10k / 100k / 1M companies.

PostgreSQL only (``DATABASE_URL``)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_growth python -m benchmarks growth
    python -m benchmarks growth --sizes 10000,100000 --runs 3 --requests 30

For each size the database is seeded by SQL (``benchmarks.growth_seed``), the demo app
plus a cursor-paged copy of its companies (``benchmarks.growth_app``) is served by one
uvicorn worker with the demo's settings and persistent connections (``CONN_MAX_AGE=60``), and each request
class is sent ``--requests`` times one after the other, after 5 warm-up requests, as
the big tenant (10% of the rows: 1k, 10k, 100k companies). A class's figure is the
median over ``--runs`` rounds of each round's median, with the spread of the round
medians; its growth is that figure over the smallest size's. The machine is shared,
so figures move between runs: read the spreads. ``--without-advised-indexes`` drops
the indexes the index advisor asked the demo to declare, to show what they change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from benchmarks.config import REPO_ROOT, ensure_work_dir

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
PORT = int(os.environ.get("BENCH_GROWTH_PORT", "18717"))
#: The demo's own settings, with persistent connections as the deployment guide documents, and its rate
#: limits off: a few hundred reads a second from one token are the benchmark, not an abuse to answer with 429.
SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "testproject.settings",
    "CONN_MAX_AGE": "60",
    "CONN_HEALTH_CHECKS": "1",
    "DJFAPI_RATE_LIMITS_ENABLED": "0",
}


@dataclasses.dataclass(frozen=True)
class RequestClass:
    name: str
    path: Callable[[dict[str, Any]], str]  # from what the set-up found (ids, cursors, offsets)


CLASSES = (
    RequestClass("GET a company", lambda ctx: f"/companies/{ctx['company_id']}"),
    RequestClass("GET /companies?limit=50 (order name)", lambda ctx: "/companies?limit=50"),
    RequestClass("offset at 90%", lambda ctx: f"/companies?limit=50&offset={ctx['offset_90']}"),
    RequestClass("offset at max_offset (10,000)", lambda ctx: f"/companies?limit=50&offset={ctx['max_offset']}"),
    RequestClass("cursor first page", lambda ctx: "/paged-companies?limit=50"),
    RequestClass("cursor page 2", lambda ctx: f"/paged-companies?limit=50&cursor={ctx['cursor_2']}"),
    RequestClass("cursor at 90%", lambda ctx: f"/paged-companies?limit=50&cursor={ctx['cursor_90']}"),
    RequestClass("status=active", lambda ctx: "/companies?limit=50&status=active"),
    RequestClass("total=true", lambda ctx: "/companies?limit=50&total=true"),
    RequestClass("total=estimate", lambda ctx: "/companies?limit=50&total=estimate"),
    RequestClass("name__icontains=acme", lambda ctx: "/companies?limit=50&name__icontains=acme"),
    # A rare substring (14 of the big tenant's 100k names at 1M): the page cannot fill up, so without the
    # trigram index (djfapi.W115) the database reads every row of the tenant.
    RequestClass("name__icontains=beef (rare)", lambda ctx: "/companies?limit=50&name__icontains=beef"),
    RequestClass("aggregate count by status", lambda ctx: "/companies/aggregate/count/id?group_by=status"),
)


def _setup_django() -> None:
    import django

    os.environ.update(SETTINGS)
    django.setup()


def _prepare(rows: int, drop_indexes: bool) -> dict[str, Any]:
    """Seed ``rows`` companies; the ids, cursors and offsets the request classes use."""
    from django.core.management import call_command

    from benchmarks.growth_app import paged_companies
    from benchmarks.growth_seed import BIG_TENANT, seed
    from benchmarks.seed import ensure_postgres_database
    from testproject.business.models import Company

    ensure_postgres_database(lambda line: print(line, file=sys.stderr, flush=True))  # a fresh machine has none
    if drop_indexes:
        call_command("migrate", "business", "0001", verbosity=0)  # the tables without the advised indexes
    else:
        call_command("migrate", verbosity=0)
    # The seed builds the tables' indexes after the load, and the advisor's trigram index on PostgreSQL.
    seconds = seed(rows, trigram_index=not drop_indexes)
    print(f"seeded {rows:,} companies in {seconds:.1f} s", file=sys.stderr, flush=True)
    visible = Company.objects.filter(tenant_id=BIG_TENANT).exclude(status=Company.Status.DELETED)
    tenant_rows = visible.count()
    ordered = visible.order_by("name", "id")
    tree = paged_companies()
    terms = tree.ordering.terms(None)  # type: ignore[attr-defined]
    deep = int(tenant_rows * 0.9)
    max_offset = tree.max_offset  # type: ignore[attr-defined]
    return {
        "rows": rows,
        "seconds": seconds,
        "tenant_rows": tenant_rows,
        "company_id": str(ordered.first().pk),  # type: ignore[union-attr]
        "offset_90": deep,
        "max_offset": max_offset,
        "cursor_2": tree.cursor.encode(terms, ordered[49]),  # type: ignore[attr-defined]
        "cursor_90": tree.cursor.encode(terms, ordered[deep]),  # type: ignore[attr-defined]
    }


def _serve() -> subprocess.Popen[bytes]:
    env = {**os.environ, **SETTINGS}
    log = (ensure_work_dir() / "growth-server.log").open("ab")
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "benchmarks.growth_app:create_growth_app",
        "--host", "127.0.0.1", "--port", str(PORT), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the growth app did not start")


def _time(client: httpx.Client, path: str, requests: int) -> tuple[float, int]:
    """Median milliseconds of ``requests`` sequential requests after 5 warm-up ones; and the status."""
    status = 0
    for _ in range(5):
        status = client.get(path).status_code
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return statistics.median(samples), status


def measure(ctx: dict[str, Any], runs: int, requests: int) -> dict[str, dict[str, Any]]:
    from benchmarks.growth_seed import BIG_TENANT
    from testproject.tokens import mint_token

    token = mint_token(tenant=BIG_TENANT, user="bench-user", scopes=["business.companies.read.any"], expires=7200)
    results: dict[str, dict[str, Any]] = {}
    server = _serve()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers=headers, timeout=60) as client:
            rounds: dict[str, list[float]] = {c.name: [] for c in CLASSES}
            statuses: dict[str, int] = {}
            for _ in range(runs):
                for request_class in CLASSES:
                    median, status = _time(client, request_class.path(ctx), requests)
                    rounds[request_class.name].append(median)
                    statuses[request_class.name] = status
        # Only the deep offset may be refused (422, past max_offset): any other status would time an error.
        failed = [f"{name}: {status}" for name, status in statuses.items() if status != 200 and name != "offset at 90%"]
        if failed:
            raise SystemExit(f"requests failed ({'; '.join(failed)}): the figures would time errors, not pages")
        for name, medians in rounds.items():
            results[name] = {"median": statistics.median(medians), "low": min(medians), "high": max(medians)}
            results[name]["status"] = statuses[name]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


def table(sizes: Sequence[int], by_size: dict[int, dict[str, dict[str, Any]]], contexts: dict[int, Any]) -> str:
    """The Markdown table: each class's median (spread) per size, and its growth over the smallest size."""
    first, last = sizes[0], sizes[-1]
    head = " | ".join(f"{size // 1000}k rows" if size < 1_000_000 else f"{size // 1_000_000}M rows" for size in sizes)
    lines = [f"| request | {head} | growth |", "|---|" + "---|" * len(sizes) + "---|"]
    for request_class in CLASSES:
        cells = []
        for size in sizes:
            cell = by_size[size][request_class.name]
            spread = f"{cell['low']:.1f}-{cell['high']:.1f}"
            status = "" if cell["status"] == 200 else f" ({cell['status']})"
            cells.append(f"{cell['median']:.1f} ({spread}){status}")
        growth = by_size[last][request_class.name]["median"] / by_size[first][request_class.name]["median"]
        lines.append(f"| {request_class.name} | {' | '.join(cells)} | {growth:.2f}x |")
    first_page = {size: by_size[size]["GET /companies?limit=50 (order name)"]["median"] for size in sizes}
    lines.append("")
    for size in sizes:
        ctx = contexts[size]
        cursor_ratio = by_size[size]["cursor at 90%"]["median"] / by_size[size]["cursor first page"]["median"]
        total_ratio = by_size[size]["total=true"]["median"] / first_page[size]
        status = by_size[size]["offset at 90%"]["status"]
        refused = " (refused: past max_offset)" if status != 200 else ""
        lines.append(
            f"- {size:,} rows (big tenant {ctx['tenant_rows']:,} visible, seeded in {ctx['seconds']:.1f} s): "
            f"cursor at 90% / first cursor page = {cursor_ratio:.2f}x, total=true / plain page = {total_ratio:.2f}x, "
            f"offset at 90% = {ctx['offset_90']:,}: {status}{refused}"
        )
    return "\n".join(lines)


def run(sizes: Sequence[int] = DEFAULT_SIZES, runs: int = 3, requests: int = 30, drop_indexes: bool = False) -> int:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("the growth benchmark runs on PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    _setup_django()
    work = ensure_work_dir()
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    contexts: dict[int, dict[str, Any]] = {}
    for size in sizes:
        print(f"seeding {size:,} companies ...", file=sys.stderr, flush=True)
        contexts[size] = _prepare(size, drop_indexes)
        print(f"measuring {size:,} ({runs} runs x {requests} requests per class) ...", file=sys.stderr, flush=True)
        by_size[size] = measure(contexts[size], runs, requests)
    report = table(sizes, by_size, contexts)
    print(f"\nMedian ms per request (range of the {runs} run medians; a shared 2-core machine: noisy)"
          f"{' WITHOUT the advised indexes' if drop_indexes else ''}\n")  # fmt: skip
    print(report)
    (work / f"growth{'-noindex' if drop_indexes else ''}.json").write_text(
        json.dumps({"sizes": list(sizes), "results": by_size, "contexts": contexts}, indent=2, default=str)
    )
    return 0

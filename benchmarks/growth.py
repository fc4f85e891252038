"""How list costs grow with the table: the request classes of issue 17 at 10k / 100k / 1M companies.

PostgreSQL only (``DATABASE_URL``)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_growth python -m benchmarks growth
    python -m benchmarks growth --sizes 10000,100000 --runs 3 --requests 30

Each size has a database of its own, named after ``DATABASE_URL``'s with the size
appended (``djfapi_growth_10k``, ``djfapi_growth_100k``, ``djfapi_growth_1m``; created
when missing), seeded by SQL (``benchmarks.growth_seed``; a seed is kept for the next run
while nothing it depends on changes, ``--reseed`` to seed again) and served by a uvicorn worker
of its own: the demo app plus a cursor-paged copy of its companies
(``benchmarks.growth_app``), with the demo's settings and persistent connections
(``CONN_MAX_AGE=60``). All sizes are served at once, and each round times every class
at every size back to back — 5 warm-up requests, then ``--requests`` sequential ones,
as the big tenant (10% of the rows: 1k, 10k, 100k companies) — so that the machine's
moments of noise fall on all sizes alike instead of on whichever size was measured
then. A class's figure is the median over ``--runs`` rounds of each round's median,
with the spread of the round medians; its growth is that figure over the smallest
size's, and the spread of the growth is that of the rounds' own ratios.
``--without-advised-indexes`` drops the indexes the index advisor asked the demo to
declare, to show what they change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
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
    # The deepest page an offset reaches: at 90% while that is within the bound, else at the bound (10,000 at 1M).
    # A full page at every size; at the bound itself the big tenant's 925 and 9,718 rows at 10k and 100k would
    # leave the page empty there, and an empty page is no baseline for one of 50 rows.
    RequestClass("offset at 90%, at most max_offset", lambda ctx: f"/companies?limit=50&offset={ctx['deepest']}"),
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


def database_name(base: str, rows: int) -> str:
    """The database of one size: ``djfapi_growth`` -> ``djfapi_growth_10k``, ``..._1m``."""
    size = f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else f"{rows // 1000}k" if rows % 1000 == 0 else str(rows)
    return f"{base}_{size}"


def _use_database(name: str) -> None:
    """Point this process's default connection at ``name`` (the next query connects to it)."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


def _prepare(rows: int, drop_indexes: bool, reseed: bool = False) -> dict[str, Any]:
    """Seed ``rows`` companies in the current database (unless it holds this seed already and not
    ``reseed``); the ids, cursors and offsets the request classes use."""
    from django.core.management import call_command

    from benchmarks.growth_app import paged_companies
    from benchmarks.growth_seed import BIG_TENANT, kept_seed, seed
    from benchmarks.seed import ensure_postgres_database
    from testproject.business.models import Company

    ensure_postgres_database(lambda line: print(line, file=sys.stderr, flush=True))  # created when missing
    if drop_indexes:
        call_command("migrate", "business", "0001", verbosity=0)  # the tables without the advised indexes
    else:
        call_command("migrate", verbosity=0)
    # The seed builds the tables' indexes after the load, and the advisor's trigram index on PostgreSQL.
    seconds: float | None = None
    if not reseed and kept_seed(rows, trigram_index=not drop_indexes):
        print(f"kept the seed of {rows:,} companies (same size, SQL and migrations)", file=sys.stderr, flush=True)
    else:
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
        "deepest": min(deep, max_offset),
        "cursor_2": tree.cursor.encode(terms, ordered[49]),  # type: ignore[attr-defined]
        "cursor_90": tree.cursor.encode(terms, ordered[deep]),  # type: ignore[attr-defined]
    }


def _serve(port: int, database_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **SETTINGS, "DATABASE_URL": database_url}
    log = (ensure_work_dir() / "growth-server.log").open("ab")
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "benchmarks.growth_app:create_growth_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the growth app did not start")


def _time(client: httpx.Client, path: str, requests: int) -> tuple[float, int, int | None]:
    """Median milliseconds of ``requests`` sequential requests after 5 warm-up ones; the status; and the
    number of items of a list's page (None for other answers)."""
    for _ in range(5):
        client.get(path)
    samples = []
    response = None
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
    assert response is not None
    body = response.json() if response.status_code == 200 else None
    items = len(body["items"]) if isinstance(body, dict) and isinstance(body.get("items"), list) else None
    return statistics.median(samples), response.status_code, items


def measure(
    contexts: dict[int, dict[str, Any]], urls: dict[int, str], runs: int, requests: int
) -> tuple[dict[int, dict[str, dict[str, Any]]], dict[str, list[float]]]:
    """Each class's figure per size (median of the rounds' medians, with their spread); and each class's
    growth per round (its largest size's median over its smallest size's, both timed in that round)."""
    from benchmarks.growth_seed import BIG_TENANT
    from testproject.tokens import mint_token

    token = mint_token(tenant=BIG_TENANT, user="bench-user", scopes=["business.companies.read.any"], expires=7200)
    sizes = sorted(contexts)
    servers: dict[int, subprocess.Popen[bytes]] = {}
    rounds: dict[int, dict[str, list[float]]] = {size: {c.name: [] for c in CLASSES} for size in sizes}
    statuses: dict[int, dict[str, int]] = {size: {} for size in sizes}
    page_items: dict[int, dict[str, int | None]] = {size: {} for size in sizes}
    try:
        for number, size in enumerate(sizes):
            servers[size] = _serve(PORT + number, urls[size])
        headers = {"Authorization": f"Bearer {token}"}
        clients = {
            size: httpx.Client(base_url=f"http://127.0.0.1:{PORT + number}", headers=headers, timeout=60)
            for number, size in enumerate(sizes)
        }
        for _ in range(runs):
            for request_class in CLASSES:
                for size in sizes:  # back to back: a noisy moment falls on every size alike
                    median, status, items = _time(clients[size], request_class.path(contexts[size]), requests)
                    rounds[size][request_class.name].append(median)
                    statuses[size][request_class.name] = status
                    page_items[size][request_class.name] = items
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
    # Only the deep offset may be refused (422, past max_offset): any other status would time an error.
    failed = [
        f"{size:,} {name}: {status}"
        for size in sizes
        for name, status in statuses[size].items()
        if status != 200 and name != "offset at 90%"
    ]
    if failed:
        raise SystemExit(f"requests failed ({'; '.join(failed)}): the figures would time errors, not pages")
    results: dict[int, dict[str, dict[str, Any]]] = {}
    for size in sizes:
        results[size] = {}
        for name, medians in rounds[size].items():
            cell = {"median": statistics.median(medians), "low": min(medians), "high": max(medians)}
            results[size][name] = {**cell, "status": statuses[size][name], "items": page_items[size][name]}
            results[size][name]["rounds"] = medians
    first, last = sizes[0], sizes[-1]
    growth = {
        c.name: [b / a for a, b in zip(rounds[first][c.name], rounds[last][c.name], strict=True)] for c in CLASSES
    }
    return results, growth


def table(
    sizes: Sequence[int],
    by_size: dict[int, dict[str, dict[str, Any]]],
    contexts: dict[int, Any],
    growth_by_round: dict[str, list[float]],
) -> str:
    """The Markdown table: each class's median (spread) per size, and its growth over the smallest size
    (with the spread of the rounds' own ratios)."""
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
        ratios = growth_by_round[request_class.name]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        lines.append(f"| {request_class.name} | {' | '.join(cells)} | {growth:.2f}x ({spread}) |")
    first_page = {size: by_size[size]["GET /companies?limit=50 (order name)"]["median"] for size in sizes}
    lines.append("")
    uneven = [
        f"{c.name} {' / '.join(str(by_size[size][c.name]['items']) for size in sizes)}"
        for c in CLASSES
        if len({by_size[size][c.name]["items"] for size in sizes}) > 1 and by_size[last][c.name]["status"] == 200
    ]
    if uneven:  # a page with fewer rows costs less to read and send: its growth is not only the table's
        lines.append(f"Items per page where they differ by size: {'; '.join(uneven)}.")
        lines.append("")
    for size in sizes:
        ctx = contexts[size]
        cursor_ratio = by_size[size]["cursor at 90%"]["median"] / by_size[size]["cursor first page"]["median"]
        total_ratio = by_size[size]["total=true"]["median"] / first_page[size]
        deepest_ratio = by_size[size]["offset at 90%, at most max_offset"]["median"] / first_page[size]
        status = by_size[size]["offset at 90%"]["status"]
        refused = " (refused: past max_offset)" if status != 200 else ""
        lines.append(
            f"- {size:,} rows (big tenant {ctx['tenant_rows']:,} visible, {_seeding(ctx['seconds'])}): "
            f"cursor at 90% / first cursor page = {cursor_ratio:.2f}x, total=true / plain page = {total_ratio:.2f}x, "
            f"offset at 90% = {ctx['offset_90']:,}: {status}{refused}, deepest offset served "
            f"({ctx['deepest']:,}) / plain page = {deepest_ratio:.2f}x"
        )
    return "\n".join(lines)


def _seeding(seconds: float | None) -> str:
    return "the last run's seed, kept" if seconds is None else f"seeded in {seconds:.1f} s"


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    runs: int = 3,
    requests: int = 30,
    drop_indexes: bool = False,
    reseed: bool = False,
) -> int:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("the growth benchmark runs on PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    _setup_django()
    from django.db import connection

    work = ensure_work_dir()
    sizes = sorted(sizes)
    base = connection.settings_dict["NAME"]
    parts = urllib.parse.urlsplit(url)
    urls = {size: parts._replace(path=f"/{database_name(base, size)}").geturl() for size in sizes}
    contexts: dict[int, dict[str, Any]] = {}
    for size in sizes:
        print(f"{database_name(base, size)}: {size:,} companies ...", file=sys.stderr, flush=True)
        _use_database(database_name(base, size))
        contexts[size] = _prepare(size, drop_indexes, reseed)
    _use_database(base)
    print(
        f"measuring {len(sizes)} sizes ({runs} runs x {requests} requests per class) ...", file=sys.stderr, flush=True
    )
    by_size, growth = measure(contexts, urls, runs, requests)
    report = table(sizes, by_size, contexts, growth)
    print(f"\nMedian ms per request (range of the {runs} run medians; a shared 2-core machine: noisy)"
          f"{' WITHOUT the advised indexes' if drop_indexes else ''}\n")  # fmt: skip
    print(report)
    (work / f"growth{'-noindex' if drop_indexes else ''}.json").write_text(
        json.dumps({"sizes": sizes, "results": by_size, "growth": growth, "contexts": contexts}, indent=2, default=str)
    )
    return 0

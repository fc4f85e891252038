"""Heavy pages against light ones: what the read bounds buy (``python -m benchmarks.bounded_reads``).

One tenant holds 1,000 companies with 100 cost centres each (101,000 rows); another
holds 5 companies. The demo is served by one uvicorn worker on SQLite, twice in one
run: *unbounded* (nested lists and the response row budget set out of reach, as before
the bounds existed) and *bounded* (djfapi's defaults: 100 items per nested list, 10,000
rows per response). Against each, 16 clients ask for the worst page in parallel
(``GET /companies?limit=1000`` of the big tenant) for a fixed time, while one client of
the small tenant reads its companies one request after another.

Printed per mode: the heavy pages' status and median time, the light request's
p50/p99, and the server's resident memory before, at its peak, and after the load
(``VmRSS``/``VmHWM`` from ``/proc``). Compare the two modes of one run, not absolute
figures across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.config import REPO_ROOT, ensure_work_dir
from benchmarks.server import free_port, stop_process

BIG, SMALL = "big", "small"
MODES = {
    "unbounded": {"DJFAPI_NESTED_LIST_LIMIT": "1000000", "DJFAPI_MAX_RESPONSE_ROWS": "1000000000"},
    "bounded": {},
}

SEED = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from testproject.business.models import Company, CompanyCostcenter
if not Company.objects.exists():
    big = Company.objects.bulk_create(Company(tenant_id="big", name=f"Company {i:04}") for i in range(1000))
    CompanyCostcenter.objects.bulk_create(
        (CompanyCostcenter(company=c, code=f"C{j:03}", name=f"Centre {j}") for c in big for j in range(100)),
        batch_size=5000,
    )
    Company.objects.bulk_create(Company(tenant_id="small", name=f"Small {i}") for i in range(5))
"""


def environment(database: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJFAPI_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="testproject.settings",
        DATABASE_URL=f"sqlite:///{database}",
        DJFAPI_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO_ROOT),
        **extra,
    )
    return env


def token(database: Path, tenant: str) -> str:
    command = [sys.executable, "-m", "testproject", "token", "--tenant", tenant, "--user", "u"]
    command += ["--scope", "business.companies.read.any"]
    done = subprocess.run(command, env=environment(database), capture_output=True, text=True, check=True)
    return done.stdout.strip()


def memory_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Figures:
    heavy_statuses: dict[int, int] = field(default_factory=dict)
    heavy_seconds: list[float] = field(default_factory=list)
    heavy_bytes: int = 0
    light_ms: list[float] = field(default_factory=list)
    rss_before: int = 0
    burst_peak: int = 0
    burst_after: int = 0
    rss_peak: int = 0
    rss_after: int = 0


def measure(database: Path, mode: str, seconds: float, heavy_clients: int) -> Figures:
    port = free_port()
    log = ensure_work_dir() / f"bounded-reads-{mode}.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "testproject.asgi:app", "--port", str(port), "--log-level", "warning"],
            cwd=REPO_ROOT,
            env=environment(database, **MODES[mode]),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    heavy_token, light_token = token(database, BIG), token(database, SMALL)
    figures = Figures()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the server did not start; see {log}") from None
                time.sleep(0.2)
        light = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {light_token}"}, timeout=120)
        light.get("/companies")  # warm up
        figures.rss_before = memory_kb(server.pid, "VmRSS")

        # The scenario first: one burst of parallel worst-case pages, then memory.
        def one_heavy() -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {heavy_token}"}, timeout=600) as client:
                client.get("/companies?limit=1000")

        burst = [threading.Thread(target=one_heavy) for _ in range(heavy_clients)]
        for thread in burst:
            thread.start()
        for thread in burst:
            thread.join()
        time.sleep(2)
        figures.burst_peak = memory_kb(server.pid, "VmHWM")
        figures.burst_after = memory_kb(server.pid, "VmRSS")

        stop = time.monotonic() + seconds
        lock = threading.Lock()

        def heavy() -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {heavy_token}"}, timeout=300) as client:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    response = client.get("/companies?limit=1000")
                    elapsed = time.perf_counter() - started
                    with lock:
                        figures.heavy_statuses[response.status_code] = (
                            figures.heavy_statuses.get(response.status_code, 0) + 1
                        )
                        figures.heavy_seconds.append(elapsed)
                        figures.heavy_bytes = max(figures.heavy_bytes, len(response.content))

        threads = [threading.Thread(target=heavy) for _ in range(heavy_clients)]
        for thread in threads:
            thread.start()
        while time.monotonic() < stop:
            started = time.perf_counter()
            light.get("/companies").raise_for_status()
            figures.light_ms.append((time.perf_counter() - started) * 1000)
        for thread in threads:
            thread.join()
        time.sleep(2)  # let the last responses go and the allocator settle
        figures.rss_peak = memory_kb(server.pid, "VmHWM")
        figures.rss_after = memory_kb(server.pid, "VmRSS")
        light.close()
    finally:
        stop_process(server)
    return figures


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def report(mode: str, figures: Figures) -> str:
    mib = 1024
    return (
        f"{mode:>10}: heavy {figures.heavy_statuses} median {statistics.median(figures.heavy_seconds):.2f} s, "
        f"largest body {figures.heavy_bytes / 1024 / 1024:.1f} MB | light p50 {percentile(figures.light_ms, 0.5):.0f} "
        f"ms, p99 {percentile(figures.light_ms, 0.99):.0f} ms ({len(figures.light_ms)} requests) | RSS "
        f"{figures.rss_before // mib} MiB before; one burst: {figures.burst_peak // mib} MiB peak, "
        f"{figures.burst_after // mib} MiB after; sustained: {figures.rss_peak // mib} MiB peak, "
        f"{figures.rss_after // mib} MiB after"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="load time per mode (default 30)")
    parser.add_argument("--clients", type=int, default=16, help="parallel heavy clients (default 16)")
    parser.add_argument("--modes", default="unbounded,bounded", help="comma-separated: unbounded, bounded")
    args = parser.parse_args(argv)
    database = ensure_work_dir() / "bounded-reads.sqlite3"
    subprocess.run([sys.executable, "-c", SEED], env=environment(database), cwd=REPO_ROOT, check=True)
    for mode in args.modes.split(","):
        print(report(mode, measure(database, mode, args.seconds, args.clients)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

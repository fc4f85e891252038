"""The load generator: a raw asyncio HTTP/1.1 keep-alive client, in its own process.

``python -m benchmarks.loadgen`` reads a JSON job on stdin — target, pre-built
requests (sent round-robin), concurrency, warm-up and duration — and writes a JSON
result on stdout. Each of ``concurrency`` connections sends one request at a time,
reusing its connection. Requests are serialised once up front and responses are
parsed only as far as HTTP/1.1 framing needs (status, Content-Length or chunked), so
the generator spends a few tens of microseconds per request: much less than httpx,
and its own CPU time is reported so that a generator-bound cell would show.

On Linux the timed window's CPU time is also split between the server process
(``server_pid``), the generator and everything else on the machine (from ``/proc``):
the machine may be shared, and a cell slowed by someone else's work should say so.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class _State:
    payloads: list[bytes]
    recording: bool = False
    stop: bool = False
    next_index: int = 0
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def build_request(host: str, port: int, request: dict[str, Any]) -> bytes:
    """One request's bytes: method, path, headers (``Host`` and ``Content-Length`` added), body."""
    body = base64.b64decode(request.get("body_b64") or "")
    lines = [f"{request['method']} {request['path']} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in request.get("headers", {}).items()]
    if body or request["method"] in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the server will close the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = close = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, close


async def _connection(state: _State, host: str, port: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while not state.stop:
            payload = state.payloads[state.next_index % len(state.payloads)]
            state.next_index += 1
            recording = state.recording
            started = time.perf_counter()
            try:
                writer.write(payload)
                status, close = await read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                # The server dropped the connection: an error (status 0), then a new connection.
                if recording and not state.stop:
                    state.samples.append((started, time.perf_counter(), 0))
                    state.dropped.append(repr(error))
                status, close = 0, True
            finished = time.perf_counter()
            if recording and not state.stop and status:
                state.samples.append((started, finished, status))
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


def cpu_seconds(pid: int | None) -> tuple[float, float, float] | None:
    """CPU seconds so far: the whole machine (busy), process ``pid``, and this process; None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        machine = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal
        own = _process_ticks("self")
        server = sum(_process_ticks(str(each)) for each in _with_descendants(pid)) if pid else 0
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return machine / tick, server / tick, own / tick


def _with_descendants(pid: int) -> list[int]:
    """``pid`` and the processes below it: a server may serve from worker processes (Granian does)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(parents.get(current, ()))
    return found


def _process_ticks(pid: str) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (all threads)


async def run(job: dict[str, Any]) -> dict[str, Any]:
    host, port = job["host"], job["port"]
    state = _State([build_request(host, port, request) for request in job["requests"]])
    tasks = [asyncio.create_task(_connection(state, host, port)) for _ in range(job["concurrency"])]
    await asyncio.sleep(job["warmup"])
    state.recording = True
    wall_start, cpu_start, split_start = time.perf_counter(), time.process_time(), cpu_seconds(job.get("server_pid"))
    await asyncio.sleep(job["duration"])
    state.stop = True
    wall_end, cpu_end, split_end = time.perf_counter(), time.process_time(), cpu_seconds(job.get("server_pid"))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [repr(result) for result in results if isinstance(result, BaseException)] + state.dropped
    samples = [s for s in state.samples if s[0] >= wall_start and s[1] <= wall_end]
    latencies = sorted((finished - started) * 1000 for started, finished, _ in samples)
    statuses: dict[str, int] = {}
    for _, _, status in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    seconds = wall_end - wall_start
    expected = set(job.get("expect", [200]))
    return {
        "requests": len(samples),
        "seconds": seconds,
        "rps": len(samples) / seconds if seconds else 0.0,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "mean_ms": statistics.fmean(latencies) if latencies else None,
        "statuses": statuses,
        "errors": sum(count for status, count in statuses.items() if int(status) not in expected)
        + len(failures)
        - len(state.dropped),  # dropped connections are already counted, as status 0
        "failures": failures[:3],
        "generator_cpu": (cpu_end - cpu_start) / seconds if seconds else 0.0,
        **_split(split_start, split_end, seconds),
    }


def _split(
    start: tuple[float, float, float] | None, end: tuple[float, float, float] | None, seconds: float
) -> dict[str, float | None]:
    """Server, generator and other CPU use in the window, in cores (1.0 = one core busy)."""
    if start is None or end is None or not seconds:
        return {"server_cpu": None, "other_cpu": None}
    machine, server, own = (after - before for before, after in zip(start, end, strict=True))
    return {"server_cpu": server / seconds, "other_cpu": max(0.0, machine - server - own) / seconds}


def _percentile(ordered: list[float], percent: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]  # nearest rank


def main() -> None:
    job = json.load(sys.stdin)
    result = asyncio.run(run(job))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

"""The server under test: one uvicorn worker in a child process, its memory and CPU time.

Memory is read from ``/proc/<pid>/status`` (``VmRSS``, and ``VmHWM`` for the peak),
CPU time from ``/proc/<pid>/stat``. The child gets SIGTERM if the benchmark dies.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.config import WORK_DIR
from benchmarks.live.database import Database, child_environment
from benchmarks.server import stop_process  # SIGTERM (the feed closes its streams), then SIGKILL

STARTUP_TIMEOUT = 60.0  # seconds for the server to answer /health


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark process dies (Linux prctl)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """``uvicorn <app>``, one worker, for the length of a ``with`` block."""

    def __init__(
        self, database: Database, log_path: Path, app: str = "testproject.asgi:app", env: dict[str, str] | None = None
    ) -> None:
        self.database = database
        self.log_path = log_path
        self.app = app
        self.env = env or {}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Server:
        self.port = free_port()
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=WORK_DIR,
                env=child_environment(self.database.url, **self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start-up:\n{self.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {STARTUP_TIMEOUT} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def memory_kb(self, key: str) -> int:
        """A ``kB`` figure of ``/proc/<pid>/status``: ``VmRSS``, ``VmHWM``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        raise KeyError(key)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of the server, of this process and of the whole machine."""

    server: float
    client: float
    machine: float

    @classmethod
    def take(cls, server: Server) -> CpuSample:
        return cls(server.cpu_seconds(), time.process_time(), machine_busy_seconds())

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(self.server - other.server, self.client - other.client, self.machine - other.machine)

    @property
    def others(self) -> float:
        """CPU seconds of every other process on the machine."""
        return max(self.machine - self.server - self.client, 0.0)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "httpx": httpx.__version__,
    }

"""Start and stop a contender's server process from the orchestrator.

ASGI contenders run under uvicorn (``benchmarks.serve``); a contender with a server of
its own (django-bolt) gives its command line through its ``launcher``. Each server
gets a free port on 127.0.0.1, the orchestrator's environment (so ``DATABASE_URL``,
``BENCH_PG_CONNECTIONS`` and ``BENCH_CONN_MAX_AGE`` reach it) plus the contender's own,
and a log file in the work directory; it counts as ready once it answers any HTTP
request. Instrumented servers report query counts and memory peaks (see
``benchmarks.instrument``) and are never timed.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
from types import TracebackType
from typing import IO

import httpx

from benchmarks.config import REPO_ROOT, SETTINGS_MODULE, ensure_work_dir
from benchmarks.contenders import get

STARTUP_TIMEOUT = 90.0
_INSTRUMENT_FLAGS = ("BENCH_COUNT_QUERIES", "BENCH_TRACE_MEMORY")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL after 15 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A contender served in a child process, for the length of a ``with`` block."""

    def __init__(self, contender: str, *, instrumented: bool = False, workers: int = 1) -> None:
        self.contender = contender
        self.instrumented = instrumented
        self.workers = workers
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        suffix = ("-instrumented" if instrumented else "") + (f"-{workers}-workers" if workers > 1 else "")
        self.log_path = ensure_work_dir() / f"server-{contender}{suffix}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.port = free_port()
        env = {key: value for key, value in os.environ.items() if key not in _INSTRUMENT_FLAGS}
        env["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        if self.instrumented:
            env.update(dict.fromkeys(_INSTRUMENT_FLAGS, "1"))
        contender = get(self.contender)
        env.update(contender.environment)
        if contender.launcher:
            module, _, function = contender.launcher.partition(":")
            command = getattr(importlib.import_module(module), function)("127.0.0.1", self.port)
        else:
            command = [sys.executable, "-m", "benchmarks.serve", self.contender, "--port", str(self.port)]
            command += ["--workers", str(self.workers)]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_until_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.contender} exited at start-up:\n{self.log_tail()}")
            try:
                httpx.get(self.url + "/", timeout=2.0)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.contender} did not answer within {STARTUP_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self._log is not None:
            self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

"""Stopping the server while a change-feed subscriber is connected (the tutorial's ``curl -N``).

Found while building this example: uvicorn waited for the subscriber to leave. The
stream now ends with a ``close`` event as soon as the server is asked to stop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import auth
from tests.test_tutorial import EXAMPLE, Lines, free_port, script


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The project served by uvicorn from a migrated copy (its own SQLite database)."""
    for name in ("manage.py", "shopsite", "catalog"):
        source = EXAMPLE / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, tmp_path / name)
    drop = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")  # the copy's own SQLite file, its own settings
    environ = {**{k: v for k, v in os.environ.items() if k not in drop}, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=tmp_path, env=environ, check=True, timeout=60)
    port = free_port()
    server = subprocess.Popen(
        [script("uvicorn"), "shopsite.asgi:app", "--port", str(port)],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert server.stdout is not None
    Lines(iter(server.stdout)).wait(lambda lines: any("Uvicorn running" in line for line in lines), "no start")
    try:
        yield server, port
    finally:
        server.kill()
        server.wait()


def test_uvicorn_stops_while_a_subscriber_is_connected(served: tuple[subprocess.Popen[str], int]) -> None:
    server, port = served
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=10) as http:
        shop = http.post(f"{base}/shops", json={"name": "Corner Shop"}, headers=auth("alice"))
        assert shop.status_code == 201, shop.text
        url = f"{base}/shops/{shop.json()['id']}/products/subscribe"
        with http.stream("GET", url, headers=auth("alice")) as stream:
            assert stream.status_code == 200
            lines = Lines(stream.iter_lines())
            lines.wait(lambda lines: "event: ready" in lines, "no ready frame")

            # Ctrl+C in the terminal that runs uvicorn (or a deployment's SIGTERM), while
            # the tutorial's `curl -N` is still connected.
            server.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 5
            while server.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            stopped = server.poll() is not None
            closed = lines.wait(lambda lines: any("server_shutdown" in line for line in lines), "no close event")
            with contextlib.suppress(KeyError, OSError):
                stream.extensions["network_stream"].get_extra_info("socket").shutdown(socket.SHUT_RDWR)

    assert stopped, "uvicorn was still running 5 s after Ctrl+C, held open by the change-feed subscriber"
    assert "event: close" in closed

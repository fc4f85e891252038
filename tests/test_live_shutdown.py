"""Stopping a server with subscribers connected: their streams end, the server exits.

An ASGI server waits for open responses before it stops, and a change-feed stream never
ends on its own, so uvicorn used to wait as long as one subscriber stayed ("Waiting for
connections to close"). Now SIGTERM (or Ctrl+C) ends every stream with a ``close``
event, reason ``server_shutdown`` (a WebSocket: close code 1012), and the server exits
within a second or two. A real uvicorn, a real SSE and a real WebSocket subscriber.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from testproject.seed import DEMO_TENANT, DEMO_USER
from tests.helpers import auth
from tests.live.server import LiveServer, running_server, sqlite_server


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    serving = (
        running_server(request.config, tmp_path, "shutdown") if on_postgres else sqlite_server(tmp_path, "shutdown")
    )
    with serving as live:
        yield live


def test_sigterm_ends_sse_and_websocket_streams_and_the_server_exits(server: LiveServer) -> None:
    headers = auth(tenant=DEMO_TENANT, user=DEMO_USER, scopes=["business.companies.read.any"])
    token = headers["Authorization"].split()[1]
    sse_lines: list[str] = []
    sse_ready = threading.Event()

    def read_sse() -> None:
        with (
            httpx.Client(timeout=30) as client,
            client.stream("GET", f"{server.base_url}/companies/subscribe", headers=headers) as stream,
        ):
            for line in stream.iter_lines():
                sse_lines.append(line)
                if line.startswith("event: ready"):
                    sse_ready.set()

    reader = threading.Thread(target=read_sse, daemon=True)
    reader.start()
    assert sse_ready.wait(20), sse_lines
    websocket_url = server.base_url.replace("http://", "ws://") + f"/companies/subscribe?access_token={token}"
    with connect(websocket_url, open_timeout=10) as websocket:
        assert json.loads(websocket.recv(timeout=10))["event"] == "ready"

        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        closing = json.loads(websocket.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=10)
        server.process.wait(timeout=10)
        stopped_after = time.monotonic() - started

    reader.join(timeout=10)
    assert closing == {
        "event": "close",
        "reason": "server_shutdown",
        "message": "The server is stopping; reconnect with the last id you saw.",
    }
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    assert "event: close" in sse_lines and any("server_shutdown" in line for line in sse_lines)
    assert stopped_after < 5
    assert "Traceback" not in server.log()

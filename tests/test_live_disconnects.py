"""WebSocket subscribers that leave, against a real uvicorn: no traceback, nothing left behind.

A client may leave its stream at any moment: with a close handshake, by dropping the
TCP connection (a reset, as a killed browser tab or a lost network does), or while the
server is in the middle of sending it a backlog. Each is the end of one stream, not an
error: the server's log gets no traceback and no ERROR line, the feed's streams and
the event loop's tasks return to what they were, no thread stays behind, and a new
subscriber is served as usual.

The server is ``python -m uvicorn tests.live.app:app`` on a seeded database of its own:
a SQLite file, or a copy of the seeded PostgreSQL database when ``DATABASE_URL`` points
at PostgreSQL. ``POST /live/companies`` makes the backlog, ``GET /live/feed`` shows the
streams, tasks and threads. A send that fails because the client has just gone (the
race a real server leaves open) is also played exactly, through ASGI.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from django.conf import settings
from starlette.types import Message
from starlette.websockets import WebSocket
from websockets.sync.client import connect

from djfapi.live.transports import run_websocket
from testproject.seed import DEMO_TENANT, DEMO_USER
from tests.helpers import auth
from tests.live.figures import record
from tests.live.server import LiveServer, running_server, sqlite_server

BACKLOG = 3000  # events a client leaves in the middle of
CLIENTS = {"close handshake": 7, "TCP reset": 7, "reset during a send": 6}


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log_dir = tmp_path_factory.mktemp("live-disconnects")
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    serving = (
        running_server(request.config, log_dir, "disconnects") if on_postgres else sqlite_server(log_dir, "disconnects")
    )
    with serving as live:
        yield live


def ws_url(server: LiveServer, query: str = "") -> str:
    return server.base_url.replace("http://", "ws://", 1) + "/companies/subscribe" + query


def feed_state(server: LiveServer) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{server.base_url}/live/feed", timeout=10).json()
    return state


def reset(sock: socket.socket) -> None:
    """Drop the connection with a TCP reset: no close frame, no FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def leave(server: LiveServer, how: str) -> bool:
    """Subscribe, take ``ready``, then leave the way ``how`` says; True when ``ready`` came."""
    host, port = urlsplit(server.base_url).hostname, urlsplit(server.base_url).port
    sock = socket.create_connection((host, port), timeout=10)
    query = ""
    if how == "reset during a send":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the server's sends block soon
        query = "?since=0"  # the whole backlog, page after page
    headers = auth(DEMO_TENANT, DEMO_USER)
    # Leaving by reset closes the socket under the client, whose own close then fails.
    with contextlib.suppress(OSError), connect(ws_url(server, query), sock=sock, additional_headers=headers) as ws:
        ready = json.loads(ws.recv(timeout=10))["event"] == "ready"
        if how == "reset during a send":
            time.sleep(0.3)  # the server is now waiting for the client to take more
        if how != "close handshake":
            reset(sock)
        return ready
    return False


def settled_state(server: LiveServer, baseline: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """The feed's state once no stream is left and the tasks are back (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        state = feed_state(server)
        if (state["streams"] == 0 and state["tasks"] <= baseline["tasks"]) or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def test_clients_that_leave_leave_no_traceback_and_nothing_behind(
    server: LiveServer, request: pytest.FixtureRequest
) -> None:
    created = httpx.post(
        f"{server.base_url}/live/companies", params={"tenant": DEMO_TENANT, "count": BACKLOG}, timeout=120
    )
    assert created.status_code == 200, created.text
    baseline = settled_state(server, {"tasks": 10**6})
    log_start = len(server.log())

    readies = [leave(server, how) for how, count in CLIENTS.items() for _ in range(count)]

    after = settled_state(server, baseline)
    log = server.log()[log_start:]
    tracebacks, errors = log.count("Traceback"), log.count("ERROR")
    record(
        request.config,
        f"WebSocket disconnects: {len(readies)} clients left ({', '.join(f'{n} {how}' for how, n in CLIENTS.items())}):"
        f" {tracebacks} tracebacks, {errors} ERROR lines in the server log; streams {after['streams']} after,"
        f" tasks {baseline['tasks']} -> {after['tasks']}",
    )
    assert readies == [True] * sum(CLIENTS.values())
    assert (tracebacks, errors) == (0, 0), log[-4000:]
    assert after["streams"] == 0
    assert after["tasks"] <= baseline["tasks"]
    assert after["threads"] == baseline["threads"]

    with connect(ws_url(server), additional_headers=auth(DEMO_TENANT, DEMO_USER)) as ws:
        assert json.loads(ws.recv(timeout=10))["event"] == "ready"
        made = httpx.post(f"{server.base_url}/live/companies", params={"tenant": DEMO_TENANT, "count": 1}, timeout=30)
        assert made.status_code == 200, made.text
        message = json.loads(ws.recv(timeout=10))
        while message["event"] == "ping":
            message = json.loads(ws.recv(timeout=10))
        assert (message["event"], message["data"]["name"]) == ("INSERT", "Live 0")
    assert "Traceback" not in server.log()[log_start:]


class OneEventStream:
    """Stands in for a ``Stream`` whose first event goes to a client that has just left."""

    def __init__(self) -> None:
        self.closed = False

    async def run(self, transport: Any) -> None:
        await transport.send_event(1, "INSERT", b'{"id":1}')
        raise AssertionError("the send to a departed client did not fail")

    def close(self) -> None:
        self.closed = True


def test_a_send_to_a_client_that_just_left_ends_its_stream_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """The server fails the send (uvicorn: ``ClientDisconnected``, an ``OSError``) before the
    client's disconnect reaches the app: the stream ends, nothing is raised, nothing is
    sent after, and one DEBUG line says so."""
    sent: list[str] = []
    inbox: list[Message] = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        if inbox:
            return inbox.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message["type"])
        if message["type"] == "websocket.send":
            raise ConnectionResetError("the client is gone")

    stream = OneEventStream()

    async def serve() -> None:
        websocket = WebSocket({"type": "websocket", "path": "/", "headers": []}, receive, send)
        await websocket.accept()
        with anyio.fail_after(5):
            await run_websocket(websocket, stream)  # type: ignore[arg-type]

    with caplog.at_level(logging.DEBUG, logger="djfapi.live"):
        anyio.run(serve)

    assert stream.closed
    assert sent == ["websocket.accept", "websocket.send"]  # no close on a socket that is gone
    messages = [record.getMessage() for record in caplog.records if record.name == "djfapi.live"]
    assert messages == ["djfapi.live: a WebSocket client left during a send (code 1006)"]
    assert all(record.levelno == logging.DEBUG and not record.exc_info for record in caplog.records)

"""The two wire formats of a stream: Server-Sent Events and WebSocket messages.

SSE frames::

    event: ready                 id: 41               : ping
    id: 41                       event: UPDATE        id: 57      <- only when the position moved
    data: {"id":41}              data: {...}

A keep-alive carries ``id:`` when the stream's position moved past events this
subscriber may not see, so that the browser's ``Last-Event-ID`` follows (a frame
without ``data`` dispatches no event). WebSocket messages are the same JSON objects,
one per message, control messages included (``{"event": "ping", "id": 57}``).

Every send waits at most ``LIVE_SEND_TIMEOUT`` seconds for the client (ASGI servers
apply back-pressure: a send waits while the socket's buffer is full), so what a slow
reader costs is bounded by one page.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from djfapi.live.stream import SlowConsumer, Stream, send_timeout

logger = logging.getLogger("djfapi.live")

CLOSE_CODES = {"token_expired": 4401, "slow_consumer": 4408, "server_shutdown": 1012}  # 1012: service restart
CLOSE_GRACE = 1.0  # seconds to try and tell a slow reader why it is closed


def _control(name: str, position: int | None, payload: dict[str, Any]) -> bytes:
    body: dict[str, Any] = {"event": name}
    if position is not None:
        body["id"] = position
    body.update(payload)
    return json.dumps(body, separators=(",", ":")).encode()


class SSETransport:
    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        self._send = send
        self._headers = headers
        self._started = False
        self._complete = False
        self._sent_position: int | None = None
        self.timeout = send_timeout()

    async def _write(self, chunk: bytes, *, more: bool = True, timeout: float | None = None) -> None:
        messages: list[Message] = []
        if not self._started:
            messages.append({"type": "http.response.start", "status": 200, "headers": self._headers})
        messages.append({"type": "http.response.body", "body": chunk, "more_body": more})
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                for message in messages:
                    await self._send(message)
                    self._started = True
        except TimeoutError:
            raise SlowConsumer() from None
        self._complete = not more

    async def send_event(self, event_id: int, action: str, payload: bytes) -> None:
        await self._write(b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, action.encode(), payload))
        self._sent_position = event_id

    async def send_control(self, name: str, position: int | None, payload: dict[str, Any]) -> None:
        frame = b"event: " + name.encode() + b"\n"
        if position is not None:
            frame += b"id: %d\n" % position
            self._sent_position = position
        await self._write(frame + b"data: " + _control(name, position, payload) + b"\n\n")

    async def send_ping(self, position: int) -> None:
        if position != self._sent_position:
            self._sent_position = position
            await self._write(b": ping\nid: %d\n\n" % position)
        else:
            await self._write(b": ping\n\n")

    async def close(self, reason: str, message: str) -> None:
        await self._write(
            b"event: close\ndata: " + _control("close", None, {"reason": reason, "message": message}) + b"\n\n",
            more=False,
        )

    async def end(self) -> None:
        """Complete the response, if it was started and still can be."""
        if self._started and not self._complete:
            await self._write(b"", more=False, timeout=CLOSE_GRACE)

    async def slow(self) -> None:
        """Tell a reader that fell behind why it is closed, if its socket takes it at all."""
        # If even that does not go out, the server closes the connection; either way the
        # client reconnects with its Last-Event-ID.
        with contextlib.suppress(SlowConsumer):
            await self._write(
                b"event: close\ndata: "
                + _control("close", None, {"reason": "slow_consumer", "message": "Reconnect with Last-Event-ID."})
                + b"\n\n",
                more=False,
                timeout=CLOSE_GRACE,
            )


class EventStreamResponse(Response):
    """A ``text/event-stream`` response that runs one ``Stream`` until it ends."""

    media_type = "text/event-stream"

    def __init__(self, stream: Stream) -> None:
        # Not Response.__init__: it would declare "content-length: 0" for the empty initial body.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream.open()  # a 503 here is still an ordinary error response
        transport = SSETransport(send, self.raw_headers)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope.cancel)
                try:
                    await self.stream.run(transport)
                    await transport.end()
                except SlowConsumer:
                    await transport.slow()
                tasks.cancel_scope.cancel()
        finally:
            self.stream.close()


async def _cancel_on_disconnect(receive: Receive, cancel: Callable[[], None]) -> None:
    while True:
        message = await receive()
        if message["type"] in ("http.disconnect", "websocket.disconnect"):
            cancel()
            return


class WebSocketTransport:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.timeout = send_timeout()

    async def _send(self, payload: bytes, timeout: float | None = None) -> None:
        try:
            with anyio.fail_after(self.timeout if timeout is None else timeout):
                await self.websocket.send_text(payload.decode())
        except TimeoutError:
            raise SlowConsumer() from None

    async def send_event(self, event_id: int, action: str, payload: bytes) -> None:
        await self._send(payload)

    async def send_control(self, name: str, position: int | None, payload: dict[str, Any]) -> None:
        await self._send(_control(name, position, payload))

    async def send_ping(self, position: int) -> None:
        await self._send(_control("ping", position, {}))

    async def close(self, reason: str, message: str) -> None:
        await self._send(_control("close", None, {"reason": reason, "message": message}))
        await self.websocket.close(code=CLOSE_CODES.get(reason, 1000), reason=reason)

    async def slow(self) -> None:
        with contextlib.suppress(TimeoutError, WebSocketDisconnect), anyio.fail_after(CLOSE_GRACE):
            await self.websocket.close(code=CLOSE_CODES["slow_consumer"], reason="slow_consumer")


async def run_websocket(websocket: WebSocket, stream: Stream) -> None:
    """Run an opened ``stream`` on an accepted WebSocket until it ends or the client leaves.

    A client may leave at any moment, also while a message is on its way (the send then
    raises ``WebSocketDisconnect``): that is the end of its stream, not an error, so it
    is logged at DEBUG and the socket is not closed a second time.
    """
    transport = WebSocketTransport(websocket)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_cancel_on_disconnect, websocket.receive, tasks.cancel_scope.cancel)
            try:
                await stream.run(transport)
            except SlowConsumer:
                await transport.slow()
            except WebSocketDisconnect as left:
                logger.debug("djfapi.live: a WebSocket client left during a send (code %s)", left.code)
            tasks.cancel_scope.cancel()
    finally:
        stream.close()
        if websocket.application_state == websocket.client_state == WebSocketState.CONNECTED:
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(CLOSE_GRACE),
                contextlib.suppress(WebSocketDisconnect),
            ):
                await websocket.close(code=1000)

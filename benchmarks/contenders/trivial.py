"""A bare ASGI app answering a constant JSON body: the load generator's ceiling.

Run under the same uvicorn settings as the contenders, it shows how many requests per
second the generator and the HTTP server manage together on this machine when the
application costs nothing — far above any contender, or the tables would measure the
generator.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"ok":true}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def create() -> Any:
    return app

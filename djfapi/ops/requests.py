"""``X-Request-ID`` on every response and one access-log line per request.

A well-formed incoming ``X-Request-ID`` (letters, digits, ``.-_:``, up to 128
characters — what proxies and load balancers send) is kept, so one id follows a request
through every hop; otherwise a new one is generated. The log line carries the method,
the route template (``/companies/{company_id}``, not the raw path, so ids and filters
do not end up in logs), the status, the duration, the request id, and the tenant, user
and matched scope when the request authenticated. Never the token, the query string or
the body.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from djfapi.ops.context import caller_of

HEADER = "x-request-id"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
logger = logging.getLogger("djfapi.access")


def request_id_of(scope: Scope) -> str | None:
    """The id of the request being handled (after ``RequestContextMiddleware`` ran)."""
    return scope.get("state", {}).get("request_id")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else "<unmatched>"


class RequestContextMiddleware:
    """ASGI middleware: give each request an id and log it once it is answered."""

    def __init__(self, app: ASGIApp, *, header: str = HEADER, log: logging.Logger | None = None) -> None:
        self.app = app
        self.header = header.lower().encode("latin-1")
        self.logger = log or logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((value for name, value in scope["headers"] if name == self.header), b"")
        text = incoming.decode("latin-1")
        request_id = text if _WELL_FORMED.match(text) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(name, value) for name, value in message.get("headers", []) if name != self.header]
                message = {**message, "headers": [*headers, (self.header, request_id.encode("latin-1"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._log(scope, request_id, status, time.perf_counter() - started)

    def _log(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        caller = caller_of(scope)
        fields: dict[str, Any] = {
            "method": scope["method"],
            "route": _route_template(scope),
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "request_id": request_id,
            "tenant_id": caller.tenant_id,
            "user_id": caller.user_id,
            "scope": caller.scope,
        }
        level = logging.ERROR if status >= 500 else logging.INFO
        self.logger.log(
            level,
            "%s %s %s %.1fms",
            fields["method"],
            fields["route"],
            status,
            fields["duration_ms"],
            extra={"djfapi": fields},
        )

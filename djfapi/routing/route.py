"""A FastAPI route class whose JSON bodies are parsed strictly.

Bodies larger than ``DJFAPI["MAX_BODY_SIZE"]`` are a 413 before they are read in full.
Errors are rendered with djfapi's bodies even in an app that never called
``install_error_handlers`` (SPEC §10: no silent 500 for a 401 or a 404).
Stock FastAPI parses bodies with ``json.loads``, which accepts ``NaN``/``Infinity``
and lone surrogates (``"\\ud800"``); the first crash its 422 handler and the second
crash PostgreSQL. Parsing with pydantic-core's JSON parser refuses both, as JSON
itself does, and ``\\u0000`` (which PostgreSQL text cannot store) is refused too. The
refusals are FastAPI's usual 422 ``json_invalid`` errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any, Union

import pydantic_core
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import Discriminator, Tag
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from djfapi.conf import setting
from djfapi.errors.handlers import app_handles, render_error
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.filters import check_query_string

_POSITION = re.compile(r"line (\d+) column (\d+)")


def _offset(document: str, message: str) -> int:
    match = _POSITION.search(message)
    if not match:
        return 0
    line, column = int(match.group(1)), int(match.group(2))
    lines = document.split("\n")
    return sum(len(text) + 1 for text in lines[: line - 1]) + max(column - 1, 0)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def parse_json(body: bytes) -> Any:
    """Parse a request body as strict JSON, raising ``json.JSONDecodeError`` like ``json.loads``."""
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as error:
        document = body.decode("utf-8", "replace")
        message = str(error)
        raise json.JSONDecodeError(message, document, _offset(document, message)) from None
    if b"\\u0000" in body and _has_nul(value):
        document = body.decode("utf-8", "replace")
        raise json.JSONDecodeError("strings must not contain NUL (\\u0000)", document, document.find("\\u0000"))
    return value


DEFAULT_MAX_BODY_SIZE = 1024 * 1024


def max_body_size() -> int:
    """``DJFAPI["MAX_BODY_SIZE"]``: the largest request body a generated route reads (default 1 MiB)."""
    return int(setting("MAX_BODY_SIZE", DEFAULT_MAX_BODY_SIZE))


class StrictJSONRequest(Request):
    async def body(self) -> bytes:
        # Refuse an oversized body before reading it when its length is declared, and
        # stop reading as soon as it grows too large when it is not (chunked uploads).
        if not hasattr(self, "_body"):
            limit = max_body_size()
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            chunks = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status_code=413, detail=f"The request body is larger than {limit} bytes.")


# Tags of the "one object or a list of them" body of bulk-create routes. Pydantic puts
# the chosen tag into error locations; the route takes it out again, so errors read
# ["body", "name"] for one object and ["body", 2, "name"] for the third of a list.
_ONE = "djfapi:one"
_MANY = "djfapi:many"


def _one_or_many(value: Any) -> str:
    return _MANY if isinstance(value, list) else _ONE


def one_or_many(one: Any, many: Any) -> Any:
    """A body type accepting ``one`` object or ``many`` (a list), told apart by the JSON type."""
    return Annotated[Union[Annotated[one, Tag(_ONE)], Annotated[many, Tag(_MANY)]], Discriminator(_one_or_many)]  # noqa: UP007


def _without_tags(error: dict[str, Any]) -> dict[str, Any]:
    loc = error.get("loc", ())
    if len(loc) > 1 and loc[0] == "body" and loc[1] in (_ONE, _MANY):
        return {**error, "loc": (loc[0], *loc[2:])}
    return error


class DjfapiRoute(APIRoute):
    """The route class of every generated router (kept by ``include_router``).

    Besides strict JSON bodies it answers 405 with an ``Allow`` header listing every
    method of the path, not only those of the route Starlette happened to match first.
    """

    #: All methods served at this route's path; filled in when the router is built.
    allowed_methods: frozenset[str] = frozenset()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allowed_methods and scope["method"] not in self.allowed_methods:
            error = HTTPException(status_code=405, headers={"Allow": ", ".join(sorted(self.allowed_methods))})
            if app_handles(scope.get("app"), error):
                raise error
            await render_error(Request(scope, receive), error)(scope, receive, send)
            return
        await super().handle(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            try:
                check_query_string(request.scope.get("query_string", b""))  # before any parsing, token or query
                return await handler(StrictJSONRequest(request.scope, request.receive))
            except Exception as exc:
                error = exc
                if isinstance(exc, RequestValidationError):
                    error = RequestValidationError([_without_tags(e) for e in exc.errors()], body=exc.body)
                if app_handles(request.scope.get("app"), error):
                    if error is exc:
                        raise  # as it came: its __cause__ (the driver's error) names the constraint
                    raise error from None
                # The app never called install_error_handlers (or only added its own for
                # other errors): answer with djfapi's body rather than FastAPI's bare 500.
                return render_error(request, error)

        return strict_json_handler


def share_allowed_methods(routes: Iterable[BaseRoute]) -> None:
    """Tell each djfapi route every method served at its path."""
    by_path: dict[str, set[str]] = {}
    djfapi_routes = [route for route in routes if isinstance(route, DjfapiRoute)]
    for route in djfapi_routes:
        by_path.setdefault(route.path, set()).update(route.methods or ())
    for route in djfapi_routes:
        route.allowed_methods = frozenset(by_path[route.path])


def check_operation_ids(routes: Iterable[BaseRoute]) -> None:
    """Refuse a tree whose routes share an ``operation_id`` (client generators need them unique)."""
    seen: dict[str, str] = {}
    for route in routes:
        if not isinstance(route, APIRoute) or route.operation_id is None:
            continue
        if route.operation_id in seen:
            raise SchemaDefinitionError(
                f"operation_id {route.operation_id!r} is used by {seen[route.operation_id]} and by {route.path}; "
                f"rename the custom endpoint's function or pass operation_id=..."
            )
        seen[route.operation_id] = route.path

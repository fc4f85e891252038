"""The subscribe routes of a node with ``subscribe=True``: SSE and WebSocket at one path.

``GET {collection}/subscribe`` answers ``text/event-stream``; a WebSocket at the same
path sends the same events as JSON messages. Both are guarded exactly like the node's
``GET``: the same security dependency and ``get`` scopes (401/403 with the same
bodies), and under a parent every ancestor in the path resolved through its own row
filter (404 when hidden). A refused WebSocket gets that HTTP answer before the
handshake completes (the ASGI "denial response"), or, where the server cannot send
one, is accepted and closed at once with 4000 + the status and a short reason (the
error's code, or the parameters a 422 names).

A position to resume from (``Last-Event-ID``, ``?last_event_id=``, the WebSocket's
``?since=``) is read strictly: once, as plain decimal digits, ``0`` to ``2**63 - 1``;
anything else is a 422 naming it, never a stream that silently starts elsewhere.

Browsers' ``EventSource`` and ``WebSocket`` cannot send an ``Authorization`` header, so
these routes also take the token as ``?access_token=``. A URL is more likely to be
logged than a header (proxies, the browser's history, uvicorn's own access log):
prefer the header where the client can send it, keep such tokens short-lived, and
keep query strings out of access logs (djfapi's access log never records them).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from django.apps import apps
from fastapi import APIRouter, Header, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi.utils import create_model_field
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from djfapi.conf import setting
from djfapi.errors import APIError, AuthenticationFailed
from djfapi.errors.handlers import error_response, json_safe
from djfapi.live.stream import Stream, prepare_signalled
from djfapi.live.transports import EventStreamResponse, run_websocket
from djfapi.ops.context import record_access, record_token
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.openapi import error_responses, scopes_text, with_article
from djfapi.schemas.access import AccessToken
from djfapi.schemas.errors import Error
from djfapi.utils.fastapi_django import run_signalled

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

logger = logging.getLogger("djfapi.live")

SUFFIX = "/subscribe"
MAX_ID = 2**63 - 1
DENIAL_EXTENSION = "websocket.http.response"
SSE_PARAMETERS = frozenset({"last_event_id", "access_token"})
WEBSOCKET_PARAMETERS = frozenset({"since", "access_token"})
LAST_EVENT_ID = "Last-Event-ID"
REFUSAL_CLOSE_BASE = 4000  # a refused WebSocket without the denial response: 4000 + the HTTP status
MAX_CLOSE_REASON = 123  # bytes: what a close frame can carry

_ACCESS_TOKEN_HELP = (
    "The bearer token, for clients that cannot send an Authorization header (browsers' EventSource and "
    "WebSocket). The header wins when both are sent. URLs are logged more often than headers: use short-lived tokens."
)


def check(node: DjangoRouterSchema) -> None:
    """Refuse ``subscribe=True`` where it cannot work, saying how to fix it."""
    if not apps.is_installed("djfapi.live"):
        raise SchemaDefinitionError(
            f"router schema {node.name!r} has subscribe=True: add 'djfapi.live' to INSTALLED_APPS and migrate"
        )
    if node.security is not None and not callable(getattr(node.security, "decode", None)):
        raise SchemaDefinitionError(
            f"router schema {node.name!r}: subscribe=True needs a security dependency with decode(raw_token), "
            f"such as JWTToken, to read tokens from the query string"
        )


class StreamBearer(SecurityBase):
    """The bearer token of a subscribe route: the ``Authorization`` header, else ``?access_token=``."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.model = owner.model
        self.scheme_name = owner.scheme_name

    async def __call__(
        self,
        request: Request,
        access_token: str | None = Query(None, max_length=8192, description=_ACCESS_TOKEN_HELP),
    ) -> AccessToken:
        await _ready(self.owner)
        token = read_token(self.owner, request.headers.get("authorization"), access_token)
        record_token(request.scope, token)
        return token


async def _ready(security: Any) -> None:
    ready = getattr(security, "ready", None)
    if ready is not None:
        await ready()  # the revoked tokens loaded (djfapi.auth)


def read_token(security: Any, header: str | None, access_token: str | None) -> AccessToken:
    """Verify the header's token or, without a header, the query string's (401 otherwise)."""
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise AuthenticationFailed("The Authorization header must be 'Bearer <token>'.", code="token_missing")
        return security.decode(raw.strip())
    if access_token:
        return security.decode(access_token)
    raise AuthenticationFailed(
        "An 'Authorization: Bearer <token>' header or an access_token query parameter is required.",
        code="token_missing",
    )


@cache
def event_model(schema: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    """The JSON of one event: what ``data:`` (SSE) or a message (WebSocket) carries."""
    fields: dict[str, Any] = {
        "id": (int, pydantic.Field(description="The event id: increasing; resume after it with Last-Event-ID")),
        "event": (Literal["INSERT", "UPDATE", "DELETE"], ...),
        "object_id": (str, pydantic.Field(description="The changed object's primary key")),
        "data": (
            schema | None,
            pydantic.Field(None, description="The object as this subscriber reads it now; absent on DELETE"),
        ),
    }
    return pydantic.create_model(
        f"{schema.__name__}ChangeEvent",
        __doc__=f"A change of a {schema.__name__}: INSERT, UPDATE or DELETE (which has no data).",
        **fields,
    )


class StreamControl(pydantic.BaseModel):
    """A control message of a change feed (SSE: the ``event:`` name is ``event``)."""

    event: Literal["ready", "reset", "close", "ping"] = pydantic.Field(
        description="ready: the stream's position at start; reset: resuming is impossible, reload then carry on; "
        "close: the server ends the stream (see reason); ping: WebSocket keep-alive (SSE sends a comment)"
    )
    id: int | None = pydantic.Field(None, description="The stream's position: resume after it")
    reason: str | None = pydantic.Field(
        None, description="reset: retention or unknown_position; close: token_expired or slow_consumer"
    )
    message: str | None = None


@cache
def stream_item(schema: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    """One message of a node's stream: a change of ``schema`` or a control message."""
    base: Any = pydantic.RootModel[event_model(schema) | StreamControl]  # type: ignore[misc]
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"{schema.__name__}StreamMessage",
        __base__=base,
        __doc__=f"What one event of the {schema.__name__} change feed carries as JSON.",
    )
    return model


def _keyword(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def _id_parameters(node: DjangoRouterSchema) -> list[inspect.Parameter]:
    return [_keyword(level.id_name, level.id_param.annotation) for level in node.ancestors]


def _leeway() -> float:
    return float(setting("JWT_LEEWAY", 0) or 0)


def _description(node: DjangoRouterSchema, scopes: Sequence[str] | None) -> str:
    under = f" of the {node.parent.model._meta.verbose_name} in the path" if node.parent is not None else ""
    return (
        f"Server-Sent Events: each committed change of {node.name}{under} that this caller may read, as the "
        f"event's JSON on the `data:` line (`id:` = event id, `event:` = INSERT, UPDATE or DELETE); `data` is the "
        f"object exactly as GET would return it to this caller, absent on DELETE. Control events: `ready` (the "
        f"stream's position), `reset` (resuming is impossible: reload, then carry on), `close` (with a reason: "
        f"`token_expired`, `slow_consumer`). Idle streams get a `: ping` comment every few seconds. Resume with "
        f"the `Last-Event-ID` header (or `?last_event_id=`): missed events within the retention window, in order, "
        f"without duplicates. A WebSocket at the same path sends the same JSON objects as messages "
        f"(`?since=` to resume). " + scopes_text(scopes, node.security is not None)
    )


def _stream_docs(item_name: str, description: str) -> dict[str, Any]:
    """The 200 response in FastAPI's own format for event streams (OpenAPI 3.2's ``itemSchema``)."""
    return {
        "description": description,
        "content": {
            "text/event-stream": {
                "itemSchema": {
                    "type": "object",
                    "properties": {
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": f"#/components/schemas/{item_name}"},
                        },
                        "event": {"type": "string"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer", "minimum": 0},
                    },
                    "required": ["data"],
                }
            }
        },
    }


def add_subscribe_routes(node: DjangoRouterSchema, router: APIRouter) -> None:
    """Register ``GET {collection}/subscribe`` (SSE) and the WebSocket route at the same path."""
    scopes = node.scopes["get"] if node.security is not None else None
    id_names = tuple(level.id_name for level in node.ancestors)
    path = node.collection_path + SUFFIX
    operation_id = f"{node.operation_prefix}_subscribe"
    leeway = _leeway()

    async def subscribe(**params: Any) -> EventStreamResponse:
        request: Request = params.pop("request")
        token: AccessToken | None = params.pop("token", None)
        # FastAPI parsed both leniently ("1.0", "+5", the last of repeated values): read them again, strictly.
        params.pop("last_event_id_header", None)
        params.pop("last_event_id", None)
        ids = {name: params.pop(name) for name in id_names}
        _, (header, query) = read_request(
            request.query_params.multi_items(),
            SSE_PARAMETERS,
            {},
            {},
            (("header", LAST_EVENT_ID), request.headers.getlist(LAST_EVENT_ID)),
            (("query", "last_event_id"), request.query_params.getlist("last_event_id")),
        )
        access, start = await run_signalled(
            prepare_signalled,
            node=node,
            token=token,
            scopes=scopes,
            ids=ids,
            requested=header if header is not None else query,
        )
        if access is not None:
            record_access(request.scope, access)
        return EventStreamResponse(Stream(node, access, ids, start, leeway=leeway))

    parameters = [_keyword("request", Request)]
    if node.security is not None:
        bearer = StreamBearer(node.security)
        parameters.append(_keyword("token", AccessToken, Security(bearer, scopes=list(scopes or ()))))
    parameters += _id_parameters(node)
    parameters += [
        _keyword(
            "last_event_id",
            int | None,
            Query(None, ge=0, le=MAX_ID, description="Resume after this event id (the Last-Event-ID header wins)"),
        ),
        _keyword(
            "last_event_id_header",
            int | None,
            Header(None, alias=LAST_EVENT_ID, ge=0, le=MAX_ID, description="Resume after this event id"),
        ),
    ]
    subscribe.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    subscribe.__name__ = operation_id
    label = with_article(str(node.model._meta.verbose_name))
    item = stream_item(node.get_schema)
    router.add_api_route(
        path,
        subscribe,
        methods=["GET"],
        operation_id=operation_id,
        name=operation_id,
        tags=list[str | Enum](node.tags),
        summary=f"Subscribe to changes of {node.name}"
        + (f" of {with_article(str(node.parent.model._meta.verbose_name))}" if node.parent is not None else ""),
        description=_description(node, scopes),
        status_code=200,
        # No media type of its own: the 200 is documented below, errors as JSON (Error).
        response_class=Response,
        responses={
            200: _stream_docs(
                item.__name__,
                f"A stream of events, each the change of {label} (or a control message) as JSON on its `data:` line.",
            ),
            **error_responses(node, detail=False, method="GET"),
            503: {"model": Error, "description": "The change feed cannot read its events right now."},
        },
    )
    # FastAPI puts the models of a route's stream items into the components: the
    # "$ref" above points there (a non-generator endpoint has to name them itself).
    route = router.routes[-1]
    assert isinstance(route, APIRoute) and route.path == path
    route.stream_item_type = item
    route.stream_item_field = create_model_field(
        name=f"StreamItem_{route.unique_id}", type_=route.stream_item_type, mode="serialization"
    )
    _add_websocket_route(node, router, path, scopes, leeway)


def _add_websocket_route(
    node: DjangoRouterSchema,
    router: APIRouter,
    path: str,
    scopes: tuple[str, ...] | None,
    leeway: float,
) -> None:
    security = node.security
    id_types = {level.id_name: pydantic.TypeAdapter(level.id_param.annotation) for level in node.ancestors}

    async def subscribe_websocket(websocket: WebSocket) -> None:
        # The parameters are read here, not by FastAPI: its refusal of a malformed one before
        # the handshake reaches the client as a bare 403, which looks like a missing scope.
        try:
            query = websocket.query_params
            ids, (since,) = read_request(
                query.multi_items(),
                WEBSOCKET_PARAMETERS,
                id_types,
                websocket.path_params,
                (("query", "since"), query.getlist("since")),
            )
            if security is not None:
                await _ready(security)
            token = (
                read_token(security, websocket.headers.get("authorization"), query.get("access_token"))
                if security is not None
                else None
            )
            if token is not None:
                record_token(websocket.scope, token)
            access, start = await run_signalled(
                prepare_signalled, node=node, token=token, scopes=scopes, ids=ids, requested=since
            )
            if access is not None:
                record_access(websocket.scope, access)
            stream = Stream(node, access, ids, start, leeway=leeway)
            await stream.open()
        except APIError as error:
            response = error_response(error.status_code, error.body(), error.headers, cause=error)
            await deny(websocket, response, error.code or error.error_type)
            return
        except RequestValidationError as error:
            errors = json_safe(error.errors())
            await deny(websocket, JSONResponse({"detail": errors}, status_code=422), validation_reason(errors))
            return
        try:
            await websocket.accept()
        except WebSocketDisconnect:
            stream.close()
            logger.debug("djfapi.live: a WebSocket client left before its stream started")
            return
        except BaseException:
            stream.close()
            raise
        await run_websocket(websocket, stream)

    name = f"{node.operation_prefix}_subscribe_websocket"
    subscribe_websocket.__name__ = name
    router.add_api_websocket_route(path, subscribe_websocket, name=name)


def unknown_parameter_errors(items: Sequence[tuple[str, str]], known: frozenset[str]) -> list[dict[str, Any]]:
    """A 422 error for each query parameter the route does not take: a misspelled
    ``last_event_id`` must not silently start the stream from now."""
    return [
        {
            "type": "extra_forbidden",
            "loc": ("query", name),
            "msg": f"Unknown query parameter {name!r}; this route takes {', '.join(sorted(known))}",
            "input": value,
        }
        for name, value in items
        if name not in known
    ]


Loc = tuple[str, str]


def read_position(loc: Loc, values: Sequence[str]) -> tuple[int | None, list[dict[str, Any]]]:
    """The event id a client resumes after, from every value it sent under one name.

    Given at most once, as decimal digits (no sign, point, space or ``_``), from 0 to
    ``2**63 - 1``; otherwise the errors, in FastAPI's format, located at ``loc``.
    """
    if not values:
        return None, []
    if len(values) > 1:
        message = f"Give one event id, not {len(values)}"
        return None, [{"type": "multiple_values", "loc": loc, "msg": message, "input": list(values)}]
    text = values[0]
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if not (digits.isascii() and digits.isdigit()) or (negative and not digits.strip("0")):
        message = "Input should be a valid integer, unable to parse string as an integer"
        return None, [{"type": "int_parsing", "loc": loc, "msg": message, "input": text}]
    if negative:
        message = "Input should be greater than or equal to 0"
        return None, [{"type": "greater_than_equal", "loc": loc, "msg": message, "input": text, "ctx": {"ge": 0}}]
    significant = digits.lstrip("0")
    if len(significant) > len(str(MAX_ID)) or int(significant or "0") > MAX_ID:
        message = f"Input should be less than or equal to {MAX_ID}"
        return None, [{"type": "less_than_equal", "loc": loc, "msg": message, "input": text, "ctx": {"le": MAX_ID}}]
    return int(significant or "0"), []


def read_request(
    items: Sequence[tuple[str, str]],
    known: frozenset[str],
    id_types: Mapping[str, pydantic.TypeAdapter[Any]],
    path_params: Mapping[str, Any],
    *positions: tuple[Loc, Sequence[str]],
) -> tuple[dict[str, Any], tuple[int | None, ...]]:
    """The path's ids (validated by ``id_types``) and the positions (``read_position``) of a
    subscribe request, checked for unknown parameters: one 422 with every error otherwise."""
    errors = unknown_parameter_errors(items, known)
    ids: dict[str, Any] = {}
    for name, adapter in id_types.items():
        try:
            ids[name] = adapter.validate_python(path_params.get(name))
        except pydantic.ValidationError as error:
            errors += [
                {**problem, "loc": ("path", name, *problem["loc"])} for problem in error.errors(include_url=False)
            ]
    values: list[int | None] = []
    for loc, given in positions:
        value, problems = read_position(loc, given)
        values.append(value)
        errors += problems
    if errors:
        raise RequestValidationError(errors)
    return ids, tuple(values)


def validation_reason(errors: Sequence[Mapping[str, Any]]) -> str:
    """A close reason that names what a 422 refused: ``query.since: int_parsing``."""
    return "; ".join(".".join(str(part) for part in error["loc"]) + f": {error['type']}" for error in errors)


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame can carry (123 bytes of UTF-8)."""
    return text.encode()[:MAX_CLOSE_REASON].decode(errors="ignore")


async def deny(websocket: WebSocket, response: Response, reason: str) -> None:
    """Refuse a WebSocket with the HTTP answer ``GET`` would give (same status, same body).

    A server without the ASGI denial response would turn a close before the handshake
    into a bare 403 whatever the cause; there the socket is accepted and closed at once
    with 4000 + the status (4401, 4403, 4404, 4422, 4503) and ``reason``.
    """
    try:
        if DENIAL_EXTENSION in (websocket.scope.get("extensions") or {}):
            await websocket.send_denial_response(response)
        else:
            await websocket.accept()
            await websocket.close(code=REFUSAL_CLOSE_BASE + response.status_code, reason=close_reason(reason))
    except WebSocketDisconnect:
        logger.debug("djfapi.live: a refused WebSocket client left before its answer")

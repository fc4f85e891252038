"""Render every error as SPEC §7 says, and never answer 500 to bad input.

``install_error_handlers(app)`` registers handlers for djfapi's own ``APIError``,
Starlette's HTTP errors (router-level 404/405 included), FastAPI's validation errors
(re-encoded so that input holding NaN or lone surrogates cannot crash the response),
the Django exceptions a view can raise, and a last-resort handler that hides the
traceback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from django.core import exceptions as django_exceptions
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.db.models import PROTECT, RESTRICT, ProtectedError, RestrictedError
from fastapi import FastAPI, Request
from fastapi import exception_handlers as fastapi_handlers
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from djfapi.errors.exceptions import APIError, Conflict, NotFound, PermissionDenied, ServiceUnavailable
from djfapi.errors.integrity import constraint_name
from djfapi.ops import sentry

logger = logging.getLogger("djfapi.errors")

_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "service_unavailable",
}


def error_response(
    status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None, *, cause: BaseException | None = None
) -> Response:
    """The SPEC §7 body; for a 5xx, with the Sentry ``event_id`` of ``cause`` when Sentry is on."""
    if status_code in (204, 304) or status_code < 200:
        return Response(status_code=status_code, headers=headers)
    content: dict[str, Any] = {"detail": json_safe(body)}
    if status_code >= 500 and cause is not None:
        event_id = sentry.report(cause)
        if event_id is not None:
            content["event_id"] = event_id
    return JSONResponse(content, status_code=status_code, headers=headers)


def json_safe(value: Any) -> Any:
    """Make ``value`` encodable as strict JSON: echoed input may hold NaN, infinities,
    lone surrogates, bytes or arbitrary objects, and must not turn a 422 into a 500."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {json_safe(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return json_safe(str(value))


def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc.status_code, exc.body(), exc.headers, cause=exc)


def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error_type = _HTTP_TYPES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else None
    detail = None if isinstance(exc.detail, str) else exc.detail
    return error_response(
        exc.status_code,
        {"type": error_type, "code": error_type, "message": message, "detail": detail},
        getattr(exc, "headers", None),
        cause=exc,
    )


#: The most errors a 422 lists. Handlers run in the event loop: rendering the 200 000
#: errors of a 400 KB body of empty list items took seconds, during which the whole
#: process answered nothing, and made a 19 MB answer.
MAX_VALIDATION_ERRORS = 100


def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    all_errors = exc.errors()
    errors = []
    for error in all_errors[:MAX_VALIDATION_ERRORS]:
        error = dict(error)
        error.pop("url", None)
        errors.append(error)
    if len(all_errors) > MAX_VALIDATION_ERRORS:
        omitted = len(all_errors) - MAX_VALIDATION_ERRORS
        where = all_errors[MAX_VALIDATION_ERRORS].get("loc") or ("body",)
        errors.append({"type": "too_many_errors", "loc": [where[0]], "msg": f"{omitted} more errors not listed"})
    return JSONResponse({"detail": json_safe(errors)}, status_code=422)


def _integrity_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, IntegrityError)
    name = constraint_name(exc)
    return _api_error(_, Conflict(f"The data violates the constraint {name!r}.", code=f"integrity:{name}"))


def _protected_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtectedError | RestrictedError)
    objects = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    models_ = sorted({str(obj._meta.model_name) for obj in objects})
    # The relations that hold on: each referring model's PROTECT/RESTRICT foreign keys.
    relations = sorted(
        {
            f"{obj._meta.model_name}.{field.name}"
            for obj in objects
            for field in obj._meta.concrete_fields
            if field.is_relation and getattr(field.remote_field, "on_delete", None) in (PROTECT, RESTRICT)
        }
    )
    code = f"protected:{','.join(models_)}" if models_ else "protected"
    message = f"Other objects still refer to this object through {', '.join(relations) or 'protected relations'}."
    return _api_error(_, Conflict(message, code=code, detail={"relations": relations}))


def _does_not_exist(_: Request, exc: Exception) -> Response:
    model_name = type(exc).__qualname__.split(".")[0]
    return _api_error(_, NotFound(f"{model_name} does not exist.", code=f"not_exist:{model_name.lower()}"))


def _django_permission_denied(_: Request, exc: Exception) -> Response:
    return _api_error(_, PermissionDenied(str(exc) or None))


def _django_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, django_exceptions.ValidationError)
    errors: list[dict[str, Any]] = []
    if hasattr(exc, "error_dict"):
        for field, field_errors in exc.error_dict.items():
            for error in field_errors:
                errors.append({"type": "value_error", "loc": ["body", field], "msg": " ".join(error.messages)})
    else:
        errors.extend({"type": "value_error", "loc": ["body"], "msg": message} for message in exc.messages)
    return JSONResponse({"detail": json_safe(errors)}, status_code=422)


def _data_error(_: Request, exc: Exception) -> Response:
    # The value passed validation but not the database (out of its range, say).
    # Never echo the database's message: it may quote SQL.
    errors = [{"type": "value_error", "loc": ["body"], "msg": "A value is out of the range the database accepts."}]
    return JSONResponse({"detail": errors}, status_code=422)


def _database_unavailable(_: Request, exc: Exception) -> Response:
    logger.warning("database unavailable: %s", type(exc).__name__)
    return error_response(ServiceUnavailable.status_code, ServiceUnavailable().body(), cause=exc)


def _unhandled(_: Request, exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc)
    return error_response(APIError.status_code, APIError().body(), cause=exc)


_HANDLERS: list[tuple[type[Exception], Callable[[Request, Exception], Response]]] = [
    (APIError, _api_error),
    (StarletteHTTPException, _http_error),
    (RequestValidationError, _validation_error),
    (IntegrityError, _integrity_error),
    (ProtectedError, _protected_error),
    (RestrictedError, _protected_error),
    (django_exceptions.ObjectDoesNotExist, _does_not_exist),
    (django_exceptions.PermissionDenied, _django_permission_denied),
    (django_exceptions.ValidationError, _django_validation_error),
    (DataError, _data_error),
    (OperationalError, _database_unavailable),
    (InterfaceError, _database_unavailable),
    (DatabaseError, _unhandled),
    (Exception, _unhandled),
]


def _in_event_loop(handler: Callable[[Request, Exception], Response]) -> Callable[..., Any]:
    # Starlette runs a sync handler in the thread pool; these are cheap, so run them inline.
    async def handle(request: Request, exc: Exception) -> Response:
        return handler(request, exc)

    return handle


def install_error_handlers(app: FastAPI) -> None:
    """Register djfapi's error handlers on ``app`` (call once, after creating it).

    Generated routes render their own errors this way even without it (see
    ``render_error``); installing them extends the same bodies to the rest of the app:
    router-level 404/405, your own routes, middleware.
    """
    for exception, handler in _HANDLERS:
        app.add_exception_handler(exception, _in_event_loop(handler))


_FASTAPI_DEFAULTS = frozenset(
    {
        fastapi_handlers.http_exception_handler,
        fastapi_handlers.request_validation_exception_handler,
        fastapi_handlers.websocket_request_validation_exception_handler,
    }
)


def app_handles(app: Any, exc: Exception) -> bool:
    """Whether ``app`` has a handler of its own for ``exc`` (djfapi's installed ones count).

    FastAPI's stock handlers do not count: they answer djfapi's errors with a bare
    ``Internal Server Error`` (an ``APIError`` is no ``HTTPException``) or echo input
    they cannot encode. A catch-all ``Exception`` handler does not count either, so a
    404 of a generated route stays a 404.
    """
    handlers = getattr(app, "exception_handlers", None) or {}
    for cls in type(exc).__mro__:
        if cls is Exception:
            return False
        handler = handlers.get(cls)
        if handler is not None:
            return handler not in _FASTAPI_DEFAULTS
    return False


def render_error(request: Request, exc: Exception) -> Response:
    """The response ``install_error_handlers`` would give for ``exc``."""
    handler = next(handler for exception, handler in _HANDLERS if isinstance(exc, exception))
    return handler(request, exc)

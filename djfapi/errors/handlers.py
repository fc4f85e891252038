"""Render every error as SPEC §7 says, and never answer 500 to bad input.

``install_error_handlers(app)`` registers handlers for djfapi's own ``APIError``,
Starlette's HTTP errors (router-level 404/405 included), FastAPI's validation errors
(re-encoded so that input holding NaN or lone surrogates cannot crash the response),
the Django exceptions a view can raise, and a last-resort handler that hides the
traceback.

Database errors are answered by their cause (``classify_database_error``), read from the
driver's error Django wraps (``error.__cause__``): only a database that cannot be reached
is a 503 ``database_unavailable``; one locked by other work past its timeout a 503
``database_busy``; a value it refuses (too long, out of range, too complex) a 422; any
other database error a 500, since it is a bug (a missing table, wrong SQL).
"""

from __future__ import annotations

import enum
import logging
import math
import sqlite3
from collections.abc import Callable
from typing import Any

from django.core import exceptions as django_exceptions
from django.db import DatabaseError, DataError, Error, IntegrityError, InterfaceError, InternalError, OperationalError
from django.db.models import PROTECT, RESTRICT, ProtectedError, RestrictedError
from fastapi import FastAPI, Request
from fastapi import exception_handlers as fastapi_handlers
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from djfapi.errors.exceptions import (
    APIError,
    Conflict,
    DatabaseBusy,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)
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


class DatabaseFailure(enum.Enum):
    """What a database error says about the request, and so how it is answered."""

    UNAVAILABLE = "unavailable"  # 503 database_unavailable: the database cannot be reached
    BUSY = "busy"  # 503 database_busy: locked by other work past its timeout; retrying helps
    VALUE = "value"  # 422: a value the database refuses (too long, out of range, too complex)
    OTHER = "other"  # 500: a bug (missing table, wrong SQL); logged with its traceback


# PostgreSQL SQLSTATEs (psycopg's ``sqlstate``, psycopg2's ``pgcode``), by class (first two
# characters) or in full. Connection exceptions, insufficient resources (too many
# connections, disk full) and system errors (I/O) mean the database cannot serve;
# shutdowns and "cannot connect now" too.
_PG_UNAVAILABLE_CLASSES = frozenset({"08", "53", "58"})
_PG_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03"})
# lock_not_available (lock_timeout), query_canceled (statement_timeout), serialization
# failure, deadlock: the database works, other work held it up.
_PG_BUSY = frozenset({"55P03", "57014", "40001", "40P01"})
# Data exceptions (numeric value out of range, invalid input syntax, ...) and program
# limits exceeded (statement too complex, ...).
_PG_VALUE_CLASSES = frozenset({"22", "54"})

# SQLite's error messages (it has no SQLSTATE), lower case.
_SQLITE_UNAVAILABLE = ("unable to open database", "disk i/o error", "database or disk is full", "readonly database")
_SQLITE_BUSY = ("database is locked", "database table is locked", "database schema is locked")
_SQLITE_VALUE = (
    "like or glob pattern too complex",
    "string or blob too big",
    "parser stack overflow",
    "expression tree is too large",
    "too many sql variables",
    "too many terms in compound select",
    "too many arguments on function",
)


def classify_database_error(exc: Error) -> DatabaseFailure:
    """How to answer ``exc``, from the driver's error that Django wraps (``exc.__cause__``).

    An ``OperationalError`` without a driver error to go by (psycopg's connection errors
    carry no SQLSTATE: refused, reset, server closed the connection, pool timeout; other
    drivers; raised by hand) counts as unavailable, as every one did before. So does a
    PostgreSQL driver's ``InternalError`` without a SQLSTATE: the driver lost the
    protocol's thread, as when PgBouncer's server connection is killed during a
    ``COMMIT`` (psycopg: "received 2 results from command 'COMMIT'") — the connection is
    broken, exactly as if it had dropped.
    """
    if isinstance(exc, InterfaceError):  # "connection already closed"
        return DatabaseFailure.UNAVAILABLE
    if isinstance(exc, DataError):
        return DatabaseFailure.VALUE
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        if sqlstate[:2] in _PG_UNAVAILABLE_CLASSES or sqlstate in _PG_UNAVAILABLE:
            return DatabaseFailure.UNAVAILABLE
        if sqlstate in _PG_BUSY:
            return DatabaseFailure.BUSY
        if sqlstate[:2] in _PG_VALUE_CLASSES:
            return DatabaseFailure.VALUE
        return DatabaseFailure.OTHER
    if isinstance(cause, sqlite3.Error):
        message = str(cause).lower()
        for failure, fragments in (
            (DatabaseFailure.UNAVAILABLE, _SQLITE_UNAVAILABLE),
            (DatabaseFailure.BUSY, _SQLITE_BUSY),
            (DatabaseFailure.VALUE, _SQLITE_VALUE),
        ):
            if any(fragment in message for fragment in fragments):
                return failure
        return DatabaseFailure.OTHER
    if isinstance(exc, InternalError) and _is_postgresql_driver_error(cause):
        return DatabaseFailure.UNAVAILABLE
    return DatabaseFailure.UNAVAILABLE if isinstance(exc, OperationalError) else DatabaseFailure.OTHER


def _is_postgresql_driver_error(error: BaseException | None) -> bool:
    """Whether ``error`` comes from psycopg (3) or psycopg2, without importing either."""
    return error is not None and type(error).__module__.split(".")[0] in ("psycopg", "psycopg2")


#: Where a refused value came from: requests without a body only have the query string
#: (path ids are typed and checked before any query).
_VALUE_MESSAGES = {
    "query": "A value of the query string is beyond what the database can process (too long, too large or too "
    "complex).",
    "body": "A value is out of the range the database accepts.",
}


def _database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Error)
    failure = classify_database_error(exc)
    driver_error = type(exc.__cause__ or exc).__name__
    if failure is DatabaseFailure.OTHER:
        return _unhandled(request, exc)
    if failure is DatabaseFailure.VALUE:
        # The checks before SQL missed this value. Never echo the database's message: it may quote SQL.
        where = "query" if request.method in ("GET", "HEAD") else "body"
        logger.warning("database refused a value of the %s: %s", where, driver_error)
        errors = [{"type": "value_error", "loc": [where], "msg": _VALUE_MESSAGES[where]}]
        return JSONResponse({"detail": errors}, status_code=422)
    logger.warning("database %s: %s", failure.value, driver_error)
    error = ServiceUnavailable() if failure is DatabaseFailure.UNAVAILABLE else DatabaseBusy()
    return error_response(error.status_code, error.body(), error.headers, cause=exc)


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
    (DatabaseError, _database_error),
    (InterfaceError, _database_error),  # no DatabaseError: "connection already closed"
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
    # The nearest class in the exception's MRO, as Starlette looks handlers up (a
    # ProtectedError is an IntegrityError, but has a handler of its own).
    by_class = dict(_HANDLERS)
    handler = next(by_class[cls] for cls in type(exc).__mro__ if cls in by_class)
    return handler(request, exc)

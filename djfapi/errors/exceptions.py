"""Exception classes raised by djfapi and available to its users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi.exceptions import RequestValidationError


class APIError(Exception):
    """Base of every error djfapi renders as ``{"detail": {type, code, message, detail}}``."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal_error"
    default_code: ClassVar[str | None] = None
    default_message: ClassVar[str | None] = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        self.code = code if code is not None else self.default_code
        self.detail = detail
        self.headers = headers
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"type": self.error_type, "code": self.code, "message": self.message, "detail": self.detail}


class AuthenticationFailed(APIError):
    """401: no usable bearer token."""

    status_code = 401
    error_type = "unauthorized"
    default_code = "token_invalid"
    default_message = "Authentication failed."

    def __init__(self, message: str | None = None, *, code: str | None = None, detail: Any = None) -> None:
        super().__init__(message, code=code, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class PermissionDenied(APIError):
    """403: authenticated, but not allowed to do this."""

    status_code = 403
    error_type = "forbidden"
    default_code = "permission_denied"
    default_message = "Permission denied."


class NotFound(APIError):
    """404: missing, or outside the caller's row filter (the two look the same on purpose)."""

    status_code = 404
    error_type = "not_found"
    default_code = "not_found"
    default_message = "Not found."

    @classmethod
    def for_model(cls, model: type) -> NotFound:
        name = model.__name__
        return cls(f"{name} does not exist.", code=f"not_exist:{name.lower()}")


class Conflict(APIError):
    """409: the write contradicts a database constraint or a protected relation."""

    status_code = 409
    error_type = "conflict"
    default_code = "conflict"
    default_message = "The request conflicts with the current state of the data."


class ServiceUnavailable(APIError):
    """503: a dependency (usually the database) is not answering.

    Raised for connection-level database failures only; a value the database refuses
    is a 422 (see ``djfapi.errors.handlers``).
    """

    status_code = 503
    error_type = "service_unavailable"
    default_code = "database_unavailable"
    default_message = "The service is temporarily unavailable."


class DatabaseBusy(ServiceUnavailable):
    """503 ``database_busy``: the database answers, but stayed locked by other work longer
    than its timeout allows (SQLite's "database is locked", PostgreSQL's lock, statement
    and deadlock timeouts). Worth retrying; sent with ``Retry-After``."""

    default_code = "database_busy"
    default_message = "The database is busy (locked by other work for longer than its timeout); try again."

    def __init__(self, message: str | None = None, *, code: str | None = None, detail: Any = None) -> None:
        super().__init__(message, code=code, detail=detail, headers={"Retry-After": "1"})


class ValidationFailed(RequestValidationError):
    """422 in FastAPI's validation format, for checks made after the body was parsed.

    Raise it from a hook or a custom endpoint: ``ValidationFailed("cannot reopen a
    closed company", loc=("body", "status"))``.
    """

    def __init__(
        self, message: str, *, loc: Sequence[str | int] = ("body",), value: Any = None, kind: str = "value_error"
    ) -> None:
        super().__init__([{"type": kind, "loc": tuple(loc), "msg": message, "input": value}])

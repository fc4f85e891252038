"""Upstream djfapi's exception classes, as shims over ``djfapi.errors`` (deprecated).

``raise AccessError(detail=Error(code=..., message=...))`` keeps working and is answered
with djfapi's error body (SPEC §7). Each class is a subclass of the djfapi error of the
same meaning (and a Starlette ``HTTPException``, as upstream's were), so handlers and
``except`` clauses written for either catch it; the
status codes are upstream's defaults (400 for ``ValidationError``/``ConstraintError``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.exceptions import HTTPException

from djfapi.compat import deprecated
from djfapi.errors import APIError, AuthenticationFailed, Conflict, PermissionDenied
from djfapi.routing.etags import PreconditionFailed

__all__ = ["AccessError", "AuthError", "ConstraintError", "PreconditionError", "ValidationError"]


class _Upstream(APIError, HTTPException):  # type: ignore[misc]  # headers: dict vs Mapping, same values
    """Takes upstream's ``(status_code, detail, headers)``; ``detail`` may be an ``Error``, a str or a dict.

    Also an ``HTTPException``, as upstream's were, so an app that registered upstream's
    ``http_exception_handler`` answers them in the usual way (not as a server error).
    """

    default_status: ClassVar[int] = 500

    def __init__(self, status_code: int | None = None, detail: Any = None, headers: dict[str, str] | None = None):
        deprecated(f"djfapi.exceptions.{type(self).__name__}", f"djfapi.errors.{type(self).__mro__[2].__name__}")
        fields = _fields(detail)
        APIError.__init__(
            self, fields.get("message"), code=fields.get("code"), detail=fields.get("detail"), headers=headers
        )
        if fields.get("type"):
            self.error_type = fields["type"]  # type: ignore[misc]
        self.status_code = status_code or self.default_status  # type: ignore[misc]


def _fields(detail: Any) -> dict[str, Any]:
    if detail is None:
        return {}
    if isinstance(detail, str):
        return {"message": detail}
    if hasattr(detail, "model_dump"):
        detail = detail.model_dump()
        detail = detail.get("detail", detail) if set(detail) <= {"detail", "event_id"} else detail
    if isinstance(detail, dict):
        return {key: detail.get(key) for key in ("type", "code", "message", "detail")}
    return {"detail": detail}


class AccessError(_Upstream, PermissionDenied):  # type: ignore[misc]  # headers: dict vs Mapping, same values
    default_status = 403


class AuthError(_Upstream, AuthenticationFailed):  # type: ignore[misc]  # headers: dict vs Mapping, same values
    default_status = 401


class ValidationError(_Upstream, APIError):  # type: ignore[misc]  # headers: dict vs Mapping, same values
    default_status = 400
    error_type = "bad_request"


class ConstraintError(_Upstream, Conflict):  # type: ignore[misc]  # headers: dict vs Mapping, same values
    default_status = 400


class PreconditionError(_Upstream, PreconditionFailed):  # type: ignore[misc]  # headers: dict vs Mapping, same values
    default_status = 412

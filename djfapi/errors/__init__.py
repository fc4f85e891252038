"""A short hierarchy of API errors with stable codes, and the handlers that render them.

Raise these from hooks and custom endpoints; ``install_error_handlers(app)`` turns
them (and FastAPI's, Starlette's and Django's own errors) into the SPEC §7 body.
"""

from __future__ import annotations

from djfapi.errors.exceptions import (
    APIError,
    AuthenticationFailed,
    Conflict,
    DatabaseBusy,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)
from djfapi.errors.handlers import install_error_handlers

__all__ = [
    "APIError",
    "AuthenticationFailed",
    "Conflict",
    "DatabaseBusy",
    "NotFound",
    "PermissionDenied",
    "ServiceUnavailable",
    "ValidationFailed",
    "install_error_handlers",
]

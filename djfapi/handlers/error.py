"""Upstream djfapi's exception handlers, as shims over ``djfapi.errors`` (deprecated).

``app.add_exception_handler(HTTPException, http_exception_handler)`` and its siblings
keep working: every one of them answers with the body ``install_error_handlers`` gives
(SPEC §7), for whatever it is registered for. ``install_error_handlers(app)`` replaces
all of them in one call.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from djfapi.compat import deprecated
from djfapi.errors.handlers import render_error

__all__ = [
    "generic_exception_handler",
    "http_exception_handler",
    "integrity_error_handler",
    "jose_error_handler",
    "object_does_not_exist_handler",
]

deprecated("djfapi.handlers.error", "djfapi.errors.install_error_handlers(app)", stacklevel=2)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    return render_error(request, exc)


async def generic_exception_handler(request: Request, exc: Exception) -> Response:
    return render_error(request, exc)


async def object_does_not_exist_handler(request: Request, exc: Exception) -> Response:
    return render_error(request, exc)


async def integrity_error_handler(request: Request, exc: Exception) -> Response:
    return render_error(request, exc)


async def jose_error_handler(request: Request, exc: Exception) -> Response:
    """python-jose's errors; djfapi verifies tokens with PyJWT and answers its own failures with 401."""
    return render_error(request, exc)

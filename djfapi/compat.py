"""Upstream djfapi 0.0.70 compatibility: one helper for the shims' warnings.

The shims keep upstream's import paths and argument names working on top of djfapi's
own implementation (``djfapi.exceptions``, ``djfapi.handlers.error``,
``djfapi.utils.pydantic_django``, ``djfapi.utils.fastapi``, ``djfapi.schemas.Pagination``,
``JWTToken(name=, auto_error=, algorithm=)``, the ``JWT_PUBLIC_KEY``/``JWT_ISSUER``
settings, ``list=`` as a list response). Each warns once per place with a
``DeprecationWarning`` naming djfapi's way; ``docs/upstream.md`` lists them all, and the
differences a client notices.
"""

from __future__ import annotations

import warnings


def deprecated(what: str, instead: str, *, stacklevel: int = 3) -> None:
    """Warn that upstream's ``what`` is a shim, and what to use instead."""
    warnings.warn(
        f"{what} is kept for code written for upstream djfapi 0.0.70; use {instead} (see docs/upstream.md).",
        DeprecationWarning,
        stacklevel=stacklevel,
    )

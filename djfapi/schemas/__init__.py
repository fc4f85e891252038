"""Pydantic models that are part of djfapi's public contract."""

from __future__ import annotations

from typing import Any

from djfapi.schemas.access import Access, AccessScope, AccessToken
from djfapi.schemas.errors import Error, ErrorDetail

__all__ = ["Access", "AccessScope", "AccessToken", "Error", "ErrorDetail"]


def __getattr__(name: str) -> Any:
    # Upstream djfapi's ``from djfapi.schemas import Pagination``: a deprecated shim.
    if name == "Pagination":
        from djfapi.compat import deprecated
        from djfapi.schemas.pagination import Pagination

        deprecated("djfapi.schemas.Pagination", "a router schema's list route")
        return Pagination
    raise AttributeError(f"module 'djfapi.schemas' has no attribute {name!r}")

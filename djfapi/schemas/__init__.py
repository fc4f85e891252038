"""Pydantic models that are part of djfapi's public contract."""

from __future__ import annotations

from djfapi.schemas.access import Access, AccessScope, AccessToken
from djfapi.schemas.errors import Error, ErrorDetail

__all__ = ["Access", "AccessScope", "AccessToken", "Error", "ErrorDetail"]

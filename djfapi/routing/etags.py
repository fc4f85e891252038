"""Entity tags for optimistic concurrency.

An object's ETag is a hash of the body the caller receives for it, so it changes
whenever the object or a nested list it shows changes — no version column needed —
and callers who see different fields get different tags. ``If-Match`` uses the strong
comparison (RFC 9110 §13.1.1), ``If-None-Match`` the weak one.
"""

from __future__ import annotations

import hashlib

from djfapi.errors import APIError


class PreconditionFailed(APIError):
    """412: the object changed since the caller read it (its ``If-Match`` tag is stale)."""

    status_code = 412
    error_type = "precondition_failed"
    default_code = "etag_mismatch"
    default_message = "The object has changed since it was read; read it again and retry."


def etag(body: bytes) -> str:
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def if_match_holds(header: str, current: str) -> bool:
    """``If-Match``: ``*`` or one of the listed strong tags equals the current one."""
    tags = _tags(header)
    return "*" in tags or current in [tag for tag in tags if not tag.startswith("W/")]


def is_not_modified(header: str, current: str) -> bool:
    """``If-None-Match`` (weak comparison): True when the client's copy is still current."""
    tags = _tags(header)
    return "*" in tags or current in [tag.removeprefix("W/") for tag in tags]

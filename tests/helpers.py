"""Helpers the test modules import: tokens signed with the demo's key, and headers."""

from __future__ import annotations

from typing import Any

from testproject.tokens import ALL_SCOPES, mint_token

TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"
USER = "user-1"


def token(
    tenant: str = TENANT, user: str = USER, scopes: tuple[str, ...] | list[str] = ALL_SCOPES, **options: Any
) -> str:
    return mint_token(tenant=tenant, user=user, scopes=scopes, **options)


def auth(
    tenant: str = TENANT, user: str = USER, scopes: tuple[str, ...] | list[str] = ALL_SCOPES, **options: Any
) -> dict[str, str]:
    """Headers with a bearer token signed by the demo's key."""
    return {"Authorization": f"Bearer {token(tenant, user, scopes, **options)}"}

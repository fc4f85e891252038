"""Helpers the test modules import: tokens signed with the demo's key, and headers."""

from __future__ import annotations

import os
from typing import Any

from testproject.tokens import ALL_SCOPES, mint_token


def behind_pooler() -> bool:
    """Whether DATABASE_URL goes through a pooler (CI's PgBouncer pass, ``DJFAPI_TEST_POOLER``):
    PostgreSQL's backends are then the pooler's, kept open by it, not the app's."""
    return bool(os.environ.get("DJFAPI_TEST_POOLER"))


TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"
USER = "user-1"


def own_postgresql_connection(**options: Any) -> Any:
    """A psycopg connection of its own to the test database, outside Django's (and its transaction)."""
    import psycopg
    from django.db import connection

    config = connection.settings_dict
    return psycopg.connect(
        dbname=config["NAME"],
        user=config["USER"],
        password=config["PASSWORD"],
        host=config["HOST"],
        port=config["PORT"],
        **options,
    )


def token(
    tenant: str = TENANT, user: str = USER, scopes: tuple[str, ...] | list[str] = ALL_SCOPES, **options: Any
) -> str:
    return mint_token(tenant=tenant, user=user, scopes=scopes, **options)


def auth(
    tenant: str = TENANT, user: str = USER, scopes: tuple[str, ...] | list[str] = ALL_SCOPES, **options: Any
) -> dict[str, str]:
    """Headers with a bearer token signed by the demo's key."""
    return {"Authorization": f"Bearer {token(tenant, user, scopes, **options)}"}


def clear_of_a_window_boundary(seconds: float = 5.0) -> None:
    """Wait, if need be, until ``seconds`` are left before the rate limiter's next minute.

    The limiter's windows are aligned to the clock's minutes, and as one begins the
    sliding window counter gives back part of the last one's count: a burst that
    straddles the boundary can get one more answer than its quota, and a test expecting
    the 429 at an exact position fails about once in sixty runs.
    """
    import time

    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)

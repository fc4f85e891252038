"""Fixtures: the app, tokens for the people of the tests, and the test database.

Every test runs on ``transactional_db``: the app's worker threads have database
connections of their own, so they must see committed rows, as in production. Django
empties the tables after each test.

The test database gets a name of its own on PostgreSQL (``test_<NAME>_examples_shop``),
so this suite can run while the main suite of the repository holds ``test_<NAME>``; on
SQLite it is a file (SQLite's in-memory test database makes concurrent writers fail at
once instead of waiting, and the change feed's threads need to share it).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.security.tokens import mint_token

TENANT, OTHER_TENANT = "acme", "globex"

#: Who is who in the tests: (tenant, user, scopes).
PEOPLE: dict[str, tuple[str, str, list[str]]] = {
    # a shopkeeper: creates shops, and sees and changes only their own
    "alice": (
        TENANT,
        "alice",
        ["shop.shops.read.own", "shop.shops.create", "shop.shops.update.own", "shop.shops.delete.own"],
    ),
    "frank": (
        TENANT,
        "frank",
        ["shop.shops.read.own", "shop.shops.create", "shop.shops.update.own", "shop.shops.delete.own"],
    ),
    # the marketplace's staff: every shop of the tenant
    "carol": (
        TENANT,
        "carol",
        ["shop.shops.read.any", "shop.shops.create", "shop.shops.update.any", "shop.shops.delete.any"],
    ),
    # customers: read every shop, write reviews, change and delete only their own
    "bob": (
        TENANT,
        "bob",
        ["shop.shops.read.any", "shop.reviews.create", "shop.reviews.update.own", "shop.reviews.delete.own"],
    ),
    "dan": (
        TENANT,
        "dan",
        ["shop.shops.read.any", "shop.reviews.create", "shop.reviews.update.own", "shop.reviews.delete.own"],
    ),
    # another tenant, holding every scope there is
    "eve": (
        OTHER_TENANT,
        "eve",
        [
            "shop.shops.read.any",
            "shop.shops.create",
            "shop.shops.update.any",
            "shop.shops.delete.any",
            "shop.reviews.create",
            "shop.reviews.update.any",
            "shop.reviews.delete.any",
        ],
    ),
}


def auth(person: str, **claims: Any) -> dict[str, str]:
    """The ``Authorization`` header of ``person`` (see ``PEOPLE``), with a real signed JWT."""
    tenant, user, scopes = PEOPLE[person]
    token = mint_token(tenant=tenant, user=user, scopes=scopes, **claims)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    from django.conf import settings

    database = settings.DATABASES["default"]
    test = database.setdefault("TEST", {})
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test["NAME"] = os.path.join(tempfile.gettempdir(), f"shop-example-tests-{os.getpid()}.sqlite3")
    else:
        test["NAME"] = f"test_{database['NAME']}_examples_shop"


def _postgres_problem() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import psycopg

    try:
        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
    except psycopg.Error as error:
        return f"PostgreSQL at DATABASE_URL is unreachable: {error}".strip()
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An unreachable PostgreSQL skips the run with the reason, except under CI=true."""
    problem = _postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        raise pytest.UsageError(f"{problem} (CI=true: the PostgreSQL run is required)")
    for item in items:
        item.add_marker(pytest.mark.skip(reason=problem))


def pytest_report_header(config: pytest.Config) -> str:
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"


@pytest.fixture(scope="session")
def app() -> FastAPI:
    from shopsite.asgi import app

    return app


@pytest.fixture
def client(app: FastAPI, transactional_db: None) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def clear_of_a_window_boundary(seconds: float = 5.0) -> None:
    """Wait, if need be, until ``seconds`` are left before the rate limiter's next minute.

    Its windows are aligned to the clock's minutes, and as one begins the sliding window
    counter gives back part of the last one's count: a burst that straddles the boundary
    can get one more answer than its quota.
    """
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)

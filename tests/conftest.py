"""Shared fixtures: the demo app, a client that shares the test's database transaction,
tokens signed with the demo's key, and the PostgreSQL switch.

``DATABASE_URL=postgres://...`` runs the whole suite on PostgreSQL. When that server
cannot be reached the run is skipped with the reason — except under ``CI=true``,
where it is an error: CI must not pass without the PostgreSQL half.
``DJFAPI_TEST_POOLER=pgbouncer`` says that ``DATABASE_URL`` goes through a
transaction-pooling PgBouncer (CI's third pass): tests marked ``direct_postgresql``
are then skipped with the reason.
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from fastapi import FastAPI
from fastapi.testclient import TestClient


def _postgres_problem() -> str | None:
    """Why the configured PostgreSQL cannot be used, or None (also None for SQLite)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import psycopg

    try:
        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
    except psycopg.Error as error:
        return f"PostgreSQL at DATABASE_URL is unreachable: {error}".strip()
    return None


def _on_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _on_postgres():
        # Tests that read PostgreSQL's own views (pg_stat_activity, ...) run in the
        # PostgreSQL half of the suite, which CI requires; the SQLite half says so.
        only_postgres = pytest.mark.skip(reason="PostgreSQL only: runs when DATABASE_URL points at PostgreSQL")
        for item in items:
            if item.get_closest_marker("postgresql"):
                item.add_marker(only_postgres)
    pooler = os.environ.get("DJFAPI_TEST_POOLER")
    if pooler:
        # CI's third pass runs the PostgreSQL half through a transaction-pooling PgBouncer.
        # Tests that count PostgreSQL's own backends of the app, or set a session option at
        # connect time, test what the pooler replaces; test_pgbouncer covers that set-up.
        behind = pytest.mark.skip(reason=f"needs a direct PostgreSQL session; DATABASE_URL goes through {pooler}")
        for item in items:
            if item.get_closest_marker("direct_postgresql"):
                item.add_marker(behind)
    problem = _postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        raise pytest.UsageError(f"{problem} (CI=true: the PostgreSQL run is required)")
    skip = pytest.mark.skip(reason=problem)
    for item in items:
        item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"


@pytest.fixture(scope="session")
def app() -> FastAPI:
    from testproject.app import create_app

    return create_app()


@pytest.fixture
def shared_connection(db: None) -> Iterator[None]:
    """Let the app's worker threads use the test's connection, inside its transaction.

    This is what Django's own ``LiveServerTestCase`` and test ``Client`` do: every
    thread sees the test's rows, everything is rolled back afterwards, and
    ``django_assert_num_queries`` counts the app's queries. As in Django's test client,
    ``close_old_connections`` is unhooked from the request signals, or it would close
    the connection in the middle of the test's transaction. Tests about connection
    hygiene itself use ``transactional_db`` and real per-thread connections instead.
    """
    from djfapi.counts import find_counters

    find_counters()  # before the test counts queries: the first total would look counters up (two queries)
    handler: Any = connections
    original = handler._connections
    shared = types.SimpleNamespace(**{alias: connections[alias] for alias in connections})
    for connection in vars(shared).values():
        connection.inc_thread_sharing()
    handler._connections = shared
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        handler._connections = original
        for connection in vars(shared).values():
            connection.dec_thread_sharing()


@pytest.fixture
def client(app: FastAPI, shared_connection: None) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session", autouse=True)
def no_revoked_tokens_yet() -> None:
    """The suite's process starts knowing of no revoked token (djfapi.auth), as a fresh database has none.

    Otherwise the first request carrying a token in the session would load them (two
    queries), in whichever test that happens to be; tests that count queries would then
    depend on their order. Revocations made by the tests apply in this process at once, and
    the process follows no other (no LISTEN connection, no reload at moments tests count
    queries); tests/test_auth_processes.py shows the following with real servers.
    """
    import time

    from djfapi.auth import revocation

    revocation.cache.replace({}, {}, time.monotonic())
    revocation.FOLLOW = False

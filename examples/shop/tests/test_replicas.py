"""Reads from a replica, the shop's own writes read back from the primary (``djfapi.replicas``).

The replica here is a second connection to the test database (a replica with no lag),
declared for this module as ``SHOP_REPLICA_URL`` would declare it, so every query shows
which alias ran it: a customer's GET
runs on the replica; once the shopkeeper has written, the shopkeeper's reads run on
the primary for the pin window while the customer's stay on the replica, and every
read of a write request runs on the primary.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import override_settings
from fastapi.testclient import TestClient

from djfapi.auth import revocation
from tests.conftest import auth

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture(scope="module", autouse=True)
def replica_alias(django_db_setup: None) -> Iterator[None]:
    """The "replica" alias, before the test case (which checks its databases) is made."""
    connections.settings["replica"] = {**connections["default"].settings_dict, "TEST": {"MIRROR": "default"}}
    try:
        yield
    finally:
        connections["replica"].close()
        del connections["replica"]
        del connections.settings["replica"]


@pytest.fixture
def replica(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The revoked-token list (djfapi.auth) is read from the primary, on purpose, when a process
    # starts and then in the background (reloads, LISTEN); this module counts where the
    # *requests'* queries go, so the list is known (empty) and not followed meanwhile.
    monkeypatch.setattr(revocation, "FOLLOW", False)
    revocation.cache.replace({}, {}, time.monotonic())
    cache.clear()
    with override_settings(DJFAPI={**settings.DJFAPI, "READ_REPLICAS": ["replica"]}):
        yield
    cache.clear()


def ran_on(client: TestClient, method: str, path: str, person: str, **kwargs: Any) -> tuple[int, set[str]]:
    """The status, and the databases the request connected to (the app's threads connect
    afresh for each request and close at its end, CONN_MAX_AGE being 0)."""
    connected: set[str] = set()

    def note(sender: Any, connection: Any, **_: Any) -> None:
        connected.add(connection.alias)

    connection_created.connect(note)
    try:
        response = client.request(method, path, headers=auth(person), **kwargs)
    finally:
        connection_created.disconnect(note)
    return response.status_code, connected


def test_reads_go_to_the_replica_and_a_writer_reads_its_writes_on_the_primary(
    replica: None, client: TestClient
) -> None:
    assert ran_on(client, "GET", "/shops", "bob") == (200, {"replica"})
    # a write never reads the replica
    assert ran_on(client, "POST", "/shops", "alice", json={"name": "Corner Shop"}) == (201, {"default"})
    assert ran_on(client, "GET", "/shops", "alice") == (200, {"default"})  # alice just wrote: pinned
    assert ran_on(client, "GET", "/shops", "bob") == (200, {"replica"})  # bob did not

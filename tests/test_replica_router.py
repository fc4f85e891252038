"""``djfapi.replicas.ReplicaRouter``: where each read goes, rule by rule, and its system checks.

These run the router as Django does, on both databases, with the request marked the
way a generated endpoint marks it (``enter_request``, in a context of its own). The
real replica, with real lag, is ``test_replicas``.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings

from djfapi.checks import read_replica_messages
from djfapi.ops.context import enter_request, record_token
from djfapi.replicas import ReplicaRouter
from djfapi.schemas.access import AccessToken
from testproject.business.models import Company

T = TypeVar("T")
router = ReplicaRouter()


@pytest.fixture(autouse=True)
def replicas() -> Iterator[None]:
    with override_settings(DJFAPI={**settings.DJFAPI, "READ_REPLICAS": ["replica"], "REPLICA_PIN_SECONDS": 60}):
        cache.clear()
        yield
        cache.clear()


def request_scope(method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "state": {}}


def token(user: str, tenant: str = "t1") -> AccessToken:
    return AccessToken(iss="test", iat=0, exp=2**31, sub=user, ten=tenant, aud=[])


def in_request(scope: dict[str, Any], call: Callable[[], T], user: str | None = "alice") -> T:
    """``call`` as a generated endpoint runs it: in a fresh context marked with the request."""

    def run() -> T:
        enter_request(scope)
        if user is not None:
            record_token(scope, token(user))
        return call()

    return contextvars.copy_context().run(run)


def read() -> str:
    return router.db_for_read(Company)


def write() -> str:
    return router.db_for_write(Company)


def test_a_generated_get_reads_from_the_replica() -> None:
    assert in_request(request_scope("GET"), read) == "replica"
    assert in_request(request_scope("HEAD"), read) == "replica"
    assert in_request(request_scope("OPTIONS"), read) == "replica"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_request_reads_from_the_primary(method: str) -> None:
    assert in_request(request_scope(method), read) == "default"


def test_reads_outside_generated_endpoints_go_to_the_primary() -> None:
    """The feed's hub, the admin, commands: no request marked."""
    assert read() == "default"


@pytest.mark.django_db
def test_reads_inside_a_transaction_go_to_the_primary() -> None:
    def within_atomic() -> str:
        with transaction.atomic():
            return read()

    assert in_request(request_scope("GET"), within_atomic) == "default"


def test_a_writer_is_pinned_to_the_primary_and_only_that_writer() -> None:
    assert in_request(request_scope("POST"), write, user="alice") == "default"
    assert in_request(request_scope("GET"), read, user="alice") == "default"  # pinned
    assert in_request(request_scope("GET"), read, user="bob") == "replica"  # not bob
    assert in_request(request_scope("GET"), read, user=None) == "replica"  # nobody to pin


def test_the_pin_is_per_tenant_and_user() -> None:
    scope = request_scope("POST")

    def write_as_alice_of_another_tenant() -> str:
        enter_request(scope)
        record_token(scope, token("alice", tenant="t2"))
        return write()

    contextvars.copy_context().run(write_as_alice_of_another_tenant)
    assert in_request(request_scope("GET"), read, user="alice") == "replica"  # alice of t1 did not write


def test_the_pin_ends_with_its_window() -> None:
    with override_settings(DJFAPI={**settings.DJFAPI, "READ_REPLICAS": ["replica"], "REPLICA_PIN_SECONDS": 0.001}):
        in_request(request_scope("POST"), write)
        time.sleep(0.01)
        assert in_request(request_scope("GET"), read) == "replica"


def test_without_replicas_everything_reads_from_the_primary() -> None:
    with override_settings(DJFAPI={**settings.DJFAPI, "READ_REPLICAS": []}):
        assert in_request(request_scope("GET"), read) == "default"


def test_migrations_run_on_the_primary_only() -> None:
    assert router.allow_migrate("replica", "business") is False
    assert router.allow_migrate("default", "business") is None


def test_the_checks_name_a_missing_replica_and_a_missing_router() -> None:
    databases = {"default": {}, "replica": {}}
    installed = ["djfapi.replicas.ReplicaRouter"]
    assert read_replica_messages(databases, installed, {"READ_REPLICAS": ["replica"]}) == []
    assert read_replica_messages(databases, installed, {}) == []

    (missing,) = read_replica_messages(databases, installed, {"READ_REPLICAS": ["standby"]})
    assert missing.id == "djfapi.E002" and "'standby'" in missing.msg

    (unrouted,) = read_replica_messages(databases, [], {"READ_REPLICAS": ["replica"]})
    assert unrouted.id == "djfapi.W002" and "djfapi.replicas.ReplicaRouter" in str(unrouted.hint)

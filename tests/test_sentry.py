"""Sentry through sentry-sdk's own integrations, observed with a capturing transport.

The transport is a real ``sentry_sdk.transport.Transport`` that keeps the envelopes the
SDK would send, so everything up to the network is the SDK's own code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from django.db import OperationalError
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.ops.sentry import init_sentry, scrub
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken
from testproject.business.models import Company
from tests.helpers import OTHER_TENANT, TENANT, USER, auth, token

READ = "business.companies.read.any"


class Capture(Transport):
    envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        Capture.envelopes.append(envelope)

    def flush(self, timeout: float, callback: Any = None) -> None:
        return None


def events() -> list[dict[str, Any]]:
    return [item.payload.json for e in Capture.envelopes for item in e.items if item.type == "event"]


class CompanyOut(BaseModel):
    id: object
    name: str


def make_app() -> FastAPI:
    tree = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        security=JWTToken(),
        security_scopes=SecurityScopes(get=[READ]),
        delete=False,
    )

    @tree.endpoint("/boom", detail=False)
    def boom() -> None:
        raise RuntimeError("something broke")

    @tree.endpoint("/database-down", detail=False)
    def database_down() -> None:
        raise OperationalError("connection refused")

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return app


@pytest.fixture
def api(shared_connection: None) -> Iterator[TestClient]:
    Capture.envelopes = []
    assert init_sentry("http://public@sentry.invalid/1", transport=Capture)
    try:
        with TestClient(make_app(), raise_server_exceptions=False) as client:
            yield client
    finally:
        sentry_sdk.init()  # no DSN: the client is inactive again


def test_without_a_dsn_nothing_is_enabled(settings: Any) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "SENTRY_DSN": None}
    assert init_sentry() is False


def test_an_unhandled_error_is_sent_once_with_the_callers_tags(api: TestClient) -> None:
    response = api.get("/companies/boom", headers=auth(scopes=[READ]))

    assert response.status_code == 500
    sent = events()
    assert len(sent) == 1
    assert sent[0]["exception"]["values"][-1]["type"] == "RuntimeError"
    assert sent[0]["tags"]["user_id"] == USER
    assert sent[0]["tags"]["tenant_id"] == TENANT
    assert sent[0]["tags"]["scope"] == READ
    assert response.json()["event_id"] == sent[0]["event_id"]
    assert response.json()["detail"]["type"] == "internal_error"


def test_a_503_is_sent_and_its_body_carries_the_event_id(api: TestClient) -> None:
    response = api.get("/companies/database-down", headers=auth(scopes=[READ]))

    assert response.status_code == 503
    sent = events()
    assert len(sent) == 1
    assert response.json()["event_id"] == sent[0]["event_id"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("get", "/companies/00000000-0000-0000-0000-000000000000", "reader", 404),
        ("get", "/companies?nmae=x", "reader", 422),
        ("get", "/companies", "nobody", 401),
        ("get", "/companies", "no scope", 403),
        ("delete", "/companies", "reader", 405),
    ],
)
def test_client_errors_are_not_sent(api: TestClient, method: str, path: str, headers: str, status: int) -> None:
    chosen = {
        "reader": auth(scopes=[READ]),
        "nobody": {},
        "no scope": auth(scopes=["business.companies.create"]),
    }[headers]

    response = getattr(api, method)(path, headers=chosen)

    assert response.status_code == status
    assert events() == []
    assert "event_id" not in response.json()


def test_the_token_never_reaches_sentry(api: TestClient) -> None:
    raw = token(scopes=[READ])

    api.get("/companies/boom?note=" + raw, headers={"Authorization": f"Bearer {raw}", "Cookie": "session=secret"})

    serialised = json.dumps(events())
    assert raw not in serialised
    assert raw.split(".")[2] not in serialised  # not even the signature
    assert "session=secret" not in serialised
    assert events()[0]["tags"]["tenant_id"] == TENANT


def test_events_of_different_requests_carry_their_own_tags(api: TestClient) -> None:
    api.get("/companies/boom", headers=auth(scopes=[READ]))
    api.get("/companies/boom", headers=auth(tenant=OTHER_TENANT, user="someone", scopes=[READ]))

    assert [(e["tags"]["tenant_id"], e["tags"]["user_id"]) for e in events()] == [
        (TENANT, USER),
        (OTHER_TENANT, "someone"),
    ]


def test_scrub_filters_secret_headers_and_jwt_shaped_strings() -> None:
    event = {
        "request": {"headers": {"Authorization": "Bearer x", "Accept": "json"}, "cookies": {"a": "b"}, "data": "{}"},
        "extra": {"note": "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here"},
    }

    scrubbed = scrub(event, {})

    assert scrubbed["request"] == {"headers": {"Authorization": "[Filtered]", "Accept": "json"}}
    assert scrubbed["extra"]["note"] == "token [Filtered] here"

"""Health checks, request ids and access logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.errors import install_error_handlers
from djfapi.ops.health import health_router
from djfapi.ops.logs import JSONFormatter
from djfapi.ops.requests import RequestContextMiddleware
from testproject.business.models import Company
from tests.helpers import TENANT, USER, auth, token

# -- health --------------------------------------------------------------------------------------------------------


def health_app(**options: Any) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(health_router(**options))
    return app


@pytest.fixture
def health(shared_connection: None) -> Iterator[TestClient]:
    with TestClient(health_app()) as client:
        yield client


def test_liveness_answers_without_a_token_or_a_database(health: TestClient, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = health.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_queries_every_database(health: TestClient, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        response = health.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "databases": {alias: "ok" for alias in connections}}


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")  # adding an unreachable alias is the point
def test_readiness_is_503_with_the_error_body_when_a_database_is_unreachable(settings: Any) -> None:
    settings.DATABASES = {
        **settings.DATABASES,
        "unreachable": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "nowhere",
            "HOST": "127.0.0.1",
            "PORT": "1",  # nothing listens there
            "USER": "nobody",
            "OPTIONS": {"connect_timeout": 1},
        },
    }
    del connections.settings  # let the handler read the changed setting
    try:
        with TestClient(health_app(databases=["unreachable"], timeout=5)) as client:
            response = client.get("/health/ready")
    finally:
        connections.close_all()
        del connections.settings

    assert response.status_code == 503
    body = response.json()["detail"]
    assert body["type"] == "service_unavailable"
    assert body["code"] == "not_ready"
    assert set(body["detail"]["databases"]) == {"unreachable"}
    assert "nobody" not in response.text and "127.0.0.1" not in response.text


def test_health_routes_stay_out_of_the_openapi_document_unless_asked() -> None:
    assert "/health" not in health_app().openapi()["paths"]
    assert {"/health", "/health/ready"} <= set(health_app(include_in_schema=True).openapi()["paths"])


# -- request ids and access logs -----------------------------------------------------------------------------------


@pytest.fixture
def logged(app: FastAPI, shared_connection: None) -> Iterator[TestClient]:
    """The demo app, which installs ``RequestContextMiddleware`` as a user would."""
    assert any(m.cls is RequestContextMiddleware for m in app.user_middleware)
    with TestClient(app) as client:
        yield client


def test_every_response_carries_a_generated_request_id(logged: TestClient) -> None:
    first = logged.get("/companies", headers=auth())
    second = logged.get("/nowhere")

    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(len(i) == 32 for i in ids)
    assert ids[0] != ids[1]


def test_a_well_formed_incoming_request_id_is_kept_and_a_malformed_one_replaced(logged: TestClient) -> None:
    kept = logged.get("/companies", headers={**auth(), "X-Request-ID": "lb-7f3a.2:req_9"})
    replaced = logged.get("/companies", headers={**auth(), "X-Request-ID": "bad id\twith <html>"})

    assert kept.headers["x-request-id"] == "lb-7f3a.2:req_9"
    assert replaced.headers["x-request-id"] not in ("bad id\twith <html>", "")
    assert len(replaced.headers["x-request-id"]) == 32


def test_one_access_log_line_per_request_with_route_template_and_caller(
    logged: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    raw = token()

    with caplog.at_level(logging.INFO, logger="djfapi.access"):
        logged.get(f"/companies/{company.pk}?x=1", headers={"Authorization": f"Bearer {raw}", "X-Request-ID": "r1"})
        logged.get("/companies")

    records = [r for r in caplog.records if r.name == "djfapi.access"]
    assert len(records) == 2
    fields = records[0].djfapi  # type: ignore[attr-defined]
    assert fields["route"] == "/companies/{company_id}"
    assert (fields["method"], fields["status"], fields["request_id"]) == ("GET", 200, "r1")
    assert (fields["tenant_id"], fields["user_id"], fields["scope"]) == (TENANT, USER, "business.companies.read.any")
    assert fields["duration_ms"] >= 0
    assert records[1].djfapi["status"] == 401  # type: ignore[attr-defined]
    assert records[1].djfapi["user_id"] is None  # type: ignore[attr-defined]
    text = " ".join(r.getMessage() + json.dumps(r.djfapi) for r in records)  # type: ignore[attr-defined]
    assert raw not in text and str(company.pk) not in text and "x=1" not in text


def test_the_json_formatter_writes_one_object_with_the_fields(
    logged: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="djfapi.access"):
        logged.get("/companies", headers={**auth(), "X-Request-ID": "r2"})

    line = JSONFormatter().format(next(r for r in caplog.records if r.name == "djfapi.access"))
    entry = json.loads(line)
    assert entry["logger"] == "djfapi.access"
    assert entry["request_id"] == "r2"
    assert entry["route"] == "/companies"
    assert entry["status"] == 200
    assert entry["level"] == "INFO"


def test_the_demo_turns_not_ready_when_its_database_is_unreachable(tmp_path: Any) -> None:
    """The testproject under uvicorn, pointed at a port nothing listens on: alive, not ready."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nowhere?connect_timeout=1",
        "PYTHONPATH": root,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "testproject.asgi:app", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def get(path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                live = get("/health")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        ready = get("/health/ready")
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert live == (200, {"status": "ok"})
    assert ready[0] == 503
    assert ready[1]["detail"]["type"] == "service_unavailable"
    assert ready[1]["detail"]["detail"] == {"databases": {"default": "OperationalError"}}

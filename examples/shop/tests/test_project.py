"""The Django side of the project: system checks, migrations, the admin next to the API."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from django.core.checks import run_checks
from django.core.management import call_command
from fastapi.testclient import TestClient

from djfapi import checks
from djfapi.routing.django import DjangoRouterSchema


def test_manage_py_check_has_no_djfapi_warnings() -> None:
    from catalog.api import router

    call_command("check", stdout=io.StringIO(), stderr=io.StringIO())  # raises on any error
    # Other tests build trees of their own (without the indexes); only the shop's are its own.
    shop = set(router.walk())
    messages = [m for m in run_checks() if m.id and m.id.startswith("djfapi.")]

    assert [m for m in messages if m.obj in shop or not isinstance(m.obj, DjangoRouterSchema)] == []
    assert checks.run() == []


def test_the_migrations_match_the_models(db: None) -> None:
    call_command("makemigrations", "catalog", "--check", "--dry-run", stdout=io.StringIO())


def test_the_admin_is_served_next_to_the_api(client: TestClient) -> None:
    login = client.get("/admin/", follow_redirects=False)
    assert login.status_code == 302
    assert login.headers["location"] == "/admin/login/?next=/admin/"
    assert client.get("/admin/login/").status_code == 200
    assert client.get("/static/admin/css/base.css").status_code == 200


def test_health_and_offline_docs(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/health/ready").status_code == 200
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/shops/{shop_id}/products/{product_id}/reviews/{review_id}" in paths
    assert "/shops/{shop_id}/products/subscribe" in paths


def test_the_served_process_runs_the_collector_threshold_of_its_settings() -> None:
    shown = subprocess.run(
        [sys.executable, "-c", "import gc, shopsite.asgi; print(gc.get_threshold()[0])"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "10000"

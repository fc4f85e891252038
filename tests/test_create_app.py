"""``djfapi.create_app``: one call from a Django project to a ready app — Django set up when
needed, error bodies, health, request ids, offline docs, the admin under ``/admin``, djfapi's
system checks — and the mistakes it refuses with the fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

import djfapi
from testproject.api import companies
from tests.factories import make_company
from tests.helpers import auth

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ready_app() -> FastAPI:
    return djfapi.create_app("testproject.api:router", admin=True, title="Ready")


@pytest.fixture
def ready(ready_app: FastAPI, shared_connection: None) -> Iterator[TestClient]:
    with TestClient(ready_app) as client:
        yield client


def test_the_app_serves_the_tree_with_health_request_ids_and_error_bodies(ready: TestClient) -> None:
    company = make_company()

    listed = ready.get("/companies", headers={**auth(), "X-Request-ID": "abc-123"})
    live = ready.get("/health")
    ready_probe = ready.get("/health/ready")
    nowhere = ready.get("/nowhere")

    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [str(company.pk)]
    assert listed.headers["x-request-id"] == "abc-123"
    assert (live.status_code, ready_probe.status_code) == (200, 200)
    assert nowhere.status_code == 404
    assert nowhere.json()["detail"]["type"] == "not_found"  # router-level errors too: the handlers are installed


def test_the_docs_are_served_from_local_files(ready: TestClient) -> None:
    page = ready.get("/docs")
    redoc = ready.get("/redoc")
    schema = ready.get("/openapi.json").json()

    assert page.status_code == redoc.status_code == 200
    assert "https://" not in page.text and "https://" not in redoc.text
    assert schema["info"]["title"] == "Ready"
    assert "/companies/{company_id}" in schema["paths"]
    assert not any(path.startswith(("/docs", "/health", "/admin")) for path in schema["paths"])


def test_the_admin_is_mounted_with_the_projects_own_url_conf_and_its_static_files(ready: TestClient) -> None:
    index = ready.get("/admin/", follow_redirects=False)
    login = ready.get("/admin/login/")
    css = ready.get("/static/admin/css/base.css")

    assert index.status_code == 302
    assert index.headers["location"] == "/admin/login/?next=/admin/"
    assert login.status_code == 200
    assert 'action="/admin/login/' in login.text
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


def test_routers_may_be_given_as_objects() -> None:
    extra = APIRouter()

    @extra.get("/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    app = djfapi.create_app(companies, extra, docs=False, health=False, request_ids=False)

    with TestClient(app) as client:
        assert client.get("/ping").json() == {"pong": True}
        assert client.get("/docs").status_code == client.get("/health").status_code == 404
    assert {"/companies", "/ping"} <= set(app.openapi()["paths"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("testproject.api", "name a router as 'module:attribute', got 'testproject.api'"),
        ("testproject.api:nothing", "module 'testproject.api' has no attribute 'nothing'"),
        ("testproject.api:OWNER", "is neither a DjangoRouterSchema, a FastAPI APIRouter nor a 'module:attribute'"),
    ],
)
def test_a_router_that_is_not_one_is_refused(source: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="create_app") as refused:
        djfapi.create_app(source)

    assert message in str(refused.value)


def test_an_admin_prefix_the_url_conf_does_not_route_is_refused_with_the_fix() -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        djfapi.create_app(companies, admin="/backoffice")

    assert str(refused.value) == (
        "create_app(admin='/backoffice'): the project's URL conf must route the admin under /backoffice/ "
        "(it reverses to '/admin/'); add path('backoffice/', admin.site.urls) to urls.py"
    )


# -- in a fresh process: Django set up by create_app, checks at start-up --------------------------------------------


def run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    environment.update(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", **env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_create_app_sets_django_up_before_importing_the_tree(tmp_path: Path) -> None:
    done = run_python(
        """
        import djfapi
        app = djfapi.create_app("testproject.api:router", settings="testproject.settings")
        print(sorted(path for path in app.openapi()["paths"] if path.startswith("/companies"))[:2])
        """,
        tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['/companies', '/companies/aggregate/{function}/{field}']"
    assert "djfapi.W001" not in done.stderr  # the demo's SQLite is IMMEDIATE


def test_without_settings_create_app_says_how_to_give_them(tmp_path: Path) -> None:
    failed = run_python("import djfapi; djfapi.create_app('testproject.api:router')", tmp_path)

    assert failed.returncode == 1
    assert (
        "create_app: Django is not configured. Pass settings='myproject.settings' or set the "
        "DJANGO_SETTINGS_MODULE environment variable." in failed.stderr
    )


def test_djfapi_system_checks_warn_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "deferred_settings.py").write_text(
        "from testproject.settings import *\n"
        "DATABASES['default']['OPTIONS'] = {}\n"  # a project that never set the transaction mode
    )

    started = run_python(
        "import djfapi; djfapi.create_app('testproject.api:router', settings='deferred_settings')", tmp_path
    )

    assert started.returncode == 0, started.stderr
    assert "djfapi.W001: SQLite database 'default' begins transactions in DEFERRED mode" in started.stderr

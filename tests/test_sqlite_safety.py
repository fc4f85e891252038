"""SQLite safe by default (SPEC §10): the system check djfapi.W001 flags DEFERRED
transactions with the fix, and — even in that mode — concurrent writers of one process take
turns: 16 of them all succeed (no 503 "database is locked"), and two racing PATCHes with one
``If-Match`` end 200 + 412. The counter-proof shows the 503s that come back without the turn-taking.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.checks import sqlite_transaction_warnings
from djfapi.orm import transactions
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.hooks import WriteEvent
from testproject.business.models import Company, CompanyDepartment

ROOT = Path(__file__).resolve().parent.parent
on_sqlite = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="SQLite's locking: runs on the SQLite half"
)


# -- the system check -------------------------------------------------------------------------------------------------


def test_the_check_flags_deferred_sqlite_with_the_fix_and_passes_immediate_and_other_databases() -> None:
    sqlite = "django.db.backends.sqlite3"
    databases = {
        "default": {"ENGINE": sqlite, "NAME": "a.sqlite3"},
        "deferred": {"ENGINE": sqlite, "OPTIONS": {"transaction_mode": "DEFERRED"}},
        "immediate": {"ENGINE": sqlite, "OPTIONS": {"transaction_mode": "immediate", "timeout": 20}},
        "postgres": {"ENGINE": "django.db.backends.postgresql"},
    }

    messages = sqlite_transaction_warnings(databases)

    assert [(m.id, m.msg.split(" begins")[0]) for m in messages] == [
        ("djfapi.W001", "SQLite database 'default'"),
        ("djfapi.W001", "SQLite database 'deferred'"),
    ]
    assert messages[0].hint == (
        "Set DATABASES['default']['OPTIONS'] = {'transaction_mode': 'IMMEDIATE', 'timeout': 20} (Django >= 5.1); "
        "'timeout' is how many seconds a writer waits for the lock."
    )


def run_manage_check(tmp_path: Path, options: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "plain_settings.py").write_text(
        textwrap.dedent(
            f"""
            SECRET_KEY = "x"
            INSTALLED_APPS = ["djfapi"]
            DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"{options}}}}}
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "DJANGO_SETTINGS_MODULE": "plain_settings"}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "django", "check"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def test_manage_py_check_shows_the_warning_in_a_project_that_installs_djfapi(tmp_path: Path) -> None:
    flagged = run_manage_check(tmp_path, "")
    clean = run_manage_check(tmp_path, ', "OPTIONS": {"transaction_mode": "IMMEDIATE"}')

    assert flagged.returncode == 0
    assert "djfapi.W001" in flagged.stderr
    assert "'transaction_mode': 'IMMEDIATE'" in flagged.stderr
    assert clean.returncode == 0
    assert "djfapi.W001" not in clean.stderr + clean.stdout
    assert "no issues" in clean.stdout


# -- concurrent writers on a DEFERRED SQLite --------------------------------------------------------------------------


@pytest.fixture
def deferred_sqlite(transactional_db: None) -> Iterator[None]:
    """The database as a project that never set ``transaction_mode`` has it: DEFERRED."""
    settings_dict = connections["default"].settings_dict
    saved = settings_dict.get("OPTIONS", {})
    settings_dict["OPTIONS"] = {key: value for key, value in saved.items() if key != "transaction_mode"}
    connections.close_all()
    try:
        yield
    finally:
        settings_dict["OPTIONS"] = saved
        connections.close_all()


class DepartmentOut(BaseModel):
    id: Any
    name: str


class DepartmentWrite(BaseModel):
    name: str


def departments_app(linger: float) -> FastAPI:
    """Departments of a company, each create reading its parent and then lingering before it writes."""

    class CompanyOut(BaseModel):
        id: Any
        name: str

    class CompanyWrite(BaseModel):
        name: str

    tree = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        update=CompanyWrite,
        children=[
            DjangoRouterSchema(name="departments", model=CompanyDepartment, get=DepartmentOut, create=DepartmentWrite)
        ],
    )

    def slowly(event: WriteEvent) -> None:
        time.sleep(linger)  # inside the transaction, after the parent was read

    tree.children[0].hook("before_create")(slowly)
    tree.hook("before_update")(slowly)
    app = FastAPI()
    app.include_router(tree.router)
    return app


Request = tuple[str, str, dict[str, Any], dict[str, str]]  # method, path, body, headers


def write_concurrently(client: TestClient, requests: list[Request]) -> list[int]:
    start = threading.Barrier(len(requests))
    statuses: list[int] = [0] * len(requests)

    def send(index: int) -> None:
        method, path, body, headers = requests[index]
        start.wait()
        statuses[index] = client.request(method, path, json=body, headers=headers).status_code

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


@on_sqlite
def test_sixteen_concurrent_writers_all_succeed_on_a_deferred_sqlite(deferred_sqlite: None) -> None:
    company = Company.objects.create(tenant_id="t", name="Acme")
    path = f"/companies/{company.pk}/departments"

    with TestClient(departments_app(linger=0.02)) as client:
        statuses = write_concurrently(client, [("POST", path, {"name": f"d{i}"}, {}) for i in range(16)])

    assert statuses == [201] * 16
    assert CompanyDepartment.objects.count() == 16


class NoTurns(contextlib.AbstractContextManager[None]):
    def __exit__(self, *exc: object) -> None:
        return None


@on_sqlite
def test_without_turn_taking_the_same_writers_meet_database_is_locked(
    deferred_sqlite: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counter-proof: with the per-process turn disabled, DEFERRED writers fail as 503s."""
    monkeypatch.setattr(transactions, "_sqlite_lock", lambda alias: NoTurns())
    company = Company.objects.create(tenant_id="t", name="Acme")
    path = f"/companies/{company.pk}/departments"

    with TestClient(departments_app(linger=0.05), raise_server_exceptions=False) as client:
        statuses = write_concurrently(client, [("POST", path, {"name": f"d{i}"}, {}) for i in range(8)])

    assert 503 in statuses
    assert CompanyDepartment.objects.count() == statuses.count(201)


@on_sqlite
@pytest.mark.parametrize(("turns", "expected"), [(True, [200, 412]), (False, [200, 503])])
def test_two_racing_patches_with_one_if_match_end_200_and_412_on_a_deferred_sqlite(
    deferred_sqlite: None, monkeypatch: pytest.MonkeyPatch, turns: bool, expected: list[int]
) -> None:
    """With turns the loser sees the winner's change (412); without (the counter-proof) it is locked out (503)."""
    if not turns:
        monkeypatch.setattr(transactions, "_sqlite_lock", lambda alias: NoTurns())
    company = Company.objects.create(tenant_id="t", name="Original")
    path = f"/companies/{company.pk}"

    with TestClient(departments_app(linger=0.2), raise_server_exceptions=False) as client:
        tag = client.get(path).headers["etag"]
        statuses = write_concurrently(
            client,
            [("PATCH", path, {"name": name}, {"If-Match": tag}) for name in ("first", "second")],
        )

    assert sorted(statuses) == expected

"""Every security guard, switched off, lets its attack through: the tests that prove a
guard can fail (SECURITY.md lists each guard with its test and this counter-proof).

Each case sends the same attack twice against the demo: once as shipped — refused — and
once with the guard replaced by a no-op — accepted. A guard whose removal changes nothing
would show up here as a case that cannot fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db.models import Q
from fastapi.testclient import TestClient

from djfapi.orm import writing
from djfapi.routing import endpoints, queries
from djfapi.schemas.access import Access, AccessScope
from djfapi.security import jwt as jwt_module
from testproject import api
from testproject.business.models import Company, CompanyDepartment, Employee
from tests.factories import make_company, make_department
from tests.helpers import OTHER_TENANT, USER, auth

OWN = ["business.companies.read.own", "business.companies.update.own"]


@dataclass(frozen=True)
class Guard:
    name: str
    disable: Callable[[pytest.MonkeyPatch], None]
    attack: Callable[[TestClient], Any]
    refused: int
    accepted: int


def _any_scope(token: Any, granted: Any, required: Any) -> Access:
    scope = AccessScope.from_str(required[0]) if required else None
    return Access(token=token, scope=scope, granted_scopes=frozenset(granted) | frozenset(required or ()))


def read_other_tenants_company(client: TestClient) -> Any:
    foreign = make_company(tenant=OTHER_TENANT, name="Theirs")
    return client.get(f"/companies/{foreign.pk}", headers=auth())


def create_under_other_tenants_company(client: TestClient) -> Any:
    foreign = make_company(tenant=OTHER_TENANT, name="Theirs")
    return client.post(f"/companies/{foreign.pk}/departments", json={"name": "Mine now"}, headers=auth())


def create_without_the_create_scope(client: TestClient) -> Any:
    return client.post("/companies", json={"name": "X"}, headers=auth(scopes=["business.companies.read.any"]))


def own_caller_reads_salary(client: TestClient) -> Any:
    company = make_company()
    Employee.objects.create(company=company, user_id=USER, type="OWNER", salary="10.00", hired_at="2020-01-01")
    response = client.get(f"/companies/{company.pk}/employees", headers=auth(scopes=OWN))
    # 200 either way: the guard decides whether the body carries the salary.
    return type("Seen", (), {"status_code": 200 if "salary" in response.json()["items"][0] else 403})


def own_caller_writes_salary(client: TestClient) -> Any:
    company = make_company()
    owner = Employee.objects.create(company=company, user_id=USER, type="OWNER", hired_at="2020-01-01")
    path = f"/companies/{company.pk}/employees/{owner.pk}"
    return client.patch(path, json={"salary": "99999.00"}, headers=auth(scopes=OWN))


def employee_into_another_companys_department(client: TestClient) -> Any:
    mine, sibling = make_company(name="B0"), make_company(name="B1")
    department = make_department(sibling)
    return client.post(
        f"/companies/{mine.pk}/employees",
        json={"user_id": "x", "hired_at": "2024-01-01", "department_id": str(department.pk)},
        headers=auth(),
    )


def choose_a_nested_id(client: TestClient) -> Any:
    company = make_company()
    teams = [{"id": str(uuid.uuid4()), "name": "t"}]
    return client.post(f"/companies/{company.pk}/departments", json={"name": "d", "teams": teams}, headers=auth())


def filter_on_a_hidden_field(client: TestClient) -> Any:
    company = make_company()
    Employee.objects.create(company=company, user_id=USER, type="OWNER", salary="5000.00", hired_at="2020-01-01")
    return client.get(f"/companies/{company.pk}/employees?salary__gte=1000", headers=auth(scopes=OWN))


GUARDS = [
    Guard(
        "row filter (tenant, own)",
        lambda mp: mp.setattr(api.companies, "_objects_filter", lambda access: Q()),
        read_other_tenants_company,
        404,
        200,
    ),
    Guard(
        "ancestor chain on create",
        lambda mp: mp.setattr(queries, "require_parent", lambda *args: None),
        create_under_other_tenants_company,
        404,
        201,
    ),
    Guard(
        "route scopes",
        lambda mp: mp.setattr(jwt_module, "grant", _any_scope),
        create_without_the_create_scope,
        403,
        201,
    ),
    Guard(
        "field read scopes",
        lambda mp: mp.setattr("djfapi.routing.responses.hidden_fields", lambda schema, access: None),
        own_caller_reads_salary,
        403,
        200,
    ),
    Guard(
        "field write scopes",
        lambda mp: mp.setattr(writing, "check_writable", lambda *args: None),
        own_caller_writes_salary,
        403,
        200,
    ),
    Guard(
        "filters on hidden fields",
        lambda mp: mp.setattr(endpoints, "require_readable", lambda *args, **kwargs: None),
        filter_on_a_hidden_field,
        403,
        200,
    ),
    Guard(
        "references inside the parents",
        lambda mp: mp.setattr(endpoints.RequestContext, "_reference_exists", lambda self, field, value: True),
        employee_into_another_companys_department,
        409,
        201,
    ),
    Guard(
        "server-chosen keys",
        lambda mp: mp.setattr(writing, "_refuse_server_key", lambda *args: None),
        choose_a_nested_id,
        422,
        201,
    ),
]


@pytest.mark.parametrize("guard", GUARDS, ids=[guard.name for guard in GUARDS])
def test_the_attack_is_refused_and_succeeds_once_the_guard_is_off(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, guard: Guard
) -> None:
    refused = guard.attack(client)
    assert refused.status_code == guard.refused, f"{guard.name}: the shipped guard let the attack through"

    guard.disable(monkeypatch)
    accepted = guard.attack(client)

    assert accepted.status_code == guard.accepted, f"{guard.name}: the attack still fails without the guard"


def test_the_disabled_guards_really_let_data_through(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the status: with the chain guard off, a department lands in another tenant's company."""
    monkeypatch.setattr(queries, "require_parent", lambda *args: None)

    create_under_other_tenants_company(client)

    assert CompanyDepartment.objects.filter(company__tenant_id=OTHER_TENANT, name="Mine now").exists()
    assert Company.objects.filter(tenant_id=OTHER_TENANT).count() == 1

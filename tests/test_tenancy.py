"""Tenant isolation and field-level security through the demo API (SPEC §3, §4, §6).

Another tenant's rows are 404 at every level of the tree, for reads and writes alike,
and a write that is refused leaves every table exactly as it was. The tenant and the
parent of a new row come from the token and the URL, never from the body. Field
options hide the employee's salary from callers without ``read.any``, refuse writes
to it without ``update.any``, and keep ``is_verified`` for critical tokens.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from django.conf import settings
from fastapi.testclient import TestClient

from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)
from testproject.tokens import mint_token
from tests.factories import make_company, make_costcenter, make_department, make_employee, make_team
from tests.helpers import OTHER_TENANT, TENANT, auth, token

READ_ANY = "business.companies.read.any"
READ_OWN = "business.companies.read.own"
UPDATE_ANY = "business.companies.update.any"
UPDATE_OWN = "business.companies.update.own"
MODELS = (Company, CompanyDepartment, CompanyDepartmentTeam, CompanyCostcenter, Employee)


def database_state() -> dict[str, list[dict[str, Any]]]:
    """Every row of the demo's tables, to show a refused request changed nothing."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def assert_not_found(response: Any, code: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == {
        "detail": {"type": "not_found", "code": code, "message": response.json()["detail"]["message"], "detail": None}
    }


def populate(company: Company) -> dict[str, Any]:
    """A department with a team, a cost centre and an employee under ``company``: their ids."""
    department = make_department(company)
    return {
        "company": company.pk,
        "department": department.pk,
        "team": make_team(department).pk,
        "costcenter": make_costcenter(company).pk,
        "employee": make_employee(company, department=department).pk,
    }


# -- another tenant's tree: 404 everywhere ---------------------------------------------

COMPANY = "/companies/{company}"
DEPARTMENTS = COMPANY + "/departments"
DEPARTMENT = DEPARTMENTS + "/{department}"
TEAMS = DEPARTMENT + "/teams"
TEAM = TEAMS + "/{team}"
COSTCENTERS = COMPANY + "/costcenters"
COSTCENTER = COSTCENTERS + "/{costcenter}"
EMPLOYEES = COMPANY + "/employees"
EMPLOYEE = EMPLOYEES + "/{employee}"

#: name -> (method, path, body, status for the owning tenant)
TREE_REQUESTS: dict[str, tuple[str, str, dict[str, Any] | None, int]] = {
    "get company": ("GET", COMPANY, None, 200),
    "patch company": ("PATCH", COMPANY, {"name": "Hijacked"}, 200),
    "put company": ("PUT", COMPANY, {"name": "Hijacked", "status": "inactive"}, 200),
    "delete company": ("DELETE", COMPANY, None, 204),
    "list departments": ("GET", DEPARTMENTS, None, 200),
    "create department": ("POST", DEPARTMENTS, {"name": "Injected"}, 201),
    "get department": ("GET", DEPARTMENT, None, 200),
    "patch department": ("PATCH", DEPARTMENT, {"name": "Hijacked"}, 200),
    "put department": ("PUT", DEPARTMENT, {"name": "Hijacked", "budget": "1.00"}, 200),
    "delete department": ("DELETE", DEPARTMENT, None, 204),
    "list teams": ("GET", TEAMS, None, 200),
    "create team": ("POST", TEAMS, {"name": "Injected"}, 201),
    "get team": ("GET", TEAM, None, 200),
    "patch team": ("PATCH", TEAM, {"size": 99}, 200),
    "put team": ("PUT", TEAM, {"name": "Hijacked", "size": 99}, 200),
    "delete team": ("DELETE", TEAM, None, 204),
    "list costcenters": ("GET", COSTCENTERS, None, 200),
    "create costcenter": ("POST", COSTCENTERS, {"code": "X-1", "name": "Injected"}, 201),
    "get costcenter": ("GET", COSTCENTER, None, 200),
    "patch costcenter": ("PATCH", COSTCENTER, {"name": "Hijacked"}, 200),
    "put costcenter": ("PUT", COSTCENTER, {"code": "X-9", "name": "Hijacked"}, 200),
    "delete costcenter": ("DELETE", COSTCENTER, None, 204),
    "list employees": ("GET", EMPLOYEES, None, 200),
    "create employee": ("POST", EMPLOYEES, {"user_id": "intruder", "hired_at": "2021-03-01"}, 201),
    "get employee": ("GET", EMPLOYEE, None, 200),
    "patch employee": ("PATCH", EMPLOYEE, {"type": "OWNER"}, 200),
    "put employee": ("PUT", EMPLOYEE, {"type": "OWNER", "hired_at": "2021-03-01"}, 200),
    "delete employee": ("DELETE", EMPLOYEE, None, 204),
}


def send(client: TestClient, request: str, ids: dict[str, Any], tenant: str) -> Any:
    method, template, body, _ = TREE_REQUESTS[request]
    return client.request(method, template.format(**ids), json=body, headers=auth(tenant=tenant))


@pytest.mark.parametrize("request_name", TREE_REQUESTS)
def test_other_tenant_gets_404_and_changes_nothing(client: TestClient, request_name: str) -> None:
    ids = populate(make_company())
    before = database_state()

    response = send(client, request_name, ids, OTHER_TENANT)

    assert_not_found(response, "not_exist:company")
    assert database_state() == before


@pytest.mark.parametrize("request_name", TREE_REQUESTS)
def test_owning_tenant_succeeds(client: TestClient, request_name: str) -> None:
    """The control for the 404s above: the very same requests work for tenant A."""
    ids = populate(make_company())

    response = send(client, request_name, ids, TENANT)

    assert response.status_code == TREE_REQUESTS[request_name][3], response.text


@pytest.mark.parametrize("request_name", [name for name, (method, *_) in TREE_REQUESTS.items() if method == "POST"])
def test_post_under_another_tenants_parent_creates_nothing(client: TestClient, request_name: str) -> None:
    ids = populate(make_company())
    before = row_counts()

    assert send(client, request_name, ids, OTHER_TENANT).status_code == 404

    assert row_counts() == before


def test_company_list_shows_only_the_callers_tenant(client: TestClient) -> None:
    make_company(name="Alpha")
    make_company(tenant=OTHER_TENANT, name="Beta")

    def names(tenant: str) -> list[str]:
        return [item["name"] for item in client.get("/companies", headers=auth(tenant=tenant)).json()["items"]]

    assert names(TENANT) == ["Alpha"]
    assert names(OTHER_TENANT) == ["Beta"]


def test_child_id_of_one_tenant_under_another_tenants_company_is_404(client: TestClient) -> None:
    theirs = populate(make_company())
    mine = populate(make_company(tenant=OTHER_TENANT))
    mixed = {**mine, "department": theirs["department"]}
    before = database_state()

    assert_not_found(
        client.get(DEPARTMENT.format(**mixed), headers=auth(tenant=OTHER_TENANT)), "not_exist:companydepartment"
    )
    assert_not_found(
        client.patch(DEPARTMENT.format(**mixed), json={"name": "Hijacked"}, headers=auth(tenant=OTHER_TENANT)),
        "not_exist:companydepartment",
    )
    assert database_state() == before
    assert client.get(DEPARTMENT.format(**mine), headers=auth(tenant=OTHER_TENANT)).status_code == 200


def test_team_id_under_another_tenants_department_is_404(client: TestClient) -> None:
    theirs = populate(make_company())
    mine = populate(make_company(tenant=OTHER_TENANT))
    mixed = {**mine, "team": theirs["team"]}

    response = client.delete(TEAM.format(**mixed), headers=auth(tenant=OTHER_TENANT))

    assert_not_found(response, "not_exist:companydepartmentteam")
    assert CompanyDepartmentTeam.objects.filter(pk=theirs["team"]).exists()


def test_token_without_a_tenant_sees_no_tenants_rows(client: TestClient) -> None:
    make_company(name="Alpha")
    make_company(tenant=OTHER_TENANT, name="Beta")
    claims = jwt.decode(token(), options={"verify_signature": False})
    del claims["ten"]
    untenanted = jwt.encode(claims, settings.DJFAPI["JWT_KEY"], algorithm="HS256")

    response = client.get("/companies", headers={"Authorization": f"Bearer {untenanted}"})

    assert response.status_code == 200
    assert response.json()["items"] == []


def test_field_refusals_do_not_reveal_another_tenants_rows(client: TestClient) -> None:
    """The row filter runs before the field checks: a foreign row is 404, not the 403
    its owner's tenant would get for the same body (see the field tests below)."""
    ids = populate(make_company(is_verified=True))
    before = database_state()
    own_scopes_only = auth(tenant=OTHER_TENANT, scopes=[UPDATE_OWN])
    not_critical = auth(tenant=OTHER_TENANT)

    salary = client.patch(EMPLOYEE.format(**ids), json={"salary": "1.00"}, headers=own_scopes_only)
    verified = client.patch(COMPANY.format(**ids), json={"is_verified": False}, headers=not_critical)

    assert_not_found(salary, "not_exist:company")
    assert_not_found(verified, "not_exist:company")
    assert database_state() == before


def test_nested_list_cannot_adopt_another_tenants_rows_on_put(client: TestClient) -> None:
    """Cost centre ids are small integers, easy to guess: syncing must not take one over."""
    company = make_company()
    foreign = make_costcenter(make_company(tenant=OTHER_TENANT), code="F-1", name="Foreign")
    before = database_state()

    response = client.put(
        f"/companies/{company.pk}",
        json={"name": "Acme", "status": "active", "costcenters": [{"id": foreign.pk, "code": "F-1", "name": "Mine"}]},
        headers=auth(),
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "costcenters", 0, "id"]
    assert database_state() == before


def test_nested_list_updates_its_own_rows_on_put(client: TestClient) -> None:
    """The control for the refusal above: an id of the company's own cost centre updates it."""
    company = make_company()
    own = make_costcenter(company, code="O-1", name="Own")

    response = client.put(
        f"/companies/{company.pk}",
        json={"name": "Acme", "status": "active", "costcenters": [{"id": own.pk, "code": "O-1", "name": "Renamed"}]},
        headers=auth(),
    )

    assert response.status_code == 200, response.text
    own.refresh_from_db()
    assert (own.company_id, own.name) == (company.pk, "Renamed")


def test_nested_team_of_another_tenant_cannot_be_synced_into_a_department(client: TestClient) -> None:
    department = make_department(make_company())
    foreign = make_team(make_department(make_company(tenant=OTHER_TENANT)), name="Foreign")
    before = database_state()

    response = client.put(
        f"/companies/{department.company_id}/departments/{department.pk}",
        json={"name": "Research", "budget": "5.00", "teams": [{"id": str(foreign.pk), "name": "Mine"}]},
        headers=auth(),
    )

    assert response.status_code == 422, response.text
    assert database_state() == before


def test_nested_ids_on_create_never_take_over_a_row(client: TestClient) -> None:
    """On create every nested item is new: an id in the body is a 422, the same for any id."""
    foreign = make_costcenter(make_company(tenant=OTHER_TENANT), code="F-1", name="Foreign")

    answers = [
        client.post(
            "/companies",
            json={"name": "New", "costcenters": [{"id": some_id, "code": "F-1", "name": "Mine"}]},
            headers=auth(),
        )
        for some_id in (foreign.pk, foreign.pk + 1000)
    ]

    assert [a.status_code for a in answers] == [422, 422]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["detail"][0]["loc"] == ["body", "costcenters", 0, "id"]
    assert not Company.objects.filter(tenant_id=TENANT).exists()
    foreign.refresh_from_db()
    assert (foreign.company.tenant_id, foreign.name) == (OTHER_TENANT, "Foreign")


# -- the token decides the tenant, the URL the parent ----------------------------------


def test_created_company_belongs_to_the_tokens_tenant(client: TestClient) -> None:
    response = client.post("/companies", json={"name": "New"}, headers=auth())

    assert response.status_code == 201
    assert response.json()["tenant_id"] == TENANT
    assert Company.objects.get().tenant_id == TENANT


def test_body_cannot_choose_the_tenant_on_create(client: TestClient) -> None:
    """The write schema has no ``tenant_id``: sending one is a 422 naming it, and nothing is created."""
    refused = client.post("/companies", json={"name": "New", "tenant_id": OTHER_TENANT}, headers=auth())
    accepted = client.post("/companies", json={"name": "New"}, headers=auth())

    assert refused.status_code == 422
    assert [(e["loc"], e["type"]) for e in refused.json()["detail"]] == [(["body", "tenant_id"], "extra_forbidden")]
    assert accepted.status_code == 201
    assert accepted.json()["tenant_id"] == TENANT
    assert list(Company.objects.values_list("tenant_id", flat=True)) == [TENANT]
    assert client.get("/companies", headers=auth(tenant=OTHER_TENANT)).json()["items"] == []


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_body_cannot_change_the_tenant(client: TestClient, method: str) -> None:
    company = make_company()

    response = client.request(
        method,
        f"/companies/{company.pk}",
        json={"name": "Renamed", "status": "active", "tenant_id": OTHER_TENANT},
        headers=auth(),
    )

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "tenant_id"]]
    company.refresh_from_db()
    assert (company.name, company.tenant_id) == ("Acme", TENANT)


@pytest.mark.parametrize("target_tenant", [TENANT, OTHER_TENANT])
def test_created_child_belongs_to_the_company_in_the_url(client: TestClient, target_tenant: str) -> None:
    company = make_company()
    elsewhere = make_company(tenant=target_tenant, name="Elsewhere")

    refused = client.post(
        f"/companies/{company.pk}/departments", json={"name": "Sales", "company_id": str(elsewhere.pk)}, headers=auth()
    )
    accepted = client.post(f"/companies/{company.pk}/departments", json={"name": "Sales"}, headers=auth())

    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["body", "company_id"]]
    assert accepted.status_code == 201
    assert accepted.json()["company_id"] == str(company.pk)
    assert CompanyDepartment.objects.get().company_id == company.pk


def test_body_cannot_move_a_child_to_another_company(client: TestClient) -> None:
    department = make_department(make_company())
    elsewhere = make_company(name="Elsewhere")
    path = f"/companies/{department.company_id}/departments/{department.pk}"

    response = client.patch(path, json={"name": "Moved?", "company_id": str(elsewhere.pk)}, headers=auth())

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "company_id"]]
    stored = CompanyDepartment.objects.get(pk=department.pk)
    assert (stored.name, stored.company_id) == (department.name, department.company_id)


# -- references into another tenant -----------------------------------------------------


def employee_body(**fields: Any) -> dict[str, Any]:
    return {"user_id": "new-hire", "hired_at": "2022-05-01", **fields}


def test_employee_cannot_reference_another_tenants_department(client: TestClient) -> None:
    company = make_company()
    foreign = make_department(make_company(tenant=OTHER_TENANT))
    before = database_state()

    response = client.post(
        f"/companies/{company.pk}/employees", json=employee_body(department_id=str(foreign.pk)), headers=auth()
    )

    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert (detail["type"], detail["code"]) == ("conflict", "integrity:business_employee_department_id_fk")
    assert database_state() == before


def test_employee_can_reference_its_own_tenants_department(client: TestClient) -> None:
    company = make_company()
    department = make_department(company)

    response = client.post(
        f"/companies/{company.pk}/employees", json=employee_body(department_id=str(department.pk)), headers=auth()
    )

    assert response.status_code == 201, response.text
    assert Employee.objects.get().department_id == department.pk


def test_employee_patch_cannot_point_into_another_tenant(client: TestClient) -> None:
    company = make_company()
    own_department = make_department(company)
    employee = make_employee(company, department=own_department)
    foreign = make_department(make_company(tenant=OTHER_TENANT))
    path = f"/companies/{company.pk}/employees/{employee.pk}"

    refused = client.patch(path, json={"department_id": str(foreign.pk)}, headers=auth())

    assert refused.status_code == 409
    assert refused.json()["detail"]["code"] == "integrity:business_employee_department_id_fk"
    employee.refresh_from_db()
    assert employee.department_id == own_department.pk

    other_department = make_department(company, name="Other")
    assert client.patch(path, json={"department_id": str(other_department.pk)}, headers=auth()).status_code == 200
    employee.refresh_from_db()
    assert employee.department_id == other_department.pk


# -- field scopes: the employee's salary -----------------------------------------------


@pytest.fixture
def owned_company() -> Company:
    """A company the caller owns (so ``own`` scopes reach it), with a salaried colleague."""
    company = make_company()
    make_employee(company, role=Employee.Type.OWNER, salary="90000.00")
    make_employee(company, user_id="colleague", salary="50000.00")
    return company


def colleague(company: Company) -> Employee:
    return company.employees.get(user_id="colleague")


def test_salary_is_absent_without_read_any(client: TestClient, owned_company: Company) -> None:
    headers = auth(scopes=[READ_OWN])
    employees = f"/companies/{owned_company.pk}/employees"

    item = client.get(f"{employees}/{colleague(owned_company).pk}", headers=headers)
    listed = client.get(employees, headers=headers)

    assert item.status_code == listed.status_code == 200
    assert "salary" not in item.json()
    assert item.json()["user_id"] == "colleague"
    assert len(listed.json()["items"]) == 2
    assert all("salary" not in employee for employee in listed.json()["items"])


def test_salary_is_present_with_read_any(client: TestClient, owned_company: Company) -> None:
    headers = auth(scopes=[READ_ANY])
    employees = f"/companies/{owned_company.pk}/employees"

    item = client.get(f"{employees}/{colleague(owned_company).pk}", headers=headers)
    listed = client.get(employees, headers=headers)

    assert item.json()["salary"] == "50000.00"
    assert sorted(employee["salary"] for employee in listed.json()["items"]) == ["50000.00", "90000.00"]


def test_salary_write_without_update_any_is_403(client: TestClient, owned_company: Company) -> None:
    employee = colleague(owned_company)
    path = f"/companies/{owned_company.pk}/employees/{employee.pk}"

    response = client.patch(path, json={"salary": "1.00"}, headers=auth(scopes=[READ_OWN, UPDATE_OWN]))

    assert response.status_code == 403
    assert response.json()["detail"] | {"message": None} == {
        "type": "forbidden",
        "code": "field_scope_missing",
        "message": None,
        "detail": {"field": "salary", "scopes": [UPDATE_ANY]},
    }
    employee.refresh_from_db()
    assert str(employee.salary) == "50000.00"


def test_salary_write_with_update_any_is_200(client: TestClient, owned_company: Company) -> None:
    employee = colleague(owned_company)
    path = f"/companies/{owned_company.pk}/employees/{employee.pk}"

    response = client.patch(path, json={"salary": "1.00"}, headers=auth(scopes=[READ_ANY, UPDATE_ANY]))

    assert response.status_code == 200
    assert response.json()["salary"] == "1.00"
    employee.refresh_from_db()
    assert str(employee.salary) == "1.00"


def test_salary_on_create_without_update_any_is_403(client: TestClient, owned_company: Company) -> None:
    before = row_counts()

    response = client.post(
        f"/companies/{owned_company.pk}/employees",
        json=employee_body(salary="1.00"),
        headers=auth(scopes=[UPDATE_OWN]),
    )

    assert response.status_code == 403
    assert response.json()["detail"]["code"] == "field_scope_missing"
    assert row_counts() == before


def test_create_without_salary_by_an_own_caller_is_201(client: TestClient, owned_company: Company) -> None:
    """The control for the refusal above: the same caller may create, just not pay."""
    response = client.post(
        f"/companies/{owned_company.pk}/employees", json=employee_body(), headers=auth(scopes=[UPDATE_OWN])
    )

    assert response.status_code == 201, response.text
    assert Employee.objects.get(user_id="new-hire").salary is None


def test_put_without_salary_by_an_own_caller_keeps_it(client: TestClient, owned_company: Company) -> None:
    """PUT replaces the fields, but not those the caller may not write."""
    employee = colleague(owned_company)
    path = f"/companies/{owned_company.pk}/employees/{employee.pk}"

    response = client.put(path, json={"type": "ADMIN", "hired_at": "2019-09-09"}, headers=auth(scopes=[UPDATE_OWN]))

    assert response.status_code == 200, response.text
    assert "salary" not in response.json()
    employee.refresh_from_db()
    assert (employee.type, str(employee.hired_at), str(employee.salary)) == ("ADMIN", "2019-09-09", "50000.00")


# -- critical fields: is_verified -------------------------------------------------------


def test_is_verified_needs_a_critical_token(client: TestClient) -> None:
    company = make_company()

    response = client.patch(f"/companies/{company.pk}", json={"is_verified": True}, headers=auth())

    assert response.status_code == 403
    detail = response.json()["detail"]
    assert (detail["type"], detail["code"], detail["detail"]) == (
        "forbidden",
        "critical_token_required",
        {"field": "is_verified"},
    )
    company.refresh_from_db()
    assert company.is_verified is False


def test_is_verified_with_a_critical_token_is_200(client: TestClient) -> None:
    company = make_company()

    response = client.patch(f"/companies/{company.pk}", json={"is_verified": True}, headers=auth(critical=True))

    assert response.status_code == 200
    assert response.json()["is_verified"] is True
    company.refresh_from_db()
    assert company.is_verified is True


def test_create_verified_company_needs_a_critical_token(client: TestClient) -> None:
    body = {"name": "Verified", "is_verified": True}

    assert client.post("/companies", json=body, headers=auth()).status_code == 403
    assert not Company.objects.exists()

    assert client.post("/companies", json=body, headers=auth(critical=True)).status_code == 201
    assert Company.objects.get().is_verified is True


def test_put_without_is_verified_by_a_non_critical_caller_keeps_it(client: TestClient) -> None:
    company = make_company(is_verified=True)

    response = client.put(f"/companies/{company.pk}", json={"name": "Renamed", "status": "active"}, headers=auth())

    assert response.status_code == 200, response.text
    assert response.json()["is_verified"] is True
    company.refresh_from_db()
    assert (company.name, company.is_verified) == ("Renamed", True)


def test_put_sending_is_verified_by_a_non_critical_caller_is_403(client: TestClient) -> None:
    company = make_company(is_verified=True)

    response = client.put(
        f"/companies/{company.pk}", json={"name": "Renamed", "status": "active", "is_verified": False}, headers=auth()
    )

    assert response.status_code == 403
    company.refresh_from_db()
    assert (company.name, company.is_verified) == ("Acme", True)


def test_a_token_without_a_tenant_cannot_create_tenant_rows(client: TestClient) -> None:
    """A tenant-scoped row needs the token's tenant: without ``ten`` the create is 403, not a database error."""
    raw = mint_token(tenant=None, user="user-1", scopes=["business.companies.create"])  # type: ignore[arg-type]
    refused = client.post("/companies", json={"name": "Nowhere"}, headers={"Authorization": f"Bearer {raw}"})
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "tenant_missing"
    assert not Company.objects.filter(name="Nowhere").exists()

    accepted = client.post("/companies", json={"name": "Somewhere"}, headers=auth(scopes=["business.companies.create"]))
    assert accepted.status_code == 201

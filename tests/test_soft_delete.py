"""Soft delete (SPEC §2 ``delete_status``, §5) and ``cache_control``.

DELETE of a demo company sets its status to ``deleted`` and keeps the row; from then on
the company and everything below it is 404 for every method, lists leave it out unless
a positive status filter names ``deleted``, and a negated filter never brings it back.
``cache_control`` puts a ``Cache-Control`` header on the read routes of a tree, and
only on those.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)
from tests.helpers import OTHER_TENANT, TENANT, auth

# -- helpers ------------------------------------------------------------------------------------------------------


def make_tree(company: Company) -> dict[str, Any]:
    """A department with a team, a cost centre and an employee under ``company``: the ids for the URLs."""
    department = CompanyDepartment.objects.create(company=company, name="Research", budget=Decimal("10.00"))
    team = CompanyDepartmentTeam.objects.create(department=department, name="Platform", size=3)
    costcenter = CompanyCostcenter.objects.create(company=company, code="CC-1", name="Operations")
    employee = Employee.objects.create(
        company=company, user_id="emp-1", department=department, hired_at=datetime.date(2020, 1, 1)
    )
    return {
        "company": company.pk,
        "department": department.pk,
        "team": team.pk,
        "costcenter": costcenter.pk,
        "employee": employee.pk,
    }


def company_names(client: TestClient, params: Sequence[tuple[str, str]] = ()) -> list[str]:
    response = client.get("/companies", params=list(params), headers=auth())
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def assert_not_found(response: Any, code: str = "not_exist:company") -> None:
    assert response.status_code == 404, response.text
    assert response.json()["detail"]["code"] == code


@pytest.fixture
def deleted(client: TestClient, db: None) -> dict[str, Any]:
    """A company, with a full tree below it, deleted through the API."""
    ids = make_tree(Company.objects.create(tenant_id=TENANT, name="Gone"))
    response = client.delete(f"/companies/{ids['company']}", headers=auth())
    assert response.status_code == 204
    return ids


@pytest.fixture
def alive(db: None) -> dict[str, Any]:
    """The same tree under a company that is not deleted: the accepted counterpart."""
    return make_tree(Company.objects.create(tenant_id=TENANT, name="Alive"))


# -- DELETE -------------------------------------------------------------------------------------------------------


def test_delete_sets_the_status_and_keeps_the_row(client: TestClient, db: None) -> None:
    ids = make_tree(Company.objects.create(tenant_id=TENANT, name="Gone"))

    response = client.delete(f"/companies/{ids['company']}", headers=auth())

    assert response.status_code == 204
    assert response.content == b""
    company = Company.objects.get(pk=ids["company"])
    assert company.status == Company.Status.DELETED
    assert company.name == "Gone"
    assert company.departments.count() == 1  # nothing below it is removed either
    assert Employee.objects.filter(pk=ids["employee"]).exists()


def test_deleting_a_department_is_a_real_delete(client: TestClient, alive: dict[str, Any]) -> None:
    """Only companies have ``delete_status``; their children are deleted for real."""
    response = client.delete(f"/companies/{alive['company']}/departments/{alive['department']}", headers=auth())

    assert response.status_code == 204
    assert not CompanyDepartment.objects.filter(pk=alive["department"]).exists()


# -- the deleted company and everything below it are 404 ----------------------------------------------------------

COMPANY = "/companies/{company}"
DEPARTMENTS = COMPANY + "/departments"
DEPARTMENT = DEPARTMENTS + "/{department}"
TEAMS = DEPARTMENT + "/teams"
TEAM = TEAMS + "/{team}"
COSTCENTERS = COMPANY + "/costcenters"
COSTCENTER = COSTCENTERS + "/{costcenter}"
EMPLOYEES = COMPANY + "/employees"
EMPLOYEE = EMPLOYEES + "/{employee}"

#: name -> (method, path, body, the status for a company that is not deleted)
REQUESTS: dict[str, tuple[str, str, dict[str, Any] | None, int]] = {
    "get company": ("GET", COMPANY, None, 200),
    "patch company": ("PATCH", COMPANY, {"name": "Back"}, 200),
    "put company": ("PUT", COMPANY, {"name": "Back", "status": "active"}, 200),
    "delete company": ("DELETE", COMPANY, None, 204),
    "list departments": ("GET", DEPARTMENTS, None, 200),
    "create department": ("POST", DEPARTMENTS, {"name": "New"}, 201),
    "get department": ("GET", DEPARTMENT, None, 200),
    "patch department": ("PATCH", DEPARTMENT, {"name": "New"}, 200),
    "delete department": ("DELETE", DEPARTMENT, None, 204),
    "aggregate departments": ("GET", DEPARTMENTS + "/aggregate/sum/budget", None, 200),
    "list teams": ("GET", TEAMS, None, 200),
    "create team": ("POST", TEAMS, {"name": "New"}, 201),
    "get team": ("GET", TEAM, None, 200),
    "list costcenters": ("GET", COSTCENTERS, None, 200),
    "create costcenter": ("POST", COSTCENTERS, {"code": "CC-2", "name": "New"}, 201),
    "get costcenter": ("GET", COSTCENTER, None, 200),
    "list employees": ("GET", EMPLOYEES, None, 200),
    "create employee": ("POST", EMPLOYEES, {"user_id": "emp-2", "hired_at": "2021-01-01"}, 201),
    "get employee": ("GET", EMPLOYEE, None, 200),
    "patch employee": ("PATCH", EMPLOYEE, {"type": "ADMIN"}, 200),
    "aggregate employees": ("GET", EMPLOYEES + "/aggregate/count/id", None, 200),
}


def send(client: TestClient, name: str, ids: dict[str, Any]) -> Any:
    method, template, body, _ = REQUESTS[name]
    return client.request(method, template.format(**ids), json=body, headers=auth())


@pytest.mark.parametrize("name", REQUESTS)
def test_everything_under_a_deleted_company_is_404(client: TestClient, deleted: dict[str, Any], name: str) -> None:
    before = {model: model.objects.count() for model in (CompanyDepartment, CompanyCostcenter, Employee)}

    assert_not_found(send(client, name, deleted))
    assert Company.objects.get(pk=deleted["company"]).status == "deleted"
    assert {model: model.objects.count() for model in before} == before


@pytest.mark.parametrize("name", REQUESTS)
def test_the_same_requests_succeed_under_a_live_company(client: TestClient, alive: dict[str, Any], name: str) -> None:
    response = send(client, name, alive)

    assert response.status_code == REQUESTS[name][3], response.text


def test_a_put_cannot_undelete(client: TestClient, deleted: dict[str, Any]) -> None:
    response = client.put(f"/companies/{deleted['company']}", json={"name": "Back", "status": "active"}, headers=auth())

    assert_not_found(response)
    assert Company.objects.get(pk=deleted["company"]).status == "deleted"


# -- lists --------------------------------------------------------------------------------------------------------


@pytest.fixture
def listed(client: TestClient, deleted: dict[str, Any]) -> None:
    """Gone (deleted), Idle (inactive) and Live (active); the other tenant has a deleted one too."""
    Company.objects.create(tenant_id=TENANT, name="Idle", status="inactive")
    Company.objects.create(tenant_id=TENANT, name="Live", status="active")
    Company.objects.create(tenant_id=OTHER_TENANT, name="Foreign gone", status="deleted")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], ["Idle", "Live"]),
        ([("status", "deleted")], ["Gone"]),
        ([("status", "active"), ("status", "deleted")], ["Gone", "Live"]),
        ([("status", "inactive"), ("status", "active")], ["Idle", "Live"]),
        ([("!status", "active")], ["Idle"]),
        ([("!status", "inactive")], ["Live"]),
        ([("!status", "deleted")], ["Idle", "Live"]),
        ([("!status", "active"), ("!status", "inactive")], []),
        ([("status", "deleted"), ("name__icontains", "go")], ["Gone"]),
        ([("status", "deleted"), ("name", "Live")], []),
        ([("name", "Gone")], []),
        ([("name__icontains", "o")], []),
    ],
)
def test_list_shows_deleted_rows_only_when_a_positive_status_filter_names_them(
    client: TestClient, listed: None, params: list[tuple[str, str]], expected: list[str]
) -> None:
    assert company_names(client, params) == expected


def test_an_id_filter_does_not_bring_a_deleted_company_back(client: TestClient, deleted: dict[str, Any]) -> None:
    assert company_names(client, [("id", str(deleted["company"]))]) == []
    assert company_names(client, [("id", str(deleted["company"])), ("status", "deleted")]) == ["Gone"]


def test_total_leaves_deleted_rows_out(client: TestClient, listed: None) -> None:
    plain = client.get("/companies", params={"total": "true"}, headers=auth())
    asked = client.get("/companies", params=[("total", "true"), ("status", "deleted")], headers=auth())

    assert plain.json()["total"] == 2
    assert asked.json()["total"] == 1


def test_deleted_rows_of_another_tenant_stay_hidden(client: TestClient, listed: None) -> None:
    assert company_names(client, [("status", "deleted")]) == ["Gone"]
    theirs = client.get("/companies", params={"status": "deleted"}, headers=auth(tenant=OTHER_TENANT))
    assert [item["name"] for item in theirs.json()["items"]] == ["Foreign gone"]


def test_listing_a_deleted_company_does_not_reopen_its_item_routes(client: TestClient, listed: None) -> None:
    (gone,) = client.get("/companies", params={"status": "deleted"}, headers=auth()).json()["items"]

    assert gone["status"] == "deleted"
    assert_not_found(client.get(f"/companies/{gone['id']}", headers=auth()))


def test_openapi_describes_the_soft_delete_on_the_status_filter(app: FastAPI) -> None:
    parameters = {p["name"]: p for p in app.openapi()["paths"]["/companies"]["get"]["parameters"]}

    status = parameters["status"]["description"]
    assert "Soft-deleted" in status
    assert "'deleted'" in status
    assert "negated filter never brings them back" in status
    assert "deleted" not in parameters["name"]["description"]


def test_openapi_of_a_tree_without_soft_delete_does_not_mention_it() -> None:
    class CompanyRow(BaseModel):
        id: uuid.UUID
        name: str
        status: str

    app = FastAPI()
    app.include_router(DjangoRouterSchema(name="firms", model=Company, get=CompanyRow).router)
    parameters = {p["name"]: p for p in app.openapi()["paths"]["/firms"]["get"]["parameters"]}

    assert "Soft-deleted" not in parameters["status"]["description"]


# -- cache_control ------------------------------------------------------------------------------------------------


class FirmRow(BaseModel):
    id: uuid.UUID
    name: str


class FirmWrite(BaseModel):
    name: str


CACHE = "private, max-age=60"


def firms(cache_control: str | None) -> TestClient:
    tree = DjangoRouterSchema(
        name="firms",
        model=Company,
        get=FirmRow,
        create=FirmWrite,
        update=FirmWrite,
        aggregate_fields=["id"],
        cache_control=cache_control,
    )
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


@pytest.fixture
def firm(shared_connection: None) -> Company:
    return Company.objects.create(tenant_id=TENANT, name="Firm")


def firm_requests(firm: Company) -> dict[str, tuple[str, str, dict[str, Any] | None, int]]:
    item = f"/firms/{firm.pk}"
    return {
        "list": ("GET", "/firms", None, 200),
        "get": ("GET", item, None, 200),
        "aggregate": ("GET", "/firms/aggregate/count/id", None, 200),
        "create": ("POST", "/firms", {"name": "New"}, 201),
        "patch": ("PATCH", item, {"name": "Renamed"}, 200),
        "put": ("PUT", item, {"name": "Replaced"}, 200),
        "delete": ("DELETE", item, None, 204),
    }


@pytest.mark.parametrize("route", ["list", "get", "aggregate"])
def test_cache_control_is_set_on_read_routes(firm: Company, route: str) -> None:
    method, path, body, status = firm_requests(firm)[route]

    response = firms(CACHE).request(method, path, json=body)

    assert response.status_code == status
    assert response.headers["Cache-Control"] == CACHE


@pytest.mark.parametrize("route", ["create", "patch", "put", "delete"])
def test_cache_control_is_not_set_on_writes(firm: Company, route: str) -> None:
    method, path, body, status = firm_requests(firm)[route]

    response = firms(CACHE).request(method, path, json=body)

    assert response.status_code == status, response.text
    assert "Cache-Control" not in response.headers


@pytest.mark.parametrize("route", ["list", "get", "aggregate"])
def test_without_cache_control_reads_have_no_header(firm: Company, route: str) -> None:
    method, path, body, status = firm_requests(firm)[route]

    response = firms(None).request(method, path, json=body)

    assert response.status_code == status
    assert "Cache-Control" not in response.headers


def test_the_demo_sets_no_cache_control(client: TestClient, alive: dict[str, Any]) -> None:
    response = client.get("/companies", headers=auth())

    assert response.status_code == 200
    assert "Cache-Control" not in response.headers

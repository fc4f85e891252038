"""``?fields=``: answers hold only the selected fields, and the query plan shrinks with them.

Counts through real requests on the demo: a full companies page is 3 queries (the rows,
their departments, their cost centres); selecting no nested list is 1, one nested list 2.
Unknown paths are a 422 at ``["query", "fields"]``, fields the caller may not read a 403
— the accepted case next to each refused one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment, Employee
from tests.helpers import TENANT, USER, auth
from tests.testapp.models import Book, Shelf

READ_OWN = ["business.companies.read.own"]


@pytest.fixture
def company(db: None) -> Company:
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    CompanyDepartment.objects.create(company=company, name="Sales", budget=Decimal("10.00"))
    CompanyDepartment.objects.create(company=company, name="Ops", budget=Decimal("20.00"))
    CompanyCostcenter.objects.create(company=company, code="CC1", name="Main")
    Employee.objects.create(
        company=company, user_id=USER, type="OWNER", salary=Decimal("100.00"), hired_at="2026-01-02"
    )
    return company


def sql_of(client: TestClient, url: str, **headers: Any) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=auth(**headers))
    return response, [q["sql"] for q in queries.captured_queries]


def test_full_list_reads_every_nested_list(client: TestClient, company: Company, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_num_queries(3):
        response = client.get("/companies", headers=auth())
    assert set(response.json()["items"][0]) >= {"departments", "costcenters", "created_at"}


def test_selecting_columns_reads_one_query_with_only_those_columns(client: TestClient, company: Company) -> None:
    response, sql = sql_of(client, "/companies?fields=id,name")
    assert response.status_code == 200
    assert response.json() == {"items": [{"id": str(company.id), "name": "Acme"}]}
    assert len(sql) == 1
    assert "created_at" not in sql[0] and "is_verified" not in sql[0]


def test_selecting_inside_a_nested_list_prefetches_only_that_list(client: TestClient, company: Company) -> None:
    response, sql = sql_of(client, "/companies?fields=name,departments.name")
    (item,) = response.json()["items"]
    assert item["name"] == "Acme" and list(item) == ["name", "departments"]
    assert sorted(item["departments"], key=lambda d: d["name"]) == [{"name": "Ops"}, {"name": "Sales"}]
    assert len(sql) == 2  # the companies, their departments; no cost centres
    assert "costcenter" not in " ".join(sql)
    assert "budget" not in sql[1]


def test_whole_nested_list_and_a_path_inside_it_is_the_whole_list(client: TestClient, company: Company) -> None:
    response = client.get("/companies?fields=departments.name,departments", headers=auth())
    assert set(response.json()["items"][0]["departments"][0]) == {"id", "name", "budget"}


def test_item_route_selects_too_and_its_etag_matches_its_body(client: TestClient, company: Company) -> None:
    response, sql = sql_of(client, f"/companies/{company.id}?fields=name,costcenters.code")
    assert response.json() == {"name": "Acme", "costcenters": [{"code": "CC1"}]}
    assert len(sql) == 2
    again = client.get(
        f"/companies/{company.id}?fields=name,costcenters.code",
        headers={**auth(), "If-None-Match": response.headers["etag"]},
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("nmae", "Unknown field 'nmae'"),
        ("name.first", "has no fields inside it"),
        ("departments.nope", "Unknown field 'departments.nope'"),
        ("", "empty names"),
        ("id,,name", "empty names"),
        (",".join(["id"] * 70), "At most 64"),
    ],
)
def test_unknown_or_malformed_paths_are_a_422(client: TestClient, company: Company, fields: str, message: str) -> None:
    response = client.get(f"/companies?fields={fields}", headers=auth())
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "fields"]
    assert message in error["msg"]


def test_a_hidden_field_is_a_403_as_for_filters(client: TestClient, company: Company) -> None:
    url = f"/companies/{company.id}/employees?fields=user_id,salary"
    assert client.get(url, headers=auth()).status_code == 200  # read.any may read salaries
    refused = client.get(url, headers=auth(scopes=READ_OWN))
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "field_scope_missing"
    # the same caller, without the hidden field: allowed, and still without salaries
    allowed = client.get(f"/companies/{company.id}/employees?fields=user_id", headers=auth(scopes=READ_OWN))
    assert allowed.json()["items"] == [{"user_id": USER}]


def test_a_selection_never_widens_what_the_row_filter_shows(client: TestClient, company: Company) -> None:
    Company.objects.create(tenant_id="tenant-b", name="Other")
    response = client.get("/companies?fields=name", headers=auth())
    assert [item["name"] for item in response.json()["items"]] == ["Acme"]


def test_fields_is_documented_on_list_and_get(app: Any) -> None:
    operations = app.openapi()["paths"]["/companies"]["get"], app.openapi()["paths"]["/companies/{company_id}"]["get"]
    for operation in operations:
        assert "fields" in {parameter["name"] for parameter in operation["parameters"]}


class BookShout(BaseModel):
    title: str
    shout: str = Field(orm_method="title_upper")


class ShelfShout(BaseModel):
    code: str
    name: str
    books: list[BookShout]


def test_instance_reads_shrink_their_prefetches_too(shared_connection: None, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    # orm_method fields need model instances: the plan's prefetches, not values() queries
    shelf = Shelf.objects.create(code="S1", tenant_id=TENANT, name="First")
    Book.objects.create(shelf=shelf, title="Dune", isbn="1")
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfShout).router)
    with TestClient(app) as client:
        with django_assert_num_queries(2):
            assert client.get("/shelves").json()["items"][0]["books"] == [{"title": "Dune", "shout": "DUNE"}]
        with django_assert_num_queries(1):
            assert client.get("/shelves?fields=name").json() == {"items": [{"name": "First"}]}
        with django_assert_num_queries(2):
            assert client.get("/shelves/S1?fields=books.shout").json() == {"books": [{"shout": "DUNE"}]}


def test_views_are_bounded_and_rebuilt_after_eviction(
    client: TestClient, company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    from djfapi.orm import selection
    from testproject.api import companies

    monkeypatch.setattr(companies._views, "size", 3)
    monkeypatch.setattr(selection._views, "size", 5)
    asked = ["id", "name", "status", "id,name", "id,status", "name,status", "tenant_id", "created_at"]
    for fields in asked:
        response = client.get(f"/companies?fields={fields}", headers=auth())
        assert list(response.json()["items"][0]) == fields.split(",")
    assert len(companies._views) <= 3 and len(selection._views) <= 5
    # an evicted view is built again, the same
    assert client.get("/companies?fields=id", headers=auth()).json() == {"items": [{"id": str(company.id)}]}

"""Bounded reads (issue 12, part 4; SPEC §10): nested lists show at most a cap per object,
a response over the row budget is a 422 naming the fix instead of a 24 MB body, and writes
are bounded by rows too. Both read paths are covered: ``values()`` rows and model instances.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import Company, CompanyCostcenter
from tests.factories import make_company
from tests.helpers import auth


def costcenters(company: Company, count: int) -> None:
    CompanyCostcenter.objects.bulk_create(
        CompanyCostcenter(company=company, code=f"C{index:05}", name=f"Centre {index}") for index in range(count)
    )


def codes(items: list[dict[str, Any]]) -> list[str]:
    return [item["code"] for item in items]


# -- the demo, default settings ------------------------------------------------------------------------------------


def test_a_nested_list_shows_the_first_100_and_the_child_route_pages_through_all(
    client: TestClient, django_assert_num_queries: Any
) -> None:
    company = make_company()
    costcenters(company, 150)

    # The company, its departments, its cost centres, and — as the cost centres overflow the cap —
    # the first 100 of them picked by a window function: one query more than under the cap.
    with django_assert_num_queries(4):
        got = client.get(f"/companies/{company.pk}", headers=auth())
    listed = client.get("/companies", headers=auth())
    child = client.get(f"/companies/{company.pk}/costcenters?limit=1000", headers=auth())

    assert codes(got.json()["costcenters"]) == [f"C{index:05}" for index in range(100)]
    assert codes(listed.json()["items"][0]["costcenters"]) == [f"C{index:05}" for index in range(100)]
    assert len(child.json()["items"]) == 150


def test_a_page_over_the_row_budget_is_a_422_with_the_fix_and_a_smaller_page_is_served(
    client: TestClient, django_assert_max_num_queries: Any
) -> None:
    for index in range(120):  # 120 companies x (1 + 100 cost centres) = 12,120 rows > 10,000
        costcenters(make_company(name=f"Company {index:03}"), 100)

    with django_assert_max_num_queries(5):  # the page, and per nested list at most: two counts, or its rows
        refused = client.get("/companies?limit=120", headers=auth())
    served = client.get("/companies?limit=50", headers=auth())

    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert (error["type"], error["loc"], error["input"]) == ("too_many_rows", ["query", "limit"], 120)
    assert error["msg"] == (
        "The answer would hold more than 10000 rows, its nested lists included (each shows up to 100 items). Ask for "
        "fewer items (a smaller limit), or read the nested lists from their own routes (GET "
        "/companies/{company_id}/departments, GET /companies/{company_id}/costcenters, GET "
        "/companies/{company_id}/skills, GET /companies/{company_id}/employees)."
    )
    assert len(refused.content) < 2000
    assert served.status_code == 200
    assert len(served.json()["items"]) == 50


def test_the_openapi_description_states_the_caps(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/companies/{company_id}"]["get"]

    assert (
        "Nested lists show at most this many items per object: `departments` 100, `costcenters` 100"
        in operation["description"]
    )


# -- options: nested_limit, Field(max_items), the budget setting; the instance path -------------------------------


class CostcenterOut(BaseModel):
    code: str


class CompanyOut(BaseModel):
    name: str
    costcenters: list[CostcenterOut]


class CompanyCapped(BaseModel):
    name: str
    costcenters: list[CostcenterOut] = Field(max_items=3)


class CompanyWithMethod(BaseModel):
    """A method field: read through model instances and the prefetch plan, not values()."""

    name: str
    label: str = Field(orm_method=lambda company: company.name.upper())
    costcenters: list[CostcenterOut]


def serve(**options: Any) -> TestClient:
    options.setdefault("get", CompanyOut)
    tree = DjangoRouterSchema(name="companies", model=Company, delete=False, **options)
    app = FastAPI()
    app.include_router(tree.router)
    return TestClient(app)


@pytest.fixture
def two_companies(shared_connection: None) -> Iterator[None]:
    for name in ("A", "B"):
        costcenters(make_company(name=name), 8)
    yield


@pytest.mark.parametrize("schema", [CompanyOut, CompanyWithMethod])
def test_nested_limit_and_max_items_cap_both_read_paths(two_companies: None, schema: type[BaseModel]) -> None:
    with serve(get=schema, nested_limit=5) as client:
        by_node = client.get("/companies").json()["items"]
    with serve(get=CompanyCapped, nested_limit=5) as client:
        by_field = client.get("/companies").json()["items"]

    assert [len(item["costcenters"]) for item in by_node] == [5, 5]
    assert [len(item["costcenters"]) for item in by_field] == [3, 3]
    assert codes(by_field[1]["costcenters"]) == ["C00000", "C00001", "C00002"]


@pytest.mark.parametrize("schema", [CompanyOut, CompanyWithMethod])
def test_the_budget_refuses_both_read_paths_at_the_same_size(
    two_companies: None, settings: Any, schema: type[BaseModel]
) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "MAX_RESPONSE_ROWS": 17}  # 2 companies x (1 + 8) = 18 rows

    with serve(get=schema) as client:
        over = client.get("/companies")
        at_budget = client.get("/companies?limit=1")
        one = client.get(f"/companies/{Company.objects.get(name='A').pk}")

    assert over.status_code == 422
    assert over.json()["detail"][0]["loc"] == ["query", "limit"]
    assert at_budget.status_code == one.status_code == 200


def test_a_single_object_over_the_budget_names_the_path(two_companies: None, settings: Any) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "MAX_RESPONSE_ROWS": 5}

    with serve() as client:
        refused = client.get(f"/companies/{Company.objects.get(name='A').pk}")

    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["path", "company_id"]


def test_max_items_is_the_maxitems_of_the_openapi_schema() -> None:
    with serve(get=CompanyCapped) as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]["CompanyCapped"]

    assert schema["properties"]["costcenters"]["maxItems"] == 3


def test_nested_limit_must_be_a_positive_whole_number() -> None:
    from djfapi.orm.mapping import SchemaDefinitionError

    for wrong in (0, -1, 2.5, True):
        with pytest.raises(SchemaDefinitionError, match="nested_limit must be a whole number >= 1"):
            DjangoRouterSchema(name="companies", model=Company, get=CompanyOut, nested_limit=wrong)


# -- writes are bounded by rows too -----------------------------------------------------------------------------------


def test_a_write_over_the_row_budget_is_refused_before_anything_is_written(client: TestClient, settings: Any) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "MAX_WRITE_ROWS": 10}
    body = {"name": "Acme", "costcenters": [{"code": f"C{i}", "name": "c"} for i in range(10)]}  # 11 rows

    refused = client.post("/companies", json=body, headers=auth())
    accepted = client.post("/companies", json={**body, "costcenters": body["costcenters"][:9]}, headers=auth())

    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "type": "too_many_rows",
            "loc": ["body"],
            "msg": "One write may hold at most 10 rows, nested ones included; this one holds 11. Send them in "
            "several requests.",
            "input": None,
        }
    ]
    assert accepted.status_code == 201
    assert Company.objects.count() == 1

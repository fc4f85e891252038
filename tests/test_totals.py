"""Counts that scale: ``total=true`` is a bare COUNT(*) that PostgreSQL answers from an index
alone (where the row counter, tests/test_row_counts.py, cannot answer it), ``total=estimate``
asks the planner and says so in the body, aggregate counts need no column, and offsets past
``max_offset`` are a 422 that points to the cursor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.totals import exact_count
from testproject.business.models import Company
from tests.helpers import OTHER_TENANT, TENANT, auth


def seed(count: int, tenant: str = TENANT, **fields: Any) -> None:
    Company.objects.bulk_create(Company(tenant_id=tenant, name=f"C{n:05d}", **fields) for n in range(count))


def single_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    return error


# -- total=true ------------------------------------------------------------------------------------------------


def test_total_true_is_one_bare_count_beside_the_page(
    client: TestClient, shared_connection: None, django_assert_num_queries: Any
) -> None:
    seed(12)
    seed(3, OTHER_TENANT)

    params = {"limit": "5", "order_by": "-departments__count"}
    with CaptureQueriesContext(connection) as without_total:
        client.get("/companies", params=params, headers=auth())
    with CaptureQueriesContext(connection) as captured, django_assert_num_queries(len(without_total) + 1):
        response = client.get("/companies", params={**params, "total": "true"}, headers=auth())

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 12 and len(body["items"]) == 5
    assert "total_estimated" not in body
    # The demo counts companies by tenant and status (djfapi.counts): the count adds up its rows
    (count_sql,) = [q["sql"] for q in captured.captured_queries if "business_company_counts" in q["sql"]]
    assert "ORDER BY" not in count_sql and "djfapi_count" not in count_sql  # no sort, no ordering's subquery

    with CaptureQueriesContext(connection) as counted:  # a filter the counter lacks: the rows are counted
        client.get("/companies", params={**params, "total": "true", "is_verified": "false"}, headers=auth())
    (count_sql,) = [q["sql"] for q in counted.captured_queries if "COUNT(*)" in q["sql"]]
    assert "ORDER BY" not in count_sql and "djfapi_count" not in count_sql


def test_without_total_the_body_has_neither_key(client: TestClient, shared_connection: None) -> None:
    seed(2)

    body = client.get("/companies", headers=auth()).json()

    assert "total" not in body and "total_estimated" not in body


@pytest.mark.parametrize("value", ["maybe", "estimated", "", "2"])
def test_a_total_that_is_neither_a_boolean_nor_estimate_is_a_422(client: TestClient, db: None, value: str) -> None:
    response = client.get("/companies", params={"total": value}, headers=auth())

    assert response.status_code == 422
    assert {tuple(error["loc"][:2]) for error in response.json()["detail"]} == {("query", "total")}


# -- total=estimate --------------------------------------------------------------------------------------------


def test_an_estimate_below_the_exact_bound_is_the_exact_count_and_says_so(
    client: TestClient, shared_connection: None
) -> None:
    seed(7)

    body = client.get("/companies", params={"total": "estimate", "limit": "2"}, headers=auth()).json()

    assert body["total"] == 7
    assert body["total_estimated"] is False


def test_sqlite_has_no_planner_estimate_so_the_count_is_exact(
    client: TestClient, shared_connection: None, settings: Any
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL estimates: next test")
    settings.DJFAPI = {**settings.DJFAPI, "EXACT_COUNT_BELOW": 0}
    seed(4)

    body = client.get("/companies", params={"total": "estimate"}, headers=auth()).json()

    assert (body["total"], body["total_estimated"]) == (4, False)


@pytest.mark.postgresql
def test_postgresql_estimates_from_the_planner_in_one_query_without_reading_rows(
    client: TestClient, shared_connection: None, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "EXACT_COUNT_BELOW": 0}
    seed(300)
    seed(100, OTHER_TENANT)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE business_company")

    # is_verified: a filter the demo's row counter cannot answer (with one, the total is exact and cheap)
    params = {"limit": "1", "is_verified": "false"}
    with CaptureQueriesContext(connection) as without_total:
        client.get("/companies", params=params, headers=auth())
    with CaptureQueriesContext(connection) as captured, django_assert_num_queries(len(without_total) + 1):
        body = client.get("/companies", params={**params, "total": "estimate"}, headers=auth()).json()

    assert body["total_estimated"] is True
    assert 150 <= body["total"] <= 600  # the planner's figure: near 300, not exact
    assert any(q["sql"].startswith("EXPLAIN (FORMAT JSON)") for q in captured.captured_queries)
    assert not any("COUNT(*)" in q["sql"] for q in captured.captured_queries)


# -- index-only counts and aggregates (PostgreSQL's plans) -------------------------------------------------------


def plan_of(sql: str, params: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a small table: make the planner show its index use
        cursor.execute("SET enable_bitmapscan = off")
        try:
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_bitmapscan")


def count_plan(rows: Any) -> str:
    with CaptureQueriesContext(connection) as captured:
        exact_count(rows)
    return plan_of(captured.captured_queries[-1]["sql"], None)


@pytest.mark.postgresql
def test_postgresql_counts_the_tenant_from_the_advisors_index_alone(transactional_db: None) -> None:
    seed(2000)
    seed(2000, OTHER_TENANT)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE business_company")  # as autovacuum would: the visibility map is set

    # Conditions the demo's row counter (tenant, status) cannot answer, so exact_count counts rows:
    # one an index holds entirely, one it does not.
    served = count_plan(Company.objects.filter(tenant_id=TENANT, name__gte="C01000"))
    unserved = count_plan(Company.objects.filter(tenant_id=TENANT, is_verified=True).exclude(status="deleted"))

    assert "Index Only Scan using company_tenant_id_n_169624_idx" in served, served
    assert "Index Only Scan" not in unserved, unserved  # no index holds is_verified and status together


def test_an_aggregate_count_of_a_not_null_column_needs_no_column(client: TestClient, shared_connection: None) -> None:
    seed(3, status="active")
    seed(2, status="inactive")

    # is_verified: a filter the demo's row counter (tenant, status) cannot answer, so the rows are counted
    params = {"group_by": "status", "is_verified": "false"}
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/companies/aggregate/count/id", params=params, headers=auth())

    assert response.json()["values"] == [{"value": 3, "status": "active"}, {"value": 2, "status": "inactive"}]
    assert any("COUNT(*)" in q["sql"] for q in captured.captured_queries)


# -- the offset bound ------------------------------------------------------------------------------------------


class CompanyRow(BaseModel):
    id: uuid.UUID
    name: str


def serve(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


def tenant_rows(access: Any) -> Q:
    return Q(tenant_id=TENANT)


def test_the_default_bound_takes_10000_and_refuses_10001_pointing_to_the_cursor(
    client: TestClient, shared_connection: None, django_assert_num_queries: Any
) -> None:
    seed(2)

    assert client.get("/companies", params={"offset": "10000"}, headers=auth()).status_code == 200
    with django_assert_num_queries(0):  # refused before any SQL
        error = single_error(client.get("/companies", params={"offset": "10001"}, headers=auth()))

    assert error["loc"] == ["query", "offset"]
    assert "cursor" in error["msg"] and "10000" in error["msg"]


def test_max_offset_per_node_is_inherited_and_refused_above(shared_connection: None) -> None:
    seed(8)
    tree = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyRow,
        objects_filter=tenant_rows,
        pagination_options={"max_offset": 5, "default_order_by": ["name"]},
    )
    client = serve(tree)

    assert [item["name"] for item in client.get("/companies", params={"offset": "5"}).json()["items"]] == [
        "C00005",
        "C00006",
        "C00007",
    ]
    assert single_error(client.get("/companies", params={"offset": "6"}))["ctx"] == {"le": 5}
    assert "Rows to skip, at most 5" in str(client.get("/openapi.json").json())


def test_the_setting_sets_the_bound_for_every_node(settings: Any, db: None) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "PAGINATION": {"max_offset": 3}}
    parent = DjangoRouterSchema(name="companies", model=Company, get=CompanyRow)
    own = DjangoRouterSchema(name="companies", model=Company, get=CompanyRow, pagination_options={"max_offset": 0})

    assert parent.max_offset == 3
    assert own.max_offset == 0


@pytest.mark.parametrize("bad", [-1, "10", True, 2.5])
def test_a_max_offset_that_is_not_a_whole_number_is_refused_at_definition(bad: Any) -> None:
    tree = DjangoRouterSchema(name="companies", model=Company, get=CompanyRow, pagination_options={"max_offset": bad})

    with pytest.raises(SchemaDefinitionError, match="max_offset must be a whole number"):
        tree.router  # noqa: B018

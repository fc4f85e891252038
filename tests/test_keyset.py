"""Keyset cursors as row-value comparisons: the database plans a deep cursor page as an index
range (SQLite and PostgreSQL), mixed directions walk every row exactly once, and the old
OR-chain form is shown to be a filter, not a range (so the plan test can fail)."""

from __future__ import annotations

import datetime
import random
import uuid
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import Company
from tests.helpers import OTHER_TENANT, TENANT


class CompanyRow(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime.datetime


def tenant_rows(access: Any) -> Q:
    return Q(tenant_id=TENANT)


def cursor_companies(*default_order_by: str) -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyRow,
        objects_filter=tenant_rows,
        order_fields=["name", "created_at", "id"],
        pagination_options={"cursor": True, "default_order_by": list(default_order_by)},
    )


def serve(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


def seed(count: int) -> list[Company]:
    """``count`` companies of the tenant with few distinct names and times (many ties), and some of another."""
    base = timezone.now().replace(microsecond=0)
    rng = random.Random(count)
    rows = [
        Company(
            tenant_id=TENANT, name=f"N{rng.randrange(5)}", created_at=base - datetime.timedelta(hours=rng.randrange(4))
        )
        for _ in range(count)
    ]
    rows += [Company(tenant_id=OTHER_TENANT, name="N1", created_at=base) for _ in range(5)]
    return Company.objects.bulk_create(rows)


def walk(client: TestClient, limit: int, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        query = [*params, ("limit", str(limit)), *([("cursor", cursor)] if cursor else [])]
        response = client.get("/companies", params=query)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the walk does not end")


@pytest.mark.parametrize(
    "order",
    [["name"], ["-name"], ["-created_at", "name"], ["created_at", "-name"], ["-created_at", "-name", "id"]],
)
def test_every_direction_mix_walks_each_row_once_in_order(shared_connection: None, order: list[str]) -> None:
    rows = [row for row in seed(60) if row.tenant_id == TENANT]
    client = serve(cursor_companies())

    items = walk(client, 7, [("order_by", term) for term in order])

    def key(row: Company) -> tuple[Any, ...]:
        parts: list[Any] = []
        for term in order:
            value = getattr(row, term.lstrip("-"))
            parts.append(_Reversed(value) if term.startswith("-") else value)
        return (*parts, row.pk.hex)

    expected = [str(row.pk) for row in sorted(rows, key=key)]
    assert [item["id"] for item in items] == expected


class _Reversed:
    def __init__(self, value: Any):
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value


def test_the_cursor_condition_is_a_row_comparison_in_one_query(
    shared_connection: None, django_assert_num_queries: Any
) -> None:
    seed(30)
    client = serve(cursor_companies("name"))
    cursor = client.get("/companies", params={"limit": "5"}).json()["next_cursor"]

    with CaptureQueriesContext(connection) as captured, django_assert_num_queries(1):
        response = client.get("/companies", params={"limit": "5", "cursor": cursor})

    assert response.status_code == 200
    (sql,) = [query["sql"] for query in captured.captured_queries]
    assert '("business_company"."name", "business_company"."id") > (' in sql
    assert " OR " not in sql


def test_mixed_directions_lead_with_a_range_on_the_first_column(shared_connection: None) -> None:
    seed(30)
    client = serve(cursor_companies("-created_at", "name"))
    cursor = client.get("/companies", params={"limit": "5"}).json()["next_cursor"]

    with CaptureQueriesContext(connection) as captured:
        client.get("/companies", params={"limit": "5", "cursor": cursor})

    (sql,) = [query["sql"] for query in captured.captured_queries]
    assert '("business_company"."created_at") <= (' in sql
    assert '("business_company"."name", "business_company"."id") > (' in sql


# -- plans: the database itself says it reads a range of the advisor's index --------------------------------------


def cursor_query_plan(condition: Q) -> str:
    rows = Company.objects.filter(tenant_id=TENANT).filter(condition).order_by("name", "id")[:51]
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a small test table: make the planner show its index use
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def deep_cursor_condition() -> Q:
    tree = cursor_companies("name")
    terms = tree.ordering.terms(None)
    row = Company.objects.filter(tenant_id=TENANT).order_by("name", "id")[40]
    return tree.cursor.decode(tree.cursor.encode(terms, row), terms)  # type: ignore[union-attr]


def test_sqlite_reads_a_deep_cursor_page_as_a_range_of_the_index(db: None) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plan; PostgreSQL's is the next test")
    seed(60)

    plan = cursor_query_plan(deep_cursor_condition())
    or_chain = cursor_query_plan(Q(name__gt="N2") | Q(name="N2", id__gt=uuid.UUID(int=0)))

    assert "USING INDEX company_tenant_id_n_169624_idx (tenant_id=? AND (name,id)>(?,?))" in plan
    assert "(name,id)>" not in or_chain  # the old form: no range on (name, id)


@pytest.mark.postgresql
def test_postgresql_reads_a_deep_cursor_page_as_a_range_of_the_index(db: None) -> None:
    seed(60)

    plan = cursor_query_plan(deep_cursor_condition())
    or_chain = cursor_query_plan(Q(name__gt="N2") | Q(name="N2", id__gt=uuid.UUID(int=0)))

    index_conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert "company_tenant_id_n_169624_idx" in plan
    assert any("ROW(" in line for line in index_conditions), plan
    # The old OR chain: PostgreSQL can only filter with it, reading every row before the cursor's.
    assert not any("name" in line for line in or_chain.splitlines() if "Index Cond" in line), or_chain


def test_a_cursor_page_with_nested_lists_reads_as_the_offset_page_does(
    shared_connection: None, django_assert_num_queries: Any
) -> None:
    from testproject.business import schemas
    from testproject.business.models import CompanyDepartment

    for company in seed(12)[:12]:
        CompanyDepartment.objects.create(company=company, name=f"D of {company.name}", budget=1)

    def tree(**pagination: Any) -> DjangoRouterSchema:
        return DjangoRouterSchema(
            name="companies",
            model=Company,
            get=schemas.Company,
            objects_filter=tenant_rows,
            pagination_options={"default_order_by": ["name"], **pagination},
        )

    by_cursor, by_offset = serve(tree(cursor=True)), serve(tree())
    first = by_cursor.get("/companies", params={"limit": "5"}).json()
    with django_assert_num_queries(3):  # the page, its departments, its cost centres
        second = by_cursor.get("/companies", params={"limit": "5", "cursor": first["next_cursor"]}).json()

    assert second["items"] == by_offset.get("/companies", params={"limit": "5", "offset": "5"}).json()["items"]
    assert any(item["departments"] for item in second["items"])


def test_a_row_comparison_refuses_unknown_operators_and_unequal_rows() -> None:
    from django.db.models import F, Value

    from djfapi.routing.keyset import RowComparison, direction_runs

    assert RowComparison([F("name")], ">", [Value("x")]).operator == ">"
    with pytest.raises(ValueError, match="unsupported row comparison"):
        RowComparison([F("name")], "; DROP", [Value("x")])
    with pytest.raises(ValueError, match="as many values as columns"):
        RowComparison([F("name"), F("id")], ">", [Value("x")])
    with pytest.raises(ValueError, match="as many values as columns"):
        RowComparison([], ">", [])
    runs = direction_runs([("a", True, 1), ("b", True, 2), ("c", False, 3), ("d", True, 4)])
    assert [[path for path, _, _ in run] for run in runs] == [["a", "b"], ["c"], ["d"]]

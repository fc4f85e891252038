"""Deep offset pages find their rows' keys first (``endpoints._offset_page``): the same
rows, in the same order, in one statement, with the keys found in the advisor's index
alone."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fastapi.testclient import TestClient

from djfapi.routing.endpoints import KEYS_FIRST_FROM
from testproject.business.models import Company, CompanyDepartment
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.test_totals import plan_of

ROWS = KEYS_FIRST_FROM + 60


def seed() -> None:
    """Interleaved tenants, soft-deleted rows among them, every 7th name an "Acme"."""
    companies = []
    for n in range(ROWS):
        name = f"C{n:04d}" + (" Acme" if n % 7 == 0 else "")
        companies.append(Company(tenant_id=TENANT, name=name, status="deleted" if n % 11 == 0 else "active"))
        companies.append(Company(tenant_id=OTHER_TENANT, name=f"C{n:04d}b Acme"))
    Company.objects.bulk_create(companies)


def expected(**filters: Any) -> list[str]:
    visible = Company.objects.filter(tenant_id=TENANT, **filters).exclude(status="deleted")
    return list(visible.order_by("name", "id").values_list("name", flat=True))


def names(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/companies", params=params, headers=auth())
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


@pytest.mark.parametrize("offset", [KEYS_FIRST_FROM - 1, KEYS_FIRST_FROM, KEYS_FIRST_FROM + 1, 2 * KEYS_FIRST_FROM])
def test_a_deep_page_is_the_same_rows_in_the_same_order(
    client: TestClient, shared_connection: None, offset: int
) -> None:
    seed()

    page = names(client, offset=offset, limit=20)

    assert page == expected()[offset : offset + 20]
    assert all(not name.endswith("b Acme") for name in page)  # never another tenant's


def test_a_deep_page_is_one_statement_and_a_near_one_reads_directly(
    client: TestClient, shared_connection: None, django_assert_num_queries: Any
) -> None:
    seed()
    with CaptureQueriesContext(connection) as near:
        page = names(client, offset=40, limit=20, name__icontains="acme")
    # read before the next request: Django empties the query log when one starts
    (near_statement,) = [q["sql"] for q in near.captured_queries if "LIKE" in q["sql"]]

    with CaptureQueriesContext(connection) as captured, django_assert_num_queries(len(near)):
        deep = names(client, offset=KEYS_FIRST_FROM, limit=20)
    (deep_statement,) = [q["sql"] for q in captured.captured_queries if "OFFSET" in q["sql"]]

    assert page == expected(name__icontains="acme")[40:60]
    assert deep == expected()[KEYS_FIRST_FROM : KEYS_FIRST_FROM + 20]
    assert "IN (SELECT" not in near_statement and "IN (SELECT" in deep_statement


def test_a_deep_page_ordered_by_a_relation_count_keeps_its_order(client: TestClient, shared_connection: None) -> None:
    seed()
    mine = list(Company.objects.filter(tenant_id=TENANT).exclude(status="deleted").order_by("name"))
    CompanyDepartment.objects.bulk_create(
        CompanyDepartment(company=company, name="D") for n, company in enumerate(mine) for _ in range(n % 4)
    )
    ordered = sorted(mine, key=lambda company: (-(mine.index(company) % 4), company.name))

    page = names(client, offset=KEYS_FIRST_FROM, limit=10, order_by=["-departments__count", "name"])

    assert page == [company.name for company in ordered[KEYS_FIRST_FROM : KEYS_FIRST_FROM + 10]]


def test_a_deep_page_under_a_hidden_parent_is_a_404(client: TestClient, shared_connection: None) -> None:
    theirs = Company.objects.create(tenant_id=OTHER_TENANT, name="Theirs")
    CompanyDepartment.objects.bulk_create(
        CompanyDepartment(company=theirs, name=f"D{n:04d}") for n in range(KEYS_FIRST_FROM + 10)
    )

    response = client.get(f"/companies/{theirs.pk}/departments", params={"offset": KEYS_FIRST_FROM}, headers=auth())

    assert response.status_code == 404


def test_sqlite_finds_the_keys_in_the_covering_index(db: None) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's plan: next test")
    keys = Company.objects.filter(tenant_id=TENANT).exclude(status="deleted").order_by("name", "id").values("pk")
    sql, params = keys[KEYS_FIRST_FROM : KEYS_FIRST_FROM + 50].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())

    assert "USING COVERING INDEX company_tenant_id_n_a74c79_idx" in plan, plan


@pytest.mark.postgresql
def test_postgresql_finds_the_keys_in_the_index_alone(transactional_db: None) -> None:
    seed()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE business_company")  # as autovacuum would: the visibility map is set
    keys = Company.objects.filter(tenant_id=TENANT).exclude(status="deleted").order_by("name", "id").values("pk")
    sql, params = keys[KEYS_FIRST_FROM : KEYS_FIRST_FROM + 50].query.sql_with_params()

    plan = plan_of(sql, params)  # a small table: the planner is made to show its index use

    assert "Index Only Scan using company_tenant_id_n_a74c79_idx" in plan, plan

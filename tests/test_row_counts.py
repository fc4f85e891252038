"""Maintained row counts (``djfapi.counts.CreateRowCount``): the demo counts companies by
tenant and status. The counter must equal ``COUNT(*)`` after every kind of write, roll
back with the rows, answer only the queries it can answer exactly, and step aside when
its triggers are gone."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.migrations.writer import MigrationWriter
from django.db.models import Count, F
from django.test.utils import CaptureQueriesContext
from fastapi.testclient import TestClient

from djfapi.counts import CreateRowCount, counted_groups, counted_total, find_counters, forget_counters
from djfapi.counts.ddl import CounterNames
from djfapi.counts.lookup import counter_of
from djfapi.counts.operations import counted_fields
from testproject.business.models import Company, CompanyDepartment
from tests.helpers import OTHER_TENANT, TENANT, auth, own_postgresql_connection

COUNTER = "business_company_counts"


def seed(count: int, tenant: str = TENANT, **fields: Any) -> list[Company]:
    return Company.objects.bulk_create(Company(tenant_id=tenant, name=f"C{n:05d}", **fields) for n in range(count))


def counter_rows() -> dict[tuple[str, str], int]:
    """The counter's sums per (tenant, status), zero sums left out."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tenant_id, status, SUM(djfapi_rows) FROM {COUNTER} GROUP BY tenant_id, status")
        return {(tenant, status): int(rows) for tenant, status, rows in cursor.fetchall() if rows}


def counted_rows() -> dict[tuple[str, str], int]:
    """The same, counted from the companies themselves."""
    rows = Company.objects.values_list("tenant_id", "status").annotate(n=Count("*")).order_by()
    return {(tenant, status): n for tenant, status, n in rows}


RAW_COLUMNS = "(id, tenant_id, name, status, is_verified, created_at)"


def raw_values(name: str) -> str:
    return f"(gen_random_uuid(), '{TENANT}', '{name}', 'active', false, now())"


def touches_counter(queries: list[dict[str, Any]]) -> bool:
    return any(COUNTER in q["sql"] for q in queries)


def counts_rows(queries: list[dict[str, Any]]) -> bool:
    return any("COUNT(*)" in q["sql"] and COUNTER not in q["sql"] for q in queries)


# -- the triggers keep it exact ---------------------------------------------------------------------------------


def test_every_kind_of_write_keeps_the_counter_equal_to_count(db: None) -> None:
    seed(5)
    seed(3, OTHER_TENANT, status="inactive")
    one = Company.objects.create(tenant_id=TENANT, name="single")
    assert counter_rows() == counted_rows() == {(TENANT, "active"): 6, (OTHER_TENANT, "inactive"): 3}

    one.status = "deleted"
    one.save()  # an UPDATE of a counted column moves the row between keys
    Company.objects.filter(tenant_id=OTHER_TENANT).update(status="active")  # one statement, three rows
    Company.objects.filter(tenant_id=TENANT).update(name="renamed")  # counted columns untouched
    Company.objects.filter(tenant_id=TENANT, status="active")[:1].get().delete()
    with connection.cursor() as cursor:  # writes that bypass the ORM count too
        cursor.execute(
            "INSERT INTO business_company (id, tenant_id, name, status, is_verified, created_at) "
            "VALUES (%s, %s, 'raw', 'inactive', %s, %s)",
            [
                "0" * 31 + "1" if connection.vendor == "sqlite" else "00000000-0000-0000-0000-000000000001",
                "t-raw",
                False,
                "2026-01-01T00:00:00Z",
            ],
        )
        cursor.execute("UPDATE business_company SET tenant_id = 'moved' WHERE tenant_id = %s", [OTHER_TENANT])

    assert (
        counter_rows()
        == counted_rows()
        == {
            (TENANT, "active"): 4,
            (TENANT, "deleted"): 1,
            ("moved", "active"): 3,
            ("t-raw", "inactive"): 1,
        }
    )
    Company.objects.all().delete()
    assert counter_rows() == counted_rows() == {}


def test_a_rolled_back_write_leaves_the_counter_as_it_was(db: None) -> None:
    seed(2)
    before = counter_rows()

    with pytest.raises(RuntimeError), transaction.atomic():
        seed(10)
        Company.objects.filter(tenant_id=TENANT).update(status="inactive")
        raise RuntimeError("the request failed half-way")

    assert counter_rows() == before == counted_rows() == {(TENANT, "active"): 2}


@pytest.mark.postgresql
def test_postgresql_truncate_empties_the_counter(db: None) -> None:
    seed(4)
    CompanyDepartment.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE business_company CASCADE")

    assert counter_rows() == {}


@pytest.mark.postgresql
def test_postgresql_a_bulk_insert_is_one_counter_write_per_key(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO business_company (id, tenant_id, name, status, is_verified, created_at) "
            "SELECT gen_random_uuid(), 't' || (n % 3), 'n' || n, 'active', false, now() FROM generate_series(1, 3000) n"
        )
        cursor.execute(f"SELECT COUNT(*) FROM {COUNTER}")
        (counter_row_count,) = cursor.fetchone()

    assert counter_rows() == counted_rows() == {("t0", "active"): 1000, ("t1", "active"): 1000, ("t2", "active"): 1000}
    assert counter_row_count == 3  # one row per tenant (this backend's slot), not one per company


@pytest.mark.postgresql
def test_postgresql_a_transaction_held_open_never_holds_up_another_writer(transactional_db: None) -> None:
    """A counter row stays locked until its transaction ends: writers must not wait for one another.

    One transaction inserts into the tenant and stays open (an import, a slow request);
    twelve other connections, one after another, insert into the same tenant with a
    lock timeout of one second. Each takes a counter row nobody holds or starts its own.
    """
    held = own_postgresql_connection()
    try:
        held.execute(f"INSERT INTO business_company {RAW_COLUMNS} VALUES {raw_values('held')}")  # not committed
        for n in range(12):
            with own_postgresql_connection() as other:
                other.execute("SET lock_timeout = '1s'")
                other.execute(f"INSERT INTO business_company {RAW_COLUMNS} VALUES {raw_values(f'other {n}')}")
                other.commit()
        held.commit()
    finally:
        held.close()

    assert counter_rows() == counted_rows() == {(TENANT, "active"): 13}


@pytest.mark.postgresql
def test_postgresql_concurrent_writers_to_one_tenant_all_count(transactional_db: None) -> None:
    """Eight threads, each on its own connection, insert into one tenant at once."""
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for batch in range(5):
                with transaction.atomic():
                    Company.objects.bulk_create(
                        Company(tenant_id=TENANT, name=f"w{worker}-{batch}-{n}") for n in range(10)
                    )
                    Company.objects.filter(name=f"w{worker}-{batch}-0").update(status="inactive")
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert counter_rows() == counted_rows() == {(TENANT, "active"): 360, (TENANT, "inactive"): 40}


# -- which queries it answers ------------------------------------------------------------------------------------


def test_it_answers_conditions_on_counted_columns_of_any_shape(db: None) -> None:
    seed(3)
    seed(2, status="inactive")
    seed(1, status="deleted")
    seed(4, OTHER_TENANT)
    companies = Company.objects.filter(tenant_id=TENANT)
    shapes = [
        companies.exclude(status="deleted"),
        companies.filter(status__in=["active", "inactive"]),
        Company.objects.filter(tenant_id__in=[TENANT, OTHER_TENANT], status="active"),
        Company.objects.exclude(tenant_id=TENANT) | Company.objects.filter(status="deleted"),
        Company.objects.filter(status__gt="active"),
        Company.objects.all(),
        Company.objects.filter(tenant_id="nobody"),
    ]

    with CaptureQueriesContext(connection) as captured:
        answers = [counted_total(rows) for rows in shapes]

    assert answers == [rows.count() for rows in shapes] == [5, 5, 7, 5, 3, 10, 0]
    assert not counts_rows(captured.captured_queries)


def test_it_steps_aside_for_conditions_it_cannot_answer(db: None) -> None:
    seed(3)
    refused = [
        Company.objects.filter(tenant_id=TENANT, name="C00001"),  # a column it does not count
        Company.objects.filter(tenant_id=TENANT, departments__name="x"),  # a join
        Company.objects.filter(tenant_id=TENANT).annotate(n=Count("departments")),  # an aggregate annotation
        Company.objects.filter(tenant_id=TENANT).distinct(),
        Company.objects.filter(tenant_id=TENANT)[:2],
        Company.objects.filter(tenant_id=F("name")),  # compares a counted column with another
        Company.objects.filter(tenant_id__in=Company.objects.filter(name="C00001").values("tenant_id")),
        Company.objects.extra(where=["1 = 1"]),
        Company.objects.none(),
        CompanyDepartment.objects.all(),  # a model without a counter
    ]

    assert [counted_total(rows) for rows in refused] == [None] * len(refused)


def test_groups_come_back_in_order_with_empty_groups_left_out(db: None) -> None:
    seed(2, status="inactive")
    seed(3)
    gone = seed(1, status="deleted")[0]
    gone.delete()  # the counter keeps a (tenant, deleted) row that sums to 0

    rows = Company.objects.filter(tenant_id=TENANT).annotate(group=F("status"))

    assert counted_groups(rows, ["group"]) == [("active", 3), ("inactive", 2)]
    assert counted_groups(Company.objects.annotate(group=F("name")), ["group"]) is None  # not counted


# -- through the API ---------------------------------------------------------------------------------------------


def test_total_true_adds_up_the_counter_for_the_tenant_only(client: TestClient, shared_connection: None) -> None:
    seed(7)
    seed(2, status="deleted")
    seed(50, OTHER_TENANT)

    with CaptureQueriesContext(connection) as captured:
        body = client.get("/companies", params={"total": "true", "limit": "1"}, headers=auth()).json()
        other = client.get("/companies", params={"total": "true", "limit": "1"}, headers=auth(OTHER_TENANT)).json()
        filtered = client.get("/companies", params={"total": "true", "status": "deleted"}, headers=auth()).json()
        negated = client.get("/companies", params={"total": "true", "!status": "inactive"}, headers=auth()).json()
        either = client.get(
            "/companies", params=[("total", "true"), ("status", "active"), ("status", "inactive")], headers=auth()
        ).json()

    assert (body["total"], other["total"], negated["total"], either["total"]) == (7, 50, 7, 7)
    assert filtered["total"] == len(filtered["items"]) == 2  # asked for by name, deleted rows are listed
    assert touches_counter(captured.captured_queries) and not counts_rows(captured.captured_queries)


def test_a_filter_on_another_column_is_counted_row_by_row(client: TestClient, shared_connection: None) -> None:
    seed(4)
    seed(4, OTHER_TENANT)

    with CaptureQueriesContext(connection) as captured:
        body = client.get("/companies", params={"total": "true", "name": "C00001"}, headers=auth()).json()
        verified = client.get("/companies", params={"total": "true", "is_verified": "true"}, headers=auth()).json()

    assert (body["total"], verified["total"]) == (1, 0)
    assert counts_rows(captured.captured_queries) and not touches_counter(captured.captured_queries)


def test_an_own_reader_is_counted_row_by_row(client: TestClient, shared_connection: None) -> None:
    """``read.own`` narrows the rows by a subquery the counter knows nothing of: it must not answer."""
    seed(5)
    headers = auth(scopes=["business.companies.read.own"])

    with CaptureQueriesContext(connection) as captured:
        body = client.get("/companies", params={"total": "true"}, headers=headers).json()

    assert body["total"] == 0  # owns none of the five
    assert not touches_counter(captured.captured_queries)


def test_total_estimate_with_a_counter_is_exact(client: TestClient, shared_connection: None, settings: Any) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "EXACT_COUNT_BELOW": 0}
    seed(6)

    with CaptureQueriesContext(connection) as captured:
        body = client.get("/companies", params={"total": "estimate"}, headers=auth()).json()

    assert (body["total"], body["total_estimated"]) == (6, False)
    assert not any(q["sql"].startswith("EXPLAIN") for q in captured.captured_queries)


def test_the_count_aggregate_by_status_reads_the_counter(client: TestClient, shared_connection: None) -> None:
    seed(3)
    seed(2, status="inactive")
    seed(9, status="deleted")
    seed(4, OTHER_TENANT, status="inactive")

    with CaptureQueriesContext(connection) as captured:
        grouped = client.get("/companies/aggregate/count/id", params={"group_by": "status"}, headers=auth()).json()
        whole = client.get("/companies/aggregate/count/id", headers=auth()).json()
        by_year = client.get(
            "/companies/aggregate/count/id", params={"group_by": "created_at__year"}, headers=auth()
        ).json()

    assert grouped["values"] == [{"value": 3, "status": "active"}, {"value": 2, "status": "inactive"}]
    assert whole["values"] == [{"value": 5}]
    assert [entry["value"] for entry in by_year["values"]] == [5]  # a date part: counted row by row
    assert touches_counter(captured.captured_queries) and counts_rows(captured.captured_queries)


def test_a_child_total_under_a_hidden_parent_is_a_404_not_a_count(client: TestClient, shared_connection: None) -> None:
    """A child list counts under its parent's column before the parent is proven: the count must not get out."""
    mine, theirs = seed(1)[0], seed(1, OTHER_TENANT)[0]
    for company in (mine, theirs):
        CompanyDepartment.objects.bulk_create(CompanyDepartment(company=company, name=f"D{n}") for n in range(3))

    own = client.get(f"/companies/{mine.pk}/departments", params={"total": "true", "limit": "1"}, headers=auth())
    hidden = client.get(f"/companies/{theirs.pk}/departments", params={"total": "true"}, headers=auth())
    empty = client.get(f"/companies/{mine.pk}/departments", params={"total": "true", "name": "none"}, headers=auth())

    assert own.json()["total"] == 3 and len(own.json()["items"]) == 1
    assert hidden.status_code == 404 and "total" not in hidden.text
    assert empty.json() == {"items": [], "total": 0}


def test_first_use_looks_counters_up_once(
    client: TestClient, shared_connection: None, django_assert_num_queries: Any
) -> None:
    seed(2)
    forget_counters()
    client.get("/companies", params={"total": "true"}, headers=auth())  # looks up: two catalog queries

    with CaptureQueriesContext(connection) as plain:
        client.get("/companies", headers=auth())
    with django_assert_num_queries(len(plain) + 1):
        client.get("/companies", params={"total": "true"}, headers=auth())


# -- a counter whose triggers are gone ---------------------------------------------------------------------------


def test_a_counter_without_its_triggers_is_not_used(db: None, caplog: pytest.LogCaptureFixture) -> None:
    seed(3)
    names = CounterNames.of("business_company", connection)
    dropped = names.triggers[0]
    with connection.cursor() as cursor:
        on = " ON business_company" if connection.vendor == "postgresql" else ""
        cursor.execute(f"DROP TRIGGER {connection.ops.quote_name(dropped)}{on}")
    forget_counters()
    try:
        with caplog.at_level(logging.WARNING, logger="djfapi.counts"):
            assert counter_of(Company, "default") is None
        seed(2)  # nothing counts these now: the counter would say 3
        assert counted_total(Company.objects.filter(tenant_id=TENANT)) is None
        assert dropped in caplog.text and "COUNT(*)" in caplog.text
    finally:
        forget_counters()  # the test's transaction brings the trigger back


def test_migrating_back_drops_the_counter_and_forward_rebuilds_it(transactional_db: None) -> None:
    seed(3)
    try:
        call_command("migrate", "business", "0004", verbosity=0)
        assert counter_of(Company, "default") is None
        seed(2, OTHER_TENANT)

        call_command("migrate", "business", verbosity=0)  # counts the rows already there

        assert counter_of(Company, "default") is not None
        assert counter_rows() == counted_rows() == {(TENANT, "active"): 3, (OTHER_TENANT, "active"): 2}
    finally:
        call_command("migrate", "business", verbosity=0)
        forget_counters()


def apply(operation: Any, *, backwards: bool = False) -> None:
    """Run a migration operation on the test database, as ``migrate`` would."""
    from django.apps import apps
    from django.db.migrations.state import ProjectState

    state = ProjectState.from_apps(apps)
    with connection.schema_editor() as editor:
        run = operation.database_backwards if backwards else operation.database_forwards
        run("business", editor, state, state)


def test_drop_row_count_drops_it_and_migrating_back_counts_afresh(transactional_db: None) -> None:
    from djfapi.counts import DropRowCount

    seed(2)
    drop = DropRowCount("company", ["tenant_id", "status"])
    try:
        apply(drop)
        assert counter_of(Company, "default") is None
        seed(3, OTHER_TENANT)  # written while nothing counts

        apply(drop, backwards=True)

        assert counter_rows() == counted_rows() == {(TENANT, "active"): 2, (OTHER_TENANT, "active"): 3}
    finally:
        if counter_of(Company, "default") is None:
            apply(drop, backwards=True)


def test_sqlite_rebuilding_the_table_drops_the_triggers_and_create_row_count_mends_it(
    transactional_db: None, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite alters a column by copying the table: the triggers go with the old one."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL alters the table in place and keeps its triggers")
    seed(2)
    old = Company._meta.get_field("name")
    new = Company._meta.get_field("name").clone()
    new.set_attributes_from_name("name")
    new.max_length = 250
    with connection.schema_editor() as editor:
        editor.alter_field(Company, old, new)
    try:
        forget_counters()
        with caplog.at_level(logging.WARNING, logger="djfapi.counts"):
            assert counter_of(Company, "default") is None  # not a stale answer: COUNT(*) again
        assert "without its triggers" in caplog.text
        seed(1)

        apply(CreateRowCount("company", ["tenant_id", "status"]))  # what the docs say to add

        assert counter_of(Company, "default") is not None
        assert counter_rows() == counted_rows() == {(TENANT, "active"): 3}
    finally:
        with connection.schema_editor() as editor:
            editor.alter_field(Company, new, old)
        apply(CreateRowCount("company", ["tenant_id", "status"]))


def test_find_counters_reports_every_model(db: None) -> None:
    found = find_counters()

    assert found["business_company"] is not None and found["business_company"].columns == {"tenant_id", "status"}
    assert found["business_companydepartment"] is None


# -- declaring one -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (["nope"], "has no field 'nope'"),
        (["id"], "is unique"),
        (["tenant_id", "tenant_id"], "named twice"),
        (["departments"], "not a column"),
    ],
)
def test_fields_a_counter_cannot_key_on_are_refused(fields: list[str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        counted_fields(Company, fields)


def test_nullable_columns_are_refused() -> None:
    from tests.testapp.models import Genre

    with pytest.raises(ImproperlyConfigured, match="can be NULL"):
        counted_fields(Genre, ["parent"])


def test_an_operation_without_fields_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="at least one field"):
        CreateRowCount("company", [])


def test_the_operation_writes_itself_into_a_migration() -> None:
    operation = CreateRowCount("company", ["tenant_id", "status"])

    written, imports = MigrationWriter.serialize(operation)

    assert (
        written.startswith("djfapi.counts.operations.CreateRowCount(") and "fields=['tenant_id', 'status']" in written
    )
    assert "import djfapi.counts.operations" in imports
    namespace: dict[str, Any] = {}
    exec(f"{chr(10).join(imports)}\noperation = {written}", namespace)  # the written migration imports and runs
    assert namespace["operation"].deconstruct() == operation.deconstruct()
    assert operation.describe() == "Keep row counts of company by tenant_id, status"

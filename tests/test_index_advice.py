"""The index advisor (djfapi.W110-W116): each list path no index serves is reported with the
exact index to add; a served one is not; silencing works per node and globally; the trigram
advice for icontains (W115) is PostgreSQL's only."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

import pytest
from django.contrib.postgres.indexes import GinIndex, GistIndex, OpClass
from django.core import checks
from django.db import connection, models
from django.db.models import F, Q
from django.db.models.functions import Lower, Upper
from django.test import modify_settings

from djfapi import BaseModel
from djfapi.checks import TREES_TAG
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.index_advice import advice_for_tree, advise, describe, filter_columns, index_name, model_indexes
from testproject.business.models import Company, CompanyDepartment
from tests.testapp.models import Book, Shelf


class CompanyOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime.datetime
    status: str
    is_verified: bool


class DepartmentOut(BaseModel):
    name: str
    budget: str


class ShelfOut(BaseModel):
    name: str


class BookOut(BaseModel):
    title: str
    pages: int


def hints(node: DjangoRouterSchema) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for advice in advise(node):
        found.setdefault(advice.check_id, []).append(advice.index)
    return found


def test_the_demo_tree_declares_every_index_the_advisor_asks_for() -> None:
    from testproject.api import companies

    assert advice_for_tree(companies) == []


def test_the_tenant_column_leads_and_the_default_order_with_its_tie_breaker_follows() -> None:
    served = DjangoRouterSchema(
        name="companies", model=Company, get=CompanyOut, pagination_options={"default_order_by": ["name"]}
    )
    unserved = DjangoRouterSchema(
        name="companies", model=Company, get=CompanyOut, pagination_options={"default_order_by": ["-created_at"]}
    )

    assert filter_columns(served) == ("tenant_id",)
    assert "djfapi.W110" not in hints(served)
    # (tenant_id, created_at) exists, but not with the primary key after it: a cursor could not use it.
    assert hints(unserved)["djfapi.W110"] == [
        "models.Index(fields=['tenant_id', '-created_at', 'id'], name='company_tenant_id_c_f4196b_idx')"
    ]


def test_a_backward_scan_serves_the_reversed_order_but_not_a_mixed_one() -> None:
    reversed_order = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        order_fields=["name", "id"],
        pagination_options={"default_order_by": ["-name", "-id"]},
    )
    mixed = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        order_fields=["name", "id"],
        pagination_options={"default_order_by": ["-name", "id"]},
    )

    assert "djfapi.W110" not in hints(reversed_order)
    assert hints(mixed)["djfapi.W110"][0].startswith("models.Index(fields=['tenant_id', '-name', 'id']")


def test_with_a_soft_delete_the_order_index_holds_the_status_last_in_either_direction() -> None:
    """Every list compares ``status``: the index that orders the page must hold it, or a page
    read by its keys (deep offsets, substring filters) would leave the index for each row."""
    soft = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        delete_status="deleted",
        order_fields=["name", "id"],
        pagination_options={"default_order_by": ["name"]},
    )
    backwards = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        delete_status="deleted",
        order_fields=["name", "id"],
        pagination_options={"default_order_by": ["-name", "-id"]},
    )
    unserved = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        delete_status="deleted",
        pagination_options={"default_order_by": ["-created_at"]},
    )

    assert "djfapi.W110" not in hints(soft)  # the demo's (tenant_id, name, id, status)
    assert "djfapi.W110" not in hints(backwards)  # read backwards, status's direction is no matter
    assert hints(unserved)["djfapi.W110"] == [
        "models.Index(fields=['tenant_id', '-created_at', 'id', 'status'], name='company_tenant_id_c_04676e_idx')"
    ]


def test_a_status_the_row_filter_compares_leads_and_is_not_asked_for_twice() -> None:
    node = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        delete_status="deleted",
        objects_filter=lambda access: Q(tenant_id="t", status="active"),
        pagination_options={"default_order_by": ["-created_at"]},
    )

    (advice,) = hints(node)["djfapi.W110"]

    assert advice.startswith("models.Index(fields=['status', 'tenant_id', '-created_at', 'id'],")


def test_declared_filter_order_and_aggregate_fields_are_checked() -> None:
    books = DjangoRouterSchema(
        name="books",
        model=Book,
        get=BookOut,
        filter_fields=["title", "isbn"],
        order_fields=["pages"],
        aggregate_fields=["pages"],
        aggregate_group_by=["title"],
    )

    found = hints(books)

    assert found["djfapi.W111"] == [f"models.Index(fields=['title'], name={index_name(Book, ['title'])!r})"]
    assert found["djfapi.W112"] == [f"models.Index(fields=['pages'], name={index_name(Book, ['pages'])!r})"]
    assert "djfapi.W113" not in found  # the indexes advised above serve the aggregate too
    # unique: its own index serves equality (W115/W116, PostgreSQL's substring advice, want it all the same)
    btree = {check: hints_ for check, hints_ in found.items() if check not in {"djfapi.W115", "djfapi.W116"}}
    assert not any("isbn" in hint for hints_ in btree.values() for hint in hints_)


def test_a_child_leads_with_its_parent_key_and_soft_deletes_want_status_for_the_count() -> None:
    companies = DjangoRouterSchema(
        name="companies",
        model=Company,
        get=CompanyOut,
        delete_status="deleted",
        pagination_options={"default_order_by": ["name"]},
        children=[
            DjangoRouterSchema(
                name="departments", model=CompanyDepartment, get=DepartmentOut, aggregate_fields=["budget"]
            )
        ],
    )
    departments = companies.children[0]

    assert filter_columns(departments) == ("company",)
    assert advise(departments) == []  # (company, id) and (company, budget) are declared by the demo
    assert "djfapi.W114" not in hints(companies)  # (tenant_id, status) is declared by the demo


def test_a_row_filter_is_probed_for_its_equality_columns_and_one_that_fails_adds_none() -> None:
    def by_tenant_and_flag(access: object) -> Q:
        return Q(tenant_id="x") & Q(is_verified=True) & Q(name__icontains="a")

    def needs_a_real_caller(access: object) -> Q:
        raise LookupError("no such user")

    probed = DjangoRouterSchema(name="companies", model=Company, get=CompanyOut, objects_filter=by_tenant_and_flag)
    failing = DjangoRouterSchema(name="companies", model=Company, get=CompanyOut, objects_filter=needs_a_real_caller)

    assert filter_columns(probed) == ("tenant_id", "is_verified")
    assert filter_columns(failing) == ()


def test_manage_py_check_reports_it_and_silenced_checks_silence_it_per_node() -> None:
    loud = DjangoRouterSchema(name="books", model=Book, get=BookOut, filter_fields=["title"])
    quiet = DjangoRouterSchema(
        name="books", model=Book, get=BookOut, filter_fields=["title"], silenced_checks=["djfapi.W111"]
    )
    inherited = DjangoRouterSchema(
        name="shelves",
        model=Shelf,
        get=ShelfOut,
        silenced_checks=["djfapi.W110"],
        children=[
            DjangoRouterSchema(
                name="books", model=Book, get=BookOut, pagination_options={"default_order_by": ["title"]}
            )
        ],
    )

    messages = [m for m in checks.run_checks(tags=[TREES_TAG]) if m.id == "djfapi.W111"]

    loud_messages = [m for m in messages if m.obj is loud]
    assert len(loud_messages) == 1
    assert "models.Index(fields=['title']" in loud_messages[0].hint
    assert "GET /books" in loud_messages[0].msg
    assert not [m for m in messages if m.obj is quiet]
    # the child's (shelf, title, id) is silenced by its parent
    assert [a.index for a in advise(inherited.children[0])] == [
        f"models.Index(fields=['shelf', 'title', 'id'], name={index_name(Book, ['shelf', 'title', 'id'])!r})"
    ]
    assert [a for a in advice_for_tree(inherited) if a.check_id == "djfapi.W110"] == []


def test_settings_silence_an_id_everywhere(settings: Any) -> None:
    loud = DjangoRouterSchema(name="books", model=Book, get=BookOut, filter_fields=["title"])
    settings.SILENCED_SYSTEM_CHECKS = ["djfapi.W111"]

    messages = [m for m in checks.run_checks(tags=[TREES_TAG]) if m.obj is loud]

    assert messages and all(m.is_silenced() for m in messages if m.id == "djfapi.W111")


def test_building_the_router_in_debug_logs_the_advice(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.DEBUG = True
    with caplog.at_level(logging.WARNING, logger="djfapi.indexes"):
        DjangoRouterSchema(name="books", model=Book, get=BookOut, filter_fields=["title"]).router  # noqa: B018
        DjangoRouterSchema(name="books", model=Book, get=BookOut, filter_fields=["isbn"]).router  # noqa: B018

    # On PostgreSQL title__icontains and isbn__icontains want a trigram index too (a unique b-tree serves no substring),
    # and the order's index holding UPPER(title) and UPPER(isbn).
    on_postgresql = connection.vendor == "postgresql"
    substring = ["djfapi.W116", "djfapi.W111", "djfapi.W115", "djfapi.W116", "djfapi.W115"]
    expected = substring if on_postgresql else ["djfapi.W111"]
    logged = {r.getMessage().split(":")[0]: r.getMessage() for r in caplog.records}
    assert [r.getMessage().split(":")[0] for r in caplog.records] == expected
    assert "models.Index(fields=['title']" in logged["djfapi.W111"]


def test_outside_debug_building_the_router_logs_nothing(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.DEBUG = False
    with caplog.at_level(logging.WARNING, logger="djfapi.indexes"):
        DjangoRouterSchema(name="books", model=Book, get=BookOut, filter_fields=["title"]).router  # noqa: B018

    assert caplog.records == []


def test_index_names_fit_djangos_limit_and_stay_apart() -> None:
    long_a = index_name(CompanyDepartment, ["company", "some_very_long_field_name_a"])
    long_b = index_name(CompanyDepartment, ["company", "some_very_long_field_name_b"])

    assert len(long_a) <= 30 and len(long_b) <= 30 and long_a != long_b
    assert index_name(Company, ["tenant_id", "name", "id"]) == "company_tenant_id_name_id_idx"


@pytest.mark.parametrize("ids", [["djfapi.W999"], ["djfapi.w110"], ["djfapi.W001"], "djfapi.W110"])
def test_silenced_checks_refuses_what_no_node_check_is(ids: Any) -> None:
    with pytest.raises(SchemaDefinitionError, match="silenced_checks"):
        DjangoRouterSchema(name="books", model=Book, get=BookOut, silenced_checks=ids)


# -- djfapi.W115: trigram indexes for icontains, PostgreSQL only ----------------------------------------------------


class TrigramListing(models.Model):
    """Never created (unmanaged): the advisor reads only its declared indexes."""

    name = models.CharField(max_length=100)  # GIN trigram on UPPER(name): what icontains compares
    title = models.CharField(max_length=100)  # GiST trigram on UPPER(title): serves it too
    code = models.CharField(max_length=100)  # trigram on code itself: icontains compares UPPER(code)
    city = models.CharField(max_length=100)  # a partial trigram index: not for every row
    note = models.TextField()  # a b-tree only
    status = models.CharField(max_length=16, choices=[("a", "A"), ("b", "B")])  # exact matches only

    class Meta:
        app_label = "testapp"
        managed = False
        indexes = [
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="listing_name_trgm_idx"),
            GistIndex(OpClass(Upper("title"), name="gist_trgm_ops"), name="listing_title_trgm_idx"),
            GinIndex(OpClass("code", name="gin_trgm_ops"), name="listing_code_trgm_idx"),
            GinIndex(
                OpClass(Upper("city"), name="gin_trgm_ops"), condition=Q(status="a"), name="listing_city_trgm_idx"
            ),
            models.Index(fields=["note"], name="listing_note_idx"),
        ]


class ListingOut(BaseModel):
    name: str
    title: str
    code: str
    city: str
    note: str
    status: str


def trigram_hints(node: DjangoRouterSchema, vendor: str) -> list[str]:
    return [advice.index for advice in advise(node, vendor=vendor) if advice.check_id == "djfapi.W115"]


def listings(**options: Any) -> DjangoRouterSchema:
    fields = ["name", "title", "code", "city", "note", "status"]
    return DjangoRouterSchema(name="listings", model=TrigramListing, get=ListingOut, filter_fields=fields, **options)


def test_postgresql_wants_a_trigram_index_on_upper_of_each_text_filter() -> None:
    node = listings()

    # name and title are served; code's index is not on UPPER(code), city's is partial, note's a b-tree;
    # status is a choice: it has no __icontains filter.
    assert trigram_hints(node, "postgresql") == [
        "GinIndex(OpClass(Upper('code'), name='gin_trgm_ops'), name='trigramlisting_code_trgm_idx')",
        "GinIndex(OpClass(Upper('city'), name='gin_trgm_ops'), name='trigramlisting_city_trgm_idx')",
        "GinIndex(OpClass(Upper('note'), name='gin_trgm_ops'), name='trigramlisting_note_trgm_idx')",
    ]


def test_no_trigram_advice_on_other_databases_or_for_undeclared_or_related_filters() -> None:
    undeclared = DjangoRouterSchema(name="books", model=Book, get=BookOut)
    related = DjangoRouterSchema(name="books", model=Book, get=BookOut, filter_fields=["shelf__name"])

    assert trigram_hints(listings(), "sqlite") == []
    assert trigram_hints(undeclared, "postgresql") == []
    assert trigram_hints(related, "postgresql") == []


def test_the_trigram_advice_follows_the_models_database_and_is_silenced_per_node() -> None:
    loud = DjangoRouterSchema(name="books", model=Book, get=BookOut, filter_fields=["title"])
    quiet = DjangoRouterSchema(
        name="books", model=Book, get=BookOut, filter_fields=["title"], silenced_checks=["djfapi.W115"]
    )
    on_postgresql = connection.vendor == "postgresql"

    messages = [m for m in checks.run_checks(tags=[TREES_TAG]) if m.id == "djfapi.W115"]

    assert [a.check_id for a in advise(quiet) if a.check_id == "djfapi.W115"] == (
        ["djfapi.W115"] if on_postgresql else []
    )
    assert [a for a in advice_for_tree(quiet) if a.check_id == "djfapi.W115"] == []
    assert not [m for m in messages if m.obj is quiet]
    loud_messages = [m for m in messages if m.obj is loud]
    assert len(loud_messages) == (1 if on_postgresql else 0)
    if on_postgresql:
        assert (
            "GinIndex(OpClass(Upper('title'), name='gin_trgm_ops'), name='book_title_trgm_idx')"
            in loud_messages[0].hint
        )
        assert "TrigramExtension()" in loud_messages[0].hint
        assert "ALTER INDEX book_title_trgm_idx ALTER COLUMN 1 SET STATISTICS 1000" in loud_messages[0].hint
        assert "title__icontains" in loud_messages[0].msg


def test_the_demo_silences_the_trigram_advice_it_cannot_declare_on_sqlite() -> None:
    from testproject.api import companies, directory

    assert trigram_hints(companies, "postgresql") == [
        "GinIndex(OpClass(Upper('name'), name='gin_trgm_ops'), name='company_name_trgm_idx')"
    ]
    assert "djfapi.W115" in companies.silenced_checks and "djfapi.W115" in directory.silenced_checks


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm is PostgreSQL's")
def test_postgresql_plans_icontains_with_the_advised_index(db: None) -> None:
    from djfapi.routing.index_advice import has_trigram_index

    advised = GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="company_name_trgm_idx")
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # TrigramExtension(); rolled back with the test
    # OpClass indexes are built by the django.contrib.postgres app (what the hint says to install).
    with modify_settings(INSTALLED_APPS={"append": "django.contrib.postgres"}), connection.schema_editor() as editor:
        editor.add_index(Company, advised)
    names = [f"Company {n}" + (" (Acme)" if n % 50 == 0 else "") for n in range(500)]
    Company.objects.bulk_create(Company(tenant_id=f"t{n % 20}", name=name) for n, name in enumerate(names))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE business_company")
        cursor.execute("SET LOCAL enable_seqscan = off")  # 500 rows: show which index it would use

    matches = Company.objects.filter(name__icontains="acme")  # UPPER("name"::text) LIKE UPPER('%acme%')

    assert "company_name_trgm_idx" in matches.explain()
    assert matches.count() == 10
    assert not has_trigram_index(Company, "name")  # the demo does not declare it (it runs on SQLite too)


# -- djfapi.W116: UPPER(column) in the order's index, PostgreSQL only -------------------------------------------------


class SubstringListing(models.Model):
    """Never created (unmanaged): the advisor reads only its declared indexes."""

    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        app_label = "testapp"
        managed = False
        indexes = [
            # W110's index for the default order -created_at, and one holding UPPER(name) for the order by name
            models.Index(fields=["tenant_id", "-created_at", "id"], name="substring_created_idx"),
            models.Index(F("tenant_id"), F("name"), F("id"), Upper("name"), name="substring_name_upper_idx"),
            # an expression the advisor cannot compare ends what it reads of an index
            models.Index(F("tenant_id"), Lower("name"), F("created_at"), name="substring_lower_idx"),
        ]


class SubstringOut(BaseModel):
    tenant_id: str
    name: str
    created_at: datetime.datetime


def by_tenant(access: object) -> Q:
    return Q(tenant_id="t")


def substring_node(*order: str, **options: Any) -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="listings",
        model=SubstringListing,
        get=SubstringOut,
        objects_filter=by_tenant,
        filter_fields=["name", "tenant_id"],
        pagination_options={"default_order_by": list(order)},
        **options,
    )


def order_hints(node: DjangoRouterSchema, vendor: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for advice in advise(node, vendor=vendor):
        if advice.check_id in {"djfapi.W110", "djfapi.W116"}:
            found.setdefault(advice.check_id, []).append(advice.index)
    return found


def test_the_advisor_reads_an_expression_index_by_its_columns_and_upper_entries() -> None:
    assert model_indexes(SubstringListing) == [
        (("tenant_id", False), ("created_at", True), ("id", False)),
        (("tenant_id", False), ("name", False), ("id", False), ("upper(name)", False)),
        (("tenant_id", False),),  # Lower(name): not an entry the advisor compares; what follows is not read
        (("id", False),),  # the primary key
    ]


def test_postgresql_wants_upper_of_the_text_filter_in_the_orders_index_in_place_of_w110s() -> None:
    by_name = substring_node("name")
    newest = substring_node("-created_at")

    assert order_hints(by_name, "postgresql") == {}
    # W110's index is there, but a walk newest first computes UPPER(name) for each entry: one index replaces it
    assert order_hints(newest, "postgresql") == {
        "djfapi.W116": [
            "models.Index(F('tenant_id'), F('created_at').desc(), F('id'), Upper('name'), "
            f"name={index_name(SubstringListing, ['tenant_id', '-created_at', 'id', 'upper(name)'])!r})"
        ]
    }
    # tenant_id is compared for equality by the row filter: it is not tested as a substring
    (advice,) = [a for a in advise(newest, vendor="postgresql") if a.check_id == "djfapi.W116"]
    assert advice.fields == ("tenant_id", "-created_at", "id", "upper(name)")


def test_other_databases_get_w110_alone_and_so_does_a_node_that_silences_w116() -> None:
    unserved = substring_node("created_at", "name")  # no index gives this order

    expected_w110 = [
        f"models.Index(fields=['tenant_id', 'created_at', 'name', 'id'], "
        f"name={index_name(SubstringListing, ['tenant_id', 'created_at', 'name', 'id'])!r})"
    ]
    assert order_hints(unserved, "sqlite") == {"djfapi.W110": expected_w110}
    # on PostgreSQL one index serves both: W116's, and W110 has nothing to add
    assert list(order_hints(unserved, "postgresql")) == ["djfapi.W116"]
    quiet = substring_node("created_at", "name", silenced_checks=["djfapi.W116"])
    assert order_hints(quiet, "postgresql") == {"djfapi.W110": expected_w110}
    assert [a.check_id for a in advice_for_tree(quiet) if a.check_id == "djfapi.W116"] == []


def test_the_w116_hint_names_the_index_and_what_it_replaces() -> None:
    (advice,) = [a for a in advise(substring_node("-created_at"), vendor="postgresql") if a.check_id == "djfapi.W116"]

    message, hint = describe(advice)

    assert "UPPER(column)" in message and "the filter 'name__icontains'" in message
    assert hint.startswith(f"Add {advice.index} to SubstringListing.Meta.indexes in place of the default order's index")
    assert "silenced_checks=['djfapi.W116']" in hint

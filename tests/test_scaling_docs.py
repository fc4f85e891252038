"""The examples of docs/scaling.md (docs_src/scaling/*) do what the page says."""

from __future__ import annotations

import pytest
from django.contrib.postgres.operations import TrigramExtension
from django.test import modify_settings
from fastapi.testclient import TestClient

from djfapi.routing.index_advice import advice_for_tree, advise, has_trigram_index, model_indexes
from testproject.business.models import Company, CompanyDepartment
from tests.helpers import TENANT, auth
from tests.test_docs_examples import ROOT, load

READ_ANY = ["business.companies.read.any"]


def test_the_advice_example_prints_the_index_the_page_shows(capsys: pytest.CaptureFixture[str]) -> None:
    load("scaling/advice", fresh=True)

    printed = capsys.readouterr().out.splitlines()

    assert printed == [
        "djfapi.W110 models.Index(fields=['tenant_id', '-created_at', 'id'], name='company_tenant_id_c_f4196b_idx')"
    ]


def test_the_large_lists_example_bounds_offsets_marks_estimates_and_silences_its_child(
    shared_connection: None,
) -> None:
    module = load("scaling/large_lists")
    client = TestClient(module.app)
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    for budget in (5, 7, 6):
        CompanyDepartment.objects.create(company=company, name=f"D{budget}", budget=budget)
    headers = auth(scopes=READ_ANY)

    assert client.get("/companies?offset=1000", headers=headers).json() == {"items": []}
    refused = client.get("/companies?offset=1001", headers=headers)
    assert refused.status_code == 422
    assert "cursor" in refused.json()["detail"][0]["msg"]
    estimate = client.get("/companies?total=estimate", headers=headers).json()
    assert (estimate["total"], estimate["total_estimated"]) == (1, False)  # few rows: counted exactly
    departments = client.get(f"/companies/{company.pk}/departments", headers=headers).json()["items"]
    assert [d["name"] for d in departments] == ["D7", "D6", "D5"]

    child = module.companies.children[0]
    assert [a.check_id for a in advise(child)] == ["djfapi.W110"]  # what it would say ...
    assert advice_for_tree(module.companies) == []  # ... silenced for that node


def test_the_trigram_example_prints_the_advice_and_declares_what_it_asks_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = load("scaling/trigram", fresh=True)

    printed = capsys.readouterr().out.splitlines()

    advised = "GinIndex(OpClass(Upper('name'), name='gin_trgm_ops'), name='company_name_trgm_idx')"
    assert printed == [f"djfapi.W115 {advised}"]
    assert f"djfapi.W115 {advised}" in (ROOT / "docs/scaling.md").read_text()
    # What the example declares is what the advice asks for, and what the advisor accepts.
    (declared,) = module.TrigramIndexed._meta.indexes
    extension, add_index, statistics = module.Migration.operations
    assert declared.deconstruct() == add_index.index.deconstruct()
    assert has_trigram_index(module.TrigramIndexed, "name") and declared.name == "company_name_trgm_idx"
    assert isinstance(extension, TrigramExtension) and extension.name == "pg_trgm"
    assert statistics.sql == f"ALTER INDEX {declared.name} ALTER COLUMN 1 SET STATISTICS 1000"


@pytest.mark.postgresql
def test_the_trigram_migration_creates_the_index_with_the_statistics_and_reverses(db: None) -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    module = load("scaling/trigram")
    state = MigrationExecutor(connection).loader.project_state()
    states = [state]
    for operation in module.Migration.operations:
        after = states[-1].clone()
        operation.state_forwards("business", after)
        states.append(after)

    def statistics_target() -> int | None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT attstattarget FROM pg_attribute WHERE attrelid = to_regclass('company_name_trgm_idx')"
            )
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    # as the page says: "django.contrib.postgres" in INSTALLED_APPS teaches Django to write the operator class
    with modify_settings(INSTALLED_APPS={"append": "django.contrib.postgres"}), connection.schema_editor() as editor:
        for operation, before, after in zip(module.Migration.operations, states[:-1], states[1:], strict=True):
            operation.database_forwards("business", editor, before, after)
    assert statistics_target() == 1000

    with connection.schema_editor() as editor:
        backwards = list(zip(module.Migration.operations, states[:-1], states[1:], strict=True))[::-1]
        for operation, before, after in backwards:
            operation.database_backwards("business", editor, after, before)
    assert statistics_target() is None  # the index is gone, its statistics with it


def test_the_substring_example_prints_the_advice_and_declares_what_it_asks_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = load("scaling/substring", fresh=True)

    printed = capsys.readouterr().out.splitlines()

    advised = (
        "models.Index(F('tenant_id'), F('created_at').desc(), F('id'), Upper('name'), "
        "name='company_tenant_id_c_50caeb_idx')"
    )
    assert printed == [f"djfapi.W116 {advised}"]
    assert f"djfapi.W116 {advised}" in (ROOT / "docs/scaling.md").read_text()
    # What the example declares is what the advice asks for, read back as the advisor reads indexes.
    assert model_indexes(module.SubstringIndexed) == [
        (("tenant_id", False), ("created_at", True), ("id", False), ("upper(name)", False))
    ]
    (declared,) = module.SubstringIndexed._meta.indexes
    assert declared.name == "company_tenant_id_c_50caeb_idx"

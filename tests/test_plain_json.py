"""Rows written as JSON as they are give the bytes the schema gives (``djfapi.orm.plain``).

Every read and write route of the demo is rendered both ways from the same rows of a
real database — the shortcut and the page model — for a caller who sees every field
and one who does not see the salaries; the bytes must be equal, or ETags would change
with the path a body took. Then the schemas the shortcut must refuse, each with the
reason a validated value would be written differently, and what such a route answers.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any

import pytest
from django.db.models import Model
from fastapi.testclient import TestClient
from pydantic import ConfigDict, Field, PlainSerializer, field_serializer, field_validator

from djfapi import BaseModel
from djfapi.orm.mapping import mapping_for
from djfapi.orm.rows import values_reader
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.routing.responses import data_body, render_list
from djfapi.schemas.access import Access, AccessToken
from djfapi.security.jwt import JWTToken
from testproject.api import companies
from testproject.business.models import Employee, EmployeeSkill, Skill
from testproject.seed import DEMO_TENANT, seed_demo_data
from tests.helpers import auth
from tests.test_plan import make_client
from tests.testapp.models import Ledger, Note

READ_ANY = "business.companies.read.any"


def _access(*granted: str) -> Access:
    claims = {"sub": "u", "exp": int(time.time()) + 60, "ten": DEMO_TENANT, "aud": list(granted)}
    return Access(token=AccessToken(**claims), granted_scopes=frozenset(granted))


def _nodes(node: DjangoRouterSchema) -> Iterator[DjangoRouterSchema]:
    yield node
    for child in node.children:
        yield from _nodes(child)


@pytest.fixture
def demo(db: None) -> None:
    seed_demo_data()
    employee = Employee.objects.filter(company__tenant_id=DEMO_TENANT).first()
    assert employee is not None
    for name in ("Python", "Django"):
        skill = Skill.objects.create(company=employee.company, name=name)
        EmployeeSkill.objects.create(employee=employee, skill=skill)


@pytest.mark.parametrize("node", list(_nodes(companies)), ids=lambda node: node.name)
@pytest.mark.parametrize("granted", [(READ_ANY,), ()], ids=["every field", "no salaries"])
def test_every_demo_route_renders_the_same_bytes_both_ways(
    demo: None, node: DjangoRouterSchema, granted: tuple[str, ...]
) -> None:
    access = _access(*granted)
    for mapping, reader in ((node.list_mapping, node.list_reader), (node.get_mapping, node.get_reader)):
        assert reader is not None and reader.plain, f"{node.name}: the demo's schemas all render as they are"
        rows = reader.read(node.model._default_manager.order_by("pk"))
        assert rows, f"{node.name}: the seed has rows"
        for options in ({}, {"total": len(rows)}, {"cursor": True, "next_cursor": "abc"}, {"status_code": 201}):
            plain = render_list(mapping, rows, access, plain=True, **options)  # type: ignore[arg-type]
            validated = render_list(mapping, rows, access, plain=False, **options)  # type: ignore[arg-type]
            assert plain.body == validated.body, (node.name, options)
        for row in rows:
            assert data_body(mapping, row, access, plain=True) == data_body(mapping, row, access, plain=False)


def test_hidden_fields_are_left_out_at_every_depth(demo: None) -> None:
    employees = next(node for node in _nodes(companies) if node.name == "employees")
    reader = employees.list_reader
    assert reader is not None
    rows = reader.read(Employee.objects.order_by("pk"))

    body = render_list(employees.list_mapping, rows, _access(), plain=True).body

    assert b'"salary"' not in body
    assert b'"skill_ids"' in body


def test_an_etag_read_by_the_shortcut_matches_one_computed_from_the_instance(client: TestClient, demo: None) -> None:
    # If-Match compares with a body rendered from the instance, through the schema
    company = companies.model.objects.filter(tenant_id=DEMO_TENANT).order_by("name").first()
    assert company is not None
    headers = auth(tenant=DEMO_TENANT)
    read = client.get(f"/companies/{company.pk}", headers=headers)

    stale = client.patch(f"/companies/{company.pk}", json={"name": "X"}, headers={**headers, "If-Match": '"0"'})
    current = client.patch(
        f"/companies/{company.pk}", json={"name": "Renamed"}, headers={**headers, "If-Match": read.headers["etag"]}
    )

    assert stale.status_code == 412
    assert current.status_code == 200, current.text


# -- schemas the shortcut refuses ----------------------------------------------------------


class LedgerAsFloat(BaseModel):
    id: int
    amount: float  # a Decimal validated into a float is written as a number


class LedgerAsDecimal(BaseModel):
    id: int
    amount: Decimal


class LedgerAliased(BaseModel):
    id: int
    amount: Decimal = Field(serialization_alias="value")


class LedgerValidated(BaseModel):
    id: int
    amount: Decimal

    @field_validator("amount")
    @classmethod
    def rounded(cls, value: Decimal) -> Decimal:
        return value.quantize(Decimal("1"))


class LedgerSerialized(BaseModel):
    id: int
    amount: Decimal

    @field_serializer("amount")
    def as_cents(self, value: Decimal) -> int:
        return int(value * 100)


class LedgerAnnotated(BaseModel):
    id: int
    amount: Annotated[Decimal, PlainSerializer(float)]


class LedgerStripped(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    id: int
    tenant_id: str


class NoteUpdatedAsDate(BaseModel):
    id: int
    updated_at: datetime.date  # a datetime column


class NoteNotOptional(BaseModel):
    id: int
    title: str
    body: str


@pytest.mark.parametrize(
    ("schema", "model", "plain"),
    [
        (LedgerAsDecimal, Ledger, True),
        (LedgerAsFloat, Ledger, False),
        (LedgerAliased, Ledger, False),
        (LedgerValidated, Ledger, False),
        (LedgerSerialized, Ledger, False),
        (LedgerAnnotated, Ledger, False),
        (LedgerStripped, Ledger, False),
        (NoteUpdatedAsDate, Note, False),
        (NoteNotOptional, Note, True),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_the_shortcut_is_taken_only_where_values_pass_unchanged(
    schema: type[BaseModel], model: type[Model], plain: bool
) -> None:
    reader = values_reader(mapping_for(schema, model))

    assert reader is not None
    assert reader.plain is plain


class EmployeeNullableSalaryRequired(BaseModel):
    id: Any
    salary: Decimal  # the column is nullable: a None must not slip through unvalidated


def test_a_nullable_column_needs_an_optional_field() -> None:
    reader = values_reader(mapping_for(EmployeeNullableSalaryRequired, Employee))

    assert reader is None or not reader.plain


@pytest.fixture
def ledgers(shared_connection: None) -> Iterator[TestClient]:
    scopes = SecurityScopes(get=["tests.plain.read"], delete=["tests.plain.write"])
    tree = DjangoRouterSchema(
        name="ledgers", model=Ledger, get=LedgerAsFloat, security=JWTToken(), security_scopes=scopes
    )
    with make_client(tree) as client:
        client.headers.update(auth(scopes=["tests.plain.read"]))
        yield client


def test_a_refused_schema_is_still_rendered_through_its_model(ledgers: TestClient) -> None:
    Ledger.objects.create(tenant_id="tenant-a", amount=Decimal("1.5000"))

    response = ledgers.get("/ledgers")

    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["amount"] == 1.5  # a number, as the float field says: not "1.5000"

"""Reading rows as values: the same data as reading instances, without the instances."""

from __future__ import annotations

from decimal import Decimal

import pytest

from djfapi import BaseModel, Field
from djfapi.orm.mapping import mapping_for
from djfapi.orm.plan import QueryPlan, derive_plan
from djfapi.orm.reading import read
from djfapi.orm.rows import values_reader
from djfapi.routing.django import DjangoRouterSchema
from testproject.business import schemas
from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment, CompanyDepartmentTeam, Employee
from tests.testapp.models import Book, Chapter, Shelf


class ChapterOut(BaseModel):
    number: int
    title: str


class BookWithShelf(BaseModel):
    id: int
    title: str
    shelf_name: str = Field(orm_field="shelf.name")  # through a foreign key
    chapters: list[ChapterOut]


class BookWithMethod(BaseModel):
    id: int
    shouting: str = Field(orm_method="title_upper")


def both_ways(schema: type[BaseModel], queryset: object) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    mapping = mapping_for(schema, queryset.model)  # type: ignore[attr-defined]
    reader = values_reader(mapping)
    assert reader is not None
    by_values = reader.read(queryset)  # type: ignore[arg-type]
    by_instances = [read(mapping, row) for row in derive_plan(mapping).apply(queryset)]  # type: ignore[arg-type]
    return by_values, by_instances


@pytest.mark.django_db
def test_the_demo_company_reads_the_same_both_ways() -> None:
    for index in range(3):
        company = Company.objects.create(tenant_id="t", name=f"C{index}")
        for number in range(index + 1):
            CompanyDepartment.objects.create(company=company, name=f"D{number}", budget=Decimal("10.25") * number)
        CompanyCostcenter.objects.create(company=company, code=f"K{index}", name="k")
    queryset = Company.objects.order_by("name", "pk")

    by_values, by_instances = both_ways(schemas.Company, queryset)

    assert by_values == by_instances
    assert [len(row["departments"]) for row in by_values] == [1, 2, 3]  # type: ignore[arg-type]


@pytest.mark.django_db
def test_nested_lists_two_levels_deep_and_foreign_key_ids_read_the_same() -> None:
    company = Company.objects.create(tenant_id="t", name="C")
    department = CompanyDepartment.objects.create(company=company, name="D")
    CompanyDepartmentTeam.objects.create(department=department, name="T1", size=3)
    CompanyDepartmentTeam.objects.create(department=department, name="T2")
    Employee.objects.create(company=company, user_id="u", department=department, hired_at="2020-01-01")
    Employee.objects.create(company=company, user_id="v", department=None, hired_at="2021-01-01")

    departments = both_ways(schemas.Department, CompanyDepartment.objects.order_by("pk"))
    employees = both_ways(schemas.Employee, Employee.objects.order_by("user_id"))

    assert departments[0] == departments[1]
    assert employees[0] == employees[1]
    assert [e["department_id"] for e in employees[0]] == [department.pk, None]


@pytest.mark.django_db
def test_paths_through_foreign_keys_and_meta_ordering_read_the_same() -> None:
    shelf = Shelf.objects.create(code="S", tenant_id="t", name="Main")
    book = Book.objects.create(shelf=shelf, title="Dune", isbn="1")
    Chapter.objects.create(book=book, number=2, title="two")
    Chapter.objects.create(book=book, number=1, title="one")

    by_values, by_instances = both_ways(BookWithShelf, Book.objects.all())

    assert by_values == by_instances
    assert by_values[0]["shelf_name"] == "Main"
    assert [c["number"] for c in by_values[0]["chapters"]] == [1, 2]  # type: ignore[index]


def test_schemas_that_need_instances_have_no_values_reader() -> None:
    assert values_reader(mapping_for(BookWithMethod, Book)) is None
    assert values_reader(mapping_for(schemas.Company, Company)) is not None


def test_a_hand_made_query_plan_keeps_reading_instances() -> None:
    derived = DjangoRouterSchema(name="companies", model=Company, get=schemas.Company)
    hand_made = DjangoRouterSchema(name="companies", model=Company, get=schemas.Company, query_plan=QueryPlan())

    assert derived.list_reader is not None and derived.get_reader is not None
    assert hand_made.list_reader is None and hand_made.get_reader is None

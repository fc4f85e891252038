"""Query plans: what ``derive_plan`` joins and prefetches, how ``query_plan=`` replaces or
adjusts it, and the proof that reads cost a fixed number of queries whatever the number
of rows (no N+1), counted with ``django_assert_num_queries`` through real HTTP requests.

Each count is stated in the test. Every read is "1 query for the rows + 1 per nested
list" (+1 for the ancestor check under a parent); every write also pays its SAVEPOINT
and RELEASE (the test's transaction is open, so ``atomic`` nests), its own statements,
and the read-back through the plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.orm.mapping import mapping_for
from djfapi.orm.plan import QueryPlan, derive_plan
from djfapi.routing.django import DjangoRouterSchema
from testproject.api import companies
from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment, CompanyDepartmentTeam
from tests.helpers import TENANT, auth
from tests.testapp.models import Book, Chapter, Exhibit, Genre, Room, Shelf

# -- schemas -------------------------------------------------------------------------


class ChapterOut(BaseModel):
    number: int
    title: str


class BookWithChapters(BaseModel):
    id: int
    title: str
    chapters: list[ChapterOut]


class ShelfWithBooks(BaseModel):
    code: str
    name: str
    books: list[BookWithChapters]


class ShelfOut(BaseModel):
    code: str
    name: str


class BookWithShelfName(BaseModel):
    id: int
    title: str
    shelf_name: str = Field(orm_field="shelf.name")


class GenreOut(BaseModel):
    name: str
    label: str


class ExhibitOut(BaseModel):
    title: str
    genre: GenreOut | None
    parent_genre: str | None = Field(orm_field="genre.parent.name")


class ExhibitWithGenreName(BaseModel):
    title: str
    genre_name: str | None = Field(orm_field="genre.name")


class RoomOut(BaseModel):
    name: str
    exhibits: list[ExhibitWithGenreName]


def shelf_label(book: Book) -> str:
    return f"{book.shelf.name}: {book.title}"


class BookWithLabel(BaseModel):
    id: int
    label: str = Field(orm_method=shelf_label)


# -- helpers -------------------------------------------------------------------------


def plan_of(schema: type[BaseModel], model: type) -> str:
    return str(derive_plan(mapping_for(schema, model)))


def make_client(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


def library_tree() -> DjangoRouterSchema:
    books = DjangoRouterSchema(name="books", model=Book, get=BookWithChapters)
    return DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfWithBooks, children=[books])


@pytest.fixture
def library(shared_connection: None) -> Iterator[TestClient]:
    with make_client(library_tree()) as client:
        yield client


def seed_companies(count: int, *, departments: int = 3, costcenters: int = 2) -> list[Company]:
    rows = Company.objects.bulk_create(Company(tenant_id=TENANT, name=f"Company {i:03}") for i in range(count))
    CompanyDepartment.objects.bulk_create(
        CompanyDepartment(company=company, name=f"Department {d}", budget=Decimal("100.00"))
        for company in rows
        for d in range(departments)
    )
    CompanyCostcenter.objects.bulk_create(
        CompanyCostcenter(company=company, code=f"CC{c}", name=f"Costcenter {c}")
        for company in rows
        for c in range(costcenters)
    )
    return rows


def seed_departments(company: Company, count: int, *, teams: int = 2) -> None:
    departments = CompanyDepartment.objects.bulk_create(
        CompanyDepartment(company=company, name=f"Department {d:03}") for d in range(count)
    )
    CompanyDepartmentTeam.objects.bulk_create(
        CompanyDepartmentTeam(department=department, name=f"Team {t}", size=t)
        for department in departments
        for t in range(teams)
    )


def seed_shelf(code: str, books: int, *, chapters: int = 4) -> Shelf:
    shelf = Shelf.objects.create(code=code, tenant_id=TENANT, name=f"Shelf {code}")
    rows = Book.objects.bulk_create(Book(shelf=shelf, title=f"Book {b:03}", isbn=f"{code}-{b}") for b in range(books))
    Chapter.objects.bulk_create(
        Chapter(book=book, number=n, title=f"Chapter {n}") for book in rows for n in range(chapters, 0, -1)
    )
    return shelf


# -- derived plans ---------------------------------------------------------------------


def test_demo_company_plan_prefetches_departments_and_costcenters() -> None:
    assert str(companies.query_plan) == (
        "prefetch: departments (CompanyDepartment, order_by pk, first 100)\n"
        "prefetch: costcenters (CompanyCostcenter, order_by pk, first 100)"
    )
    assert companies.query_plan.query_count == 3


def test_demo_department_plan_prefetches_teams() -> None:
    departments = companies.children[0]

    assert str(departments.query_plan) == "prefetch: teams (CompanyDepartmentTeam, order_by pk, first 100)"
    assert departments.query_plan.query_count == 2


def test_demo_employee_plan_prefetches_only_its_skills() -> None:
    employees = next(child for child in companies.children if child.name == "employees")

    assert str(employees.query_plan) == "prefetch: skills (Skill, order_by pk, first 100)"
    assert employees.query_plan.query_count == 2


def test_foreign_key_path_is_selected_related() -> None:
    assert plan_of(BookWithShelfName, Book) == "select_related: shelf"


def test_nested_object_and_path_through_it_are_selected_related_once_each() -> None:
    assert plan_of(ExhibitOut, Exhibit) == "select_related: genre, genre__parent"


def test_two_level_nested_list_is_a_prefetch_with_a_nested_prefetch() -> None:
    plan = derive_plan(mapping_for(ShelfWithBooks, Shelf))

    assert str(plan) == "prefetch: books (Book, order_by pk)\n  prefetch: chapters (Chapter, order_by number, pk)"
    assert plan.query_count == 3


def test_nested_list_carries_its_own_select_related() -> None:
    assert plan_of(RoomOut, Room) == "prefetch: exhibits (Exhibit, order_by pk)\n  select_related: genre"


def test_method_fields_add_nothing_to_the_derived_plan() -> None:
    assert plan_of(BookWithLabel, Book) == "(no related objects)"


# -- query_plan= -----------------------------------------------------------------------


def test_query_plan_instance_replaces_the_derived_plan() -> None:
    plan = QueryPlan(prefetch_related=("books",))
    tree = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfWithBooks, query_plan=plan)

    assert tree.query_plan is plan
    assert tree.list_plan is plan
    assert str(tree.query_plan) == "prefetch_related: books"
    assert plan.query_count == 2


@pytest.mark.usefixtures("shared_connection")
def test_query_plan_instance_is_what_reads_use(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    for index in range(3):
        seed_shelf(f"S{index}", 2, chapters=1)
    derived = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfWithBooks)
    bare = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfWithBooks, query_plan=QueryPlan())

    with make_client(derived) as client, django_assert_num_queries(3):
        client.get("/shelves")
    # The empty plan prefetches nothing: 1 for the shelves, 1 per shelf's books, 1 per book's chapters.
    with make_client(bare) as client, django_assert_num_queries(1 + 3 + 6):
        response = client.get("/shelves")
    assert [len(item["books"]) for item in response.json()["items"]] == [2, 2, 2]


def test_query_plan_callable_receives_the_derived_plan_and_adjusts_it() -> None:
    received: list[QueryPlan] = []

    def adjust(derived: QueryPlan) -> QueryPlan:
        received.append(derived)
        return derived.merged(QueryPlan(select_related=("shelf",)))

    tree = DjangoRouterSchema(name="books", model=Book, get=BookWithChapters, query_plan=adjust)

    assert str(tree.query_plan) == "select_related: shelf\nprefetch: chapters (Chapter, order_by number, pk, first 100)"
    assert received == [derive_plan(mapping_for(BookWithChapters, Book), tree.nested_limit)]


def book_list_queries(django_assert_num_queries, tree: DjangoRouterSchema, expected: int, count: int) -> None:  # type: ignore[no-untyped-def]
    with make_client(tree) as client, django_assert_num_queries(expected):
        response = client.get("/books", params={"limit": count})
    assert response.status_code == 200
    assert len(response.json()["items"]) == count


@pytest.mark.usefixtures("shared_connection")
def test_method_field_reading_a_relation_costs_one_query_per_row_with_the_derived_plan(
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    seed_shelf("A", 30, chapters=0)

    # The control for the next test: the derived plan cannot know what the method reads.
    book_list_queries(django_assert_num_queries, DjangoRouterSchema(name="books", model=Book, get=BookWithLabel), 4, 3)
    book_list_queries(
        django_assert_num_queries, DjangoRouterSchema(name="books", model=Book, get=BookWithLabel), 31, 30
    )


@pytest.mark.usefixtures("shared_connection")
def test_adjusted_plan_reads_a_method_field_in_one_query(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    seed_shelf("A", 30, chapters=0)

    def tree() -> DjangoRouterSchema:
        return DjangoRouterSchema(
            name="books",
            model=Book,
            get=BookWithLabel,
            query_plan=lambda plan: plan.merged(QueryPlan(select_related=("shelf",))),
        )

    book_list_queries(django_assert_num_queries, tree(), 1, 3)
    book_list_queries(django_assert_num_queries, tree(), 1, 30)


# -- no N+1 through the demo's routes ---------------------------------------------------

COMPANY_LIST_QUERIES = 3  # companies + departments + costcenters


@pytest.mark.parametrize("limit", [5, 50])
def test_company_list_costs_the_same_for_5_and_50_rows(client: TestClient, django_assert_num_queries, limit) -> None:  # type: ignore[no-untyped-def]
    seed_companies(50)

    with django_assert_num_queries(COMPANY_LIST_QUERIES):
        response = client.get("/companies", params={"limit": limit}, headers=auth())

    items = response.json()["items"]
    assert len(items) == limit
    assert all(len(item["departments"]) == 3 and len(item["costcenters"]) == 2 for item in items)


DEPARTMENT_LIST_QUERIES = 2  # departments (through the visible ancestor chain) + teams


@pytest.mark.parametrize("count", [3, 30])
def test_department_list_with_teams_costs_the_same_for_3_and_30_rows(
    client: TestClient,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    count: int,
) -> None:
    (company,) = seed_companies(1, departments=0)
    seed_departments(company, count)

    with django_assert_num_queries(DEPARTMENT_LIST_QUERIES):
        response = client.get(f"/companies/{company.pk}/departments", headers=auth())

    items = response.json()["items"]
    assert len(items) == count
    assert all(len(item["teams"]) == 2 for item in items)


COMPANY_GET_QUERIES = 3  # the company through the row filter + departments + costcenters


@pytest.mark.parametrize("departments", [3, 30])
def test_company_get_costs_the_same_for_3_and_30_departments(
    client: TestClient,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    departments: int,
) -> None:
    (company,) = seed_companies(1, departments=departments)

    with django_assert_num_queries(COMPANY_GET_QUERIES):
        response = client.get(f"/companies/{company.pk}", headers=auth())

    assert len(response.json()["departments"]) == departments


# SAVEPOINT + INSERT company + INSERT its change event (companies are subscribed, djfapi.live)
# + one INSERT per cost centre (not subscribed: no event) + RELEASE SAVEPOINT. Nothing is read back:
# the company's columns and its two nested lists are what the request wrote (the company is new, and
# no save() or receiver but djfapi's own can add rows: djfapi.orm.rows.read_written)
COMPANY_CREATE_QUERIES = 1 + 1 + 1 + 1


@pytest.mark.parametrize("costcenters", [2, 20])
def test_company_create_reads_back_in_a_fixed_number_of_queries(
    client: TestClient,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    costcenters: int,
) -> None:
    seed_companies(50)
    body = {"name": "New", "costcenters": [{"code": f"N{i}", "name": f"Cost {i}"} for i in range(costcenters)]}

    with django_assert_num_queries(COMPANY_CREATE_QUERIES + costcenters):
        response = client.post("/companies", json=body, headers=auth())

    assert response.status_code == 201
    assert len(response.json()["costcenters"]) == costcenters


# SAVEPOINT + SELECT ... FOR UPDATE + UPDATE + INSERT its change event + read-back of the two nested
# lists (the company's own columns are what was read and written) + RELEASE SAVEPOINT
COMPANY_PATCH_QUERIES = 1 + 1 + 1 + 1 + 2 + 1


@pytest.mark.parametrize("departments", [3, 30])
def test_company_patch_costs_the_same_for_3_and_30_departments(
    client: TestClient,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    departments: int,
) -> None:
    (company, *_) = seed_companies(20, departments=departments)

    with django_assert_num_queries(COMPANY_PATCH_QUERIES):
        response = client.patch(f"/companies/{company.pk}", json={"name": "Renamed"}, headers=auth())

    assert response.status_code == 200
    assert len(response.json()["departments"]) == departments


# -- no N+1 through a deeper testapp tree ----------------------------------------------

BOOK_LIST_QUERIES = 2  # books (through the visible ancestor chain) + chapters


@pytest.mark.parametrize("count", [3, 30])
def test_books_with_chapters_under_a_shelf_cost_the_same_for_3_and_30_rows(
    library: TestClient,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    count: int,
) -> None:
    seed_shelf("B", count)

    with django_assert_num_queries(BOOK_LIST_QUERIES):
        response = library.get("/shelves/B/books")

    items = response.json()["items"]
    assert len(items) == count
    assert all([c["number"] for c in item["chapters"]] == [1, 2, 3, 4] for item in items)


SHELF_LIST_QUERIES = 3  # shelves + books + chapters (a prefetch inside a prefetch)


@pytest.mark.parametrize("count", [3, 30])
def test_shelves_with_books_with_chapters_cost_the_same_for_3_and_30_shelves(
    library: TestClient,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
    count: int,
) -> None:
    for index in range(count):
        seed_shelf(f"S{index:03}", 2, chapters=2)

    with django_assert_num_queries(SHELF_LIST_QUERIES):
        response = library.get("/shelves")

    items = response.json()["items"]
    assert len(items) == count
    assert all(len(item["books"]) == 2 and len(item["books"][0]["chapters"]) == 2 for item in items)


def test_room_plan_reads_exhibits_with_their_genre_without_extra_queries(
    shared_connection: None,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    genre = Genre.objects.create(tenant_id=TENANT, name="Clay")
    for r in range(5):
        room = Room.objects.create(tenant_id=TENANT, name=f"Room {r}")
        Exhibit.objects.bulk_create(Exhibit(room=room, title=f"Pot {e}", genre=genre) for e in range(4))

    with (
        make_client(DjangoRouterSchema(name="rooms", model=Room, get=RoomOut)) as client,
        django_assert_num_queries(2),  # rooms + exhibits joined with their genre
    ):
        response = client.get("/rooms")

    assert [len(item["exhibits"]) for item in response.json()["items"]] == [4] * 5
    assert response.json()["items"][0]["exhibits"][0]["genre_name"] == "Clay"

"""Ordering and pagination of lists (SPEC §5): ``order_by`` (repeatable, ``-`` descending,
validated), the primary key as the last tie-breaker, NULLs last in both directions,
``default_order_by``, ``limit``/``offset`` bounds, ``?total=true``, and cursor
pagination (signed keyset cursors, stable under inserts). Expected orders are computed
in Python, independently of the database, so both SQLite and PostgreSQL must agree
with them.
"""

from __future__ import annotations

import base64
import datetime
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment, Employee
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.testapp.models import Book, Shelf

Params = Sequence[tuple[str, str]]

# -- helpers ------------------------------------------------------------------------------------------------------


def serve(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


def get_items(client: TestClient, path: str, params: Params = (), headers: dict[str, str] | None = None) -> list[Any]:
    response = client.get(path, params=list(params), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def companies(client: TestClient, params: Params = ()) -> list[dict[str, Any]]:
    return get_items(client, "/companies", params, headers=auth())


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [str(item["id"]) for item in items]


def pk_order(pk: Any) -> Any:
    """How the databases order primary keys: UUIDs byte-wise (as their 32 hex digits), integers numerically."""
    return pk.hex if isinstance(pk, uuid.UUID) else pk


def make_companies(count: int, name: str | None = None, **fields: Any) -> list[Company]:
    """``count`` companies of the test tenant, named "Company 0000".. (or all ``name``), inserted shuffled."""
    numbers = list(range(count))
    random.Random(count).shuffle(numbers)
    rows = [Company(tenant_id=TENANT, name=name or f"Company {n:04d}", **fields) for n in numbers]
    return Company.objects.bulk_create(rows)


def single_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    return error


def order_by_enum(openapi: dict[str, Any], path: str) -> list[str]:
    parameters = openapi["paths"][path]["get"]["parameters"]
    order_by = next(p for p in parameters if p["name"] == "order_by")
    return order_by["schema"]["anyOf"][0]["items"]["enum"]


# -- trees of our own ---------------------------------------------------------------------------------------------


class SalaryRow(BaseModel):
    id: uuid.UUID
    user_id: str
    salary: Decimal | None
    hired_at: datetime.date


class BookRow(BaseModel):
    id: int
    title: str
    pages: int


class CompanyRow(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime.datetime


class DepartmentRow(BaseModel):
    id: uuid.UUID
    name: str
    budget: Decimal


def salary_tree(**options: Any) -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="salaries", model=Employee, get=SalaryRow, order_fields=["salary", "hired_at", "id"], **options
    )


def book_tree(name: str = "books", **pagination: Any) -> DjangoRouterSchema:
    return DjangoRouterSchema(name=name, model=Book, get=BookRow, pagination_options=pagination)


@pytest.fixture
def shelf(db: None) -> Shelf:
    return Shelf.objects.create(code="S1", tenant_id=TENANT, name="Shelf")


def make_books(shelf: Shelf, count: int, pages: Any = lambda n: n % 10 + 1) -> list[Book]:
    rows = [Book(shelf=shelf, title=f"T{n:04d}", isbn=f"isbn-{n}", pages=pages(n)) for n in range(count)]
    return Book.objects.bulk_create(rows)


# -- order_by -----------------------------------------------------------------------------------------------------


def test_order_by_name_ascending_and_descending(client: TestClient, db: None) -> None:
    make_companies(5)
    expected = [f"Company {n:04d}" for n in range(5)]

    assert names(companies(client, [("order_by", "name")])) == expected
    assert names(companies(client, [("order_by", "-name")])) == expected[::-1]


def test_companies_default_to_their_default_order_by(client: TestClient, db: None) -> None:
    make_companies(7)

    assert names(companies(client)) == [f"Company {n:04d}" for n in range(7)]


def test_order_by_is_repeatable(client: TestClient, db: None) -> None:
    for name, status in [("A", "inactive"), ("B", "active"), ("C", "inactive"), ("D", "active")]:
        Company.objects.create(tenant_id=TENANT, name=name, status=status)

    assert names(companies(client, [("order_by", "status"), ("order_by", "-name")])) == ["D", "B", "C", "A"]
    assert names(companies(client, [("order_by", "-status"), ("order_by", "name")])) == ["A", "C", "B", "D"]


def test_order_by_created_at(client: TestClient, db: None) -> None:
    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    for name, minutes in [("late", 30), ("early", 1), ("middle", 10)]:
        Company.objects.create(tenant_id=TENANT, name=name, created_at=base + datetime.timedelta(minutes=minutes))

    assert names(companies(client, [("order_by", "created_at")])) == ["early", "middle", "late"]
    assert names(companies(client, [("order_by", "-created_at")])) == ["late", "middle", "early"]


def test_order_by_departments_count_breaks_ties_by_primary_key(client: TestClient, db: None) -> None:
    counts = {"none-1": 0, "none-2": 0, "one": 1, "three": 3, "two-1": 2, "two-2": 2}
    rows = {}
    for name, count in counts.items():
        rows[name] = Company.objects.create(tenant_id=TENANT, name=name)
        for index in range(count):
            CompanyDepartment.objects.create(company=rows[name], name=f"d{index}")

    def expected(descending: bool) -> list[str]:
        sign = -1 if descending else 1
        return sorted(counts, key=lambda name: (sign * counts[name], pk_order(rows[name].pk)))

    assert names(companies(client, [("order_by", "departments__count")])) == expected(False)
    assert names(companies(client, [("order_by", "-departments__count")])) == expected(True)


def test_equal_names_come_back_in_primary_key_order(client: TestClient, db: None) -> None:
    same = make_companies(6, name="Same")
    Company.objects.create(tenant_id=TENANT, name="Apple")
    Company.objects.create(tenant_id=TENANT, name="Zebra")
    ties = [str(c.pk) for c in sorted(same, key=lambda c: pk_order(c.pk))]

    ascending = companies(client, [("order_by", "name")])
    descending = companies(client, [("order_by", "-name")])

    assert names(ascending) == ["Apple", *["Same"] * 6, "Zebra"]
    assert ids(ascending)[1:7] == ties
    # The primary key is appended ascending whatever the direction of the other terms.
    assert ids(descending)[1:7] == ties


@pytest.mark.parametrize("term", ["name", "-name"])
def test_pages_over_ties_never_overlap(client: TestClient, db: None, term: str) -> None:
    make_companies(7, name="Same")
    whole = ids(companies(client, [("order_by", term)]))

    paged = [
        row
        for offset in range(0, 7, 2)
        for row in ids(companies(client, [("order_by", term), ("limit", "2"), ("offset", str(offset))]))
    ]

    assert paged == whole
    assert len(set(paged)) == 7


def test_repeating_a_term_keeps_its_first_direction(client: TestClient, db: None) -> None:
    make_companies(3)

    assert names(companies(client, [("order_by", "-name"), ("order_by", "name")])) == [
        "Company 0002",
        "Company 0001",
        "Company 0000",
    ]


@pytest.mark.parametrize("term", ["nmae", "salary", "--name", "name__count", "departments__count__gte", "tenant_id"])
def test_unknown_order_by_term_is_a_422(client: TestClient, db: None, term: str) -> None:
    refused = client.get("/companies", params={"order_by": term}, headers=auth())
    accepted = client.get("/companies", params={"order_by": "-name"}, headers=auth())

    error = single_error(refused)
    assert error["loc"][:2] == ["query", "order_by"]
    assert error["input"] == term
    assert accepted.status_code == 200


def test_one_bad_term_among_good_ones_is_a_422(client: TestClient, db: None) -> None:
    response = client.get("/companies", params=[("order_by", "name"), ("order_by", "bogus")], headers=auth())

    assert single_error(response)["loc"] == ["query", "order_by", 1]


def test_openapi_order_by_enum_lists_exactly_the_order_fields(app: FastAPI) -> None:
    assert order_by_enum(app.openapi(), "/companies") == [
        "created_at",
        "-created_at",
        "departments__count",
        "-departments__count",
        "id",
        "-id",
        "name",
        "-name",
        "status",
        "-status",
    ]


def test_openapi_order_by_enum_of_a_tree_of_our_own() -> None:
    client = serve(salary_tree())

    assert order_by_enum(client.app.openapi(), "/salaries") == [
        "hired_at",
        "-hired_at",
        "id",
        "-id",
        "salary",
        "-salary",
    ]


# -- NULLs last ---------------------------------------------------------------------------------------------------


@pytest.fixture
def salaries(shared_connection: None) -> list[Employee]:
    company = Company.objects.create(tenant_id=TENANT, name="Payroll")
    amounts = ["300.00", None, "100.00", None, "200.00", "100.00", None, "250.50"]
    return [
        Employee.objects.create(
            company=company,
            user_id=f"u{index}",
            salary=None if amount is None else Decimal(amount),
            hired_at=datetime.date(2020, 1, 1),
        )
        for index, amount in enumerate(amounts)
    ]


def nulls_last(rows: list[Employee], *, descending: bool) -> list[str]:
    known = sorted(
        (row for row in rows if row.salary is not None),
        key=lambda row: (-row.salary if descending else row.salary, pk_order(row.pk)),
    )
    unknown = sorted((row for row in rows if row.salary is None), key=lambda row: pk_order(row.pk))
    return [row.user_id for row in [*known, *unknown]]


@pytest.mark.parametrize("descending", [False, True])
def test_nulls_come_last_in_both_directions(salaries: list[Employee], descending: bool) -> None:
    client = serve(salary_tree())

    items = get_items(client, "/salaries", [("order_by", "-salary" if descending else "salary")])

    assert [item["user_id"] for item in items] == nulls_last(salaries, descending=descending)
    assert [item["salary"] for item in items][-3:] == [None, None, None]


def test_nulls_last_pages_agree_with_the_whole_list(salaries: list[Employee]) -> None:
    client = serve(salary_tree())
    whole = get_items(client, "/salaries", [("order_by", "-salary")])

    paged = [
        item
        for offset in range(0, len(salaries), 3)
        for item in get_items(client, "/salaries", [("order_by", "-salary"), ("limit", "3"), ("offset", str(offset))])
    ]

    assert paged == whole


# -- default_order_by ---------------------------------------------------------------------------------------------


def test_default_order_by_applies_when_no_order_by_is_given(shelf: Shelf, shared_connection: None) -> None:
    books = make_books(shelf, 30)
    client = serve(book_tree(default_order_by=["-pages"]))

    by_default = get_items(client, "/books")
    by_title = get_items(client, "/books", [("order_by", "title")])

    assert [b["id"] for b in by_default] == [b.pk for b in sorted(books, key=lambda b: (-b.pages, b.pk))]
    assert [b["title"] for b in by_title] == sorted(b.title for b in books)


def test_without_default_order_by_the_primary_key_orders(shelf: Shelf, shared_connection: None) -> None:
    books = make_books(shelf, 12)
    client = serve(book_tree())

    assert [b["id"] for b in get_items(client, "/books")] == sorted(b.pk for b in books)


def test_default_order_by_must_name_an_order_field() -> None:
    with pytest.raises(SchemaDefinitionError, match="default_order_by"):
        _ = book_tree(default_order_by=["isbn"]).router
    assert book_tree(default_order_by=["title"]).router is not None


# -- limit and offset ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [("limit", "0"), ("limit", "1001"), ("limit", "-5"), ("offset", "-1")])
def test_limit_and_offset_bounds(client: TestClient, db: None, name: str, value: str) -> None:
    error = single_error(client.get("/companies", params={name: value}, headers=auth()))

    assert error["loc"] == ["query", name]


@pytest.mark.parametrize(("limit", "count"), [("1", 1), ("1000", 105)])
def test_limits_at_the_bounds_are_accepted(client: TestClient, db: None, limit: str, count: int) -> None:
    make_companies(105)

    assert len(companies(client, [("limit", limit)])) == count


def test_default_limit_is_100(client: TestClient, db: None) -> None:
    make_companies(101)

    assert len(companies(client)) == 100


def test_offset_past_the_end_is_an_empty_page(client: TestClient, db: None) -> None:
    make_companies(3)

    assert companies(client, [("offset", "3")]) == []
    assert names(companies(client, [("offset", "2")])) == ["Company 0002"]


def test_openapi_documents_the_limit_bounds(app: FastAPI) -> None:
    parameters = app.openapi()["paths"]["/companies"]["get"]["parameters"]
    limit = next(p for p in parameters if p["name"] == "limit")
    offset = next(p for p in parameters if p["name"] == "offset")

    assert (limit["schema"]["minimum"], limit["schema"]["maximum"], limit["schema"]["default"]) == (1, 1000, 100)
    assert offset["schema"]["minimum"] == 0


def test_paging_walk_over_1000_companies_yields_each_exactly_once(client: TestClient, db: None) -> None:
    make_companies(1000)

    walked: list[str] = []
    for offset in range(0, 1000, 37):
        page = companies(client, [("limit", "37"), ("offset", str(offset))])
        assert len(page) == min(37, 1000 - offset)
        walked.extend(names(page))

    assert walked == [f"Company {n:04d}" for n in range(1000)]


# -- total --------------------------------------------------------------------------------------------------------


@pytest.fixture
def counted(db: None) -> None:
    make_companies(3, status="active")
    for name in ("Idle 1", "Idle 2"):
        Company.objects.create(tenant_id=TENANT, name=name, status="inactive")
    Company.objects.create(tenant_id=TENANT, name="Gone", status="deleted")
    Company.objects.create(tenant_id=OTHER_TENANT, name="Foreign", status="inactive")


def test_total_is_absent_unless_asked_for(client: TestClient, counted: None) -> None:
    for params in ([], [("total", "false")]):
        response = client.get("/companies", params=params, headers=auth())
        assert response.status_code == 200
        assert "total" not in response.json()


def test_total_counts_every_filtered_row_not_just_the_page(client: TestClient, counted: None) -> None:
    response = client.get("/companies", params={"total": "true", "limit": "1"}, headers=auth())

    assert response.json()["total"] == 5
    assert len(response.json()["items"]) == 1


@pytest.mark.parametrize(
    ("params", "total"),
    [
        ([("status", "inactive")], 2),
        ([("!status", "inactive")], 3),
        ([("status", "deleted")], 1),
        ([("name__icontains", "idle 2")], 1),
        ([("offset", "4")], 5),
    ],
)
def test_total_honours_filters(client: TestClient, counted: None, params: list[tuple[str, str]], total: int) -> None:
    response = client.get("/companies", params=[*params, ("total", "true")], headers=auth())

    assert response.json()["total"] == total


# -- query counts -------------------------------------------------------------------------------------------------


@pytest.fixture
def furnished(db: None) -> None:
    """60 companies, each with a department and a cost centre (so an N+1 would show)."""
    for company in make_companies(60):
        CompanyDepartment.objects.create(company=company, name="Dept")
        CompanyCostcenter.objects.create(company=company, code="CC", name="Cost")


def queries_for(client: TestClient, params: Params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/companies", params=list(params), headers=auth())
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_a_page_costs_the_same_queries_at_any_limit(client: TestClient, furnished: None) -> None:
    small = queries_for(client, [("limit", "5")])
    large = queries_for(client, [("limit", "50")])

    assert small == large == 3  # the page, then one prefetch each for departments and cost centres


def test_total_costs_exactly_one_more_query(client: TestClient, furnished: None) -> None:
    assert queries_for(client, [("limit", "5"), ("total", "true")]) == queries_for(client, [("limit", "5")]) + 1
    assert queries_for(client, [("limit", "50"), ("total", "true")]) == 4


def test_query_count_with_django_assert_num_queries(
    client: TestClient, furnished: None, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(3):
        client.get("/companies", params={"limit": "50", "order_by": "-departments__count"}, headers=auth())


# -- cursor pagination --------------------------------------------------------------------------------------------


def walk(client: TestClient, path: str, limit: int, params: Params = ()) -> Iterator[dict[str, Any]]:
    """Every page body of a cursor walk, following next_cursor until it is null."""
    cursor = None
    for _ in range(100):
        query = [*params, ("limit", str(limit)), *([("cursor", cursor)] if cursor else [])]
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        cursor = body["next_cursor"]
        if cursor is None:
            return
    raise AssertionError("the cursor walk does not end")


def cursor_books(**pagination: Any) -> TestClient:
    return serve(book_tree(cursor=True, **pagination))


def test_cursor_walk_over_1000_rows_yields_each_exactly_once_in_order(shelf: Shelf, shared_connection: None) -> None:
    books = make_books(shelf, 1000)
    client = cursor_books(default_order_by=["-pages"])

    pages = list(walk(client, "/books", 37))

    walked = [item["id"] for page in pages for item in page["items"]]
    assert walked == [b.pk for b in sorted(books, key=lambda b: (-b.pages, b.pk))]
    assert [len(page["items"]) for page in pages] == [37] * 27 + [1]
    assert all(page["next_cursor"] for page in pages[:-1])
    assert pages[-1]["next_cursor"] is None


def test_cursor_walk_ending_on_a_full_page_has_no_empty_page(shelf: Shelf, shared_connection: None) -> None:
    make_books(shelf, 74)

    pages = list(walk(cursor_books(), "/books", 37))

    assert [len(page["items"]) for page in pages] == [37, 37]
    assert pages[-1]["next_cursor"] is None


def test_cursor_walk_honours_filters(shelf: Shelf, shared_connection: None) -> None:
    books = make_books(shelf, 200)

    pages = list(walk(cursor_books(), "/books", 9, [("pages__gte", "8"), ("order_by", "-title")]))

    walked = [item["id"] for page in pages for item in page["items"]]
    assert walked == [b.pk for b in sorted((b for b in books if b.pages >= 8), key=lambda b: b.title, reverse=True)]


def test_cursor_page_is_in_the_openapi_response_and_has_no_offset(shelf: Shelf, shared_connection: None) -> None:
    make_books(shelf, 3)
    client = cursor_books()

    parameters = [p["name"] for p in client.app.openapi()["paths"]["/books"]["get"]["parameters"]]
    body = client.get("/books", params={"total": "true"}).json()

    assert "cursor" in parameters
    assert "offset" not in parameters
    assert set(body) == {"items", "total", "next_cursor"}
    assert body["total"] == 3
    assert body["next_cursor"] is None


def test_offset_is_an_unknown_parameter_in_cursor_mode(shelf: Shelf, shared_connection: None) -> None:
    make_books(shelf, 3)
    client = cursor_books()

    refused = client.get("/books", params={"offset": "1"})
    error = single_error(refused)

    assert error["loc"] == ["query", "offset"]
    assert error["type"] == "extra_forbidden"
    assert client.get("/books", params={"limit": "1"}).status_code == 200


def test_cursor_is_an_unknown_parameter_in_offset_mode(client: TestClient, db: None) -> None:
    assert single_error(client.get("/companies", params={"cursor": "x"}, headers=auth()))["loc"] == ["query", "cursor"]


def first_cursor(client: TestClient, params: Params = (), path: str = "/books") -> str:
    body = client.get(path, params=[*params, ("limit", "5")]).json()
    assert body["next_cursor"]
    return body["next_cursor"]


def tamper_payload(cursor: str) -> str:
    """The cursor with its first value changed and its signature kept."""
    payload, signature = cursor.split(":", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["v"][0] = data["v"][0] + 1 if isinstance(data["v"][0], int) else data["v"][0] + "x"
    encoded = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{encoded}:{signature}"


@pytest.mark.parametrize(
    "forge",
    [
        lambda cursor: "not-a-cursor",
        lambda cursor: cursor[:-1] + ("A" if cursor[-1] != "A" else "B"),
        lambda cursor: cursor[1:],
        tamper_payload,
        lambda cursor: base64.urlsafe_b64encode(b'{"o":["id"],"v":[3]}').decode() + ":x:y",
    ],
)
def test_forged_or_tampered_cursor_is_a_422(shelf: Shelf, shared_connection: None, forge: Any) -> None:
    make_books(shelf, 20)
    client = cursor_books()
    cursor = first_cursor(client)

    refused = client.get("/books", params={"cursor": forge(cursor), "limit": "5"})
    accepted = client.get("/books", params={"cursor": cursor, "limit": "5"})

    assert single_error(refused)["loc"] == ["query", "cursor"]
    assert accepted.status_code == 200


def test_cursor_with_a_different_order_by_is_a_422(shelf: Shelf, shared_connection: None) -> None:
    make_books(shelf, 20)
    client = cursor_books()
    cursor = first_cursor(client, [("order_by", "title")])

    refused = client.get("/books", params=[("cursor", cursor), ("order_by", "-title")])
    refused_default = client.get("/books", params=[("cursor", cursor)])
    accepted = client.get("/books", params=[("cursor", cursor), ("order_by", "title")])

    assert single_error(refused)["loc"] == ["query", "cursor"]
    assert "order_by" in single_error(refused)["msg"]
    assert single_error(refused_default)["loc"] == ["query", "cursor"]
    assert accepted.status_code == 200


def test_cursor_of_another_route_is_a_422(shelf: Shelf, shared_connection: None) -> None:
    make_books(shelf, 20)
    books = cursor_books()
    volumes = serve(book_tree("volumes", cursor=True))
    cursor = first_cursor(books)

    assert single_error(volumes.get("/volumes", params={"cursor": cursor}))["loc"] == ["query", "cursor"]
    assert volumes.get("/volumes", params={"cursor": first_cursor(volumes, path="/volumes")}).status_code == 200


def test_cursor_is_stable_under_inserts_and_deletes(shelf: Shelf, shared_connection: None) -> None:
    books = make_books(shelf, 100)
    client = cursor_books()
    params = [("order_by", "title"), ("limit", "10")]

    seen: list[dict[str, Any]] = []
    body = client.get("/books", params=params).json()
    for _ in range(3):
        seen.extend(body["items"])
        body = client.get("/books", params=[*params, ("cursor", body["next_cursor"])]).json()
    seen.extend(body["items"])  # 40 rows seen; the cursor now points after T0039
    cursor_row = body["items"][-1]

    before = Book.objects.create(shelf=shelf, title="T0005b", isbn="before", pages=1)
    after = Book.objects.create(shelf=shelf, title="T0050b", isbn="after", pages=1)
    tie = Book.objects.create(shelf=shelf, title=cursor_row["title"], isbn="tie", pages=1)  # same title, larger pk
    Book.objects.filter(pk=cursor_row["id"]).delete()

    cursor = body["next_cursor"]
    while cursor:
        body = client.get("/books", params=[*params, ("cursor", cursor)]).json()
        seen.extend(body["items"])
        cursor = body["next_cursor"]

    walked = [item["id"] for item in seen]
    assert len(walked) == len(set(walked))
    assert [book.pk for book in books if book.pk in walked] == [book.pk for book in books]
    assert before.pk not in walked
    assert after.pk in walked
    assert tie.pk in walked
    assert [item["title"] for item in seen] == sorted(item["title"] for item in seen)


def test_offset_pages_are_not_stable_under_inserts(shelf: Shelf, shared_connection: None) -> None:
    """The counterpart: with offsets, a row inserted before the position repeats a row."""
    make_books(shelf, 20)
    client = serve(book_tree())
    params = [("order_by", "title"), ("limit", "10")]

    first = get_items(client, "/books", [*params, ("offset", "0")])
    Book.objects.create(shelf=shelf, title="T0000a", isbn="before", pages=1)
    second = get_items(client, "/books", [*params, ("offset", "10")])

    assert first[-1] == second[0]


def test_cursor_walk_by_a_datetime_with_ties(shared_connection: None) -> None:
    base = datetime.datetime(2024, 5, 1, 12, 0, 0, 123457, tzinfo=datetime.UTC)
    rows = Company.objects.bulk_create(
        [
            Company(tenant_id=TENANT, name=f"C{n:03d}", created_at=base + datetime.timedelta(microseconds=n // 3))
            for n in range(50)
        ]
    )
    tree = DjangoRouterSchema(
        name="firms",
        model=Company,
        get=CompanyRow,
        order_fields=["name", "created_at", "id"],
        pagination_options={"cursor": True},
    )

    for term, reverse in (("created_at", False), ("-created_at", True)):
        pages = list(walk(serve(tree), "/firms", 7, [("order_by", term)]))
        walked = [item["id"] for page in pages for item in page["items"]]
        expected = sorted(rows, key=lambda c: pk_order(c.pk))
        expected.sort(key=lambda c: c.created_at, reverse=reverse)
        assert walked == [str(c.pk) for c in expected]


def test_cursor_walk_by_a_relation_count(shared_connection: None) -> None:
    rows = Company.objects.bulk_create([Company(tenant_id=TENANT, name=f"C{n:03d}") for n in range(30)])
    counts = {company.pk: index % 4 for index, company in enumerate(rows)}
    CompanyDepartment.objects.bulk_create(
        [CompanyDepartment(company_id=pk, name=f"d{i}") for pk, count in counts.items() for i in range(count)]
    )
    tree = DjangoRouterSchema(
        name="firms",
        model=Company,
        get=CompanyRow,
        order_fields=["departments__count", "id"],
        pagination_options={"cursor": True, "default_order_by": ["-departments__count"]},
    )

    pages = list(walk(serve(tree), "/firms", 4))

    walked = [item["id"] for page in pages for item in page["items"]]
    assert walked == [str(pk) for pk in sorted(counts, key=lambda pk: (-counts[pk], pk_order(pk)))]


def test_cursor_walk_by_a_decimal(shared_connection: None) -> None:
    company = Company.objects.create(tenant_id=TENANT, name="Budgets")
    budgets = ["10.50", "0.10", "10.50", "999999999.99", "0.20", "10.49", "10.51", "0.10", "3.00"] * 3
    rows = CompanyDepartment.objects.bulk_create(
        [CompanyDepartment(company=company, name=f"d{i}", budget=Decimal(b)) for i, b in enumerate(budgets)]
    )
    tree = DjangoRouterSchema(
        name="departments",
        model=CompanyDepartment,
        get=DepartmentRow,
        order_fields=["budget", "id"],
        pagination_options={"cursor": True, "default_order_by": ["budget"]},
    )

    pages = list(walk(serve(tree), "/departments", 4))

    walked = [item["id"] for page in pages for item in page["items"]]
    assert walked == [str(d.pk) for d in sorted(rows, key=lambda d: (d.budget, pk_order(d.pk)))]


def test_cursor_refuses_ordering_by_a_nullable_field(salaries: list[Employee]) -> None:
    client = serve(salary_tree(pagination_options={"cursor": True}))

    refused = client.get("/salaries", params={"order_by": "salary"})
    refused_desc = client.get("/salaries", params={"order_by": "-salary"})
    accepted = client.get("/salaries", params={"order_by": "hired_at"})

    assert single_error(refused)["loc"] == ["query", "order_by"]
    assert "salary" in single_error(refused)["msg"]
    assert single_error(refused_desc)["loc"] == ["query", "order_by"]
    assert accepted.status_code == 200
    assert len(accepted.json()["items"]) == len(salaries)


def test_nullable_default_order_by_with_cursor_is_a_definition_error() -> None:
    with pytest.raises(SchemaDefinitionError, match="nullable"):
        _ = salary_tree(pagination_options={"cursor": True, "default_order_by": ["salary"]}).router
    assert salary_tree(pagination_options={"cursor": True, "default_order_by": ["hired_at"]}).router is not None
    assert salary_tree(pagination_options={"default_order_by": ["salary"]}).router is not None  # offsets handle NULLs


def test_a_cursor_page_costs_the_same_queries_at_any_limit(shelf: Shelf, shared_connection: None) -> None:
    make_books(shelf, 120)
    client = cursor_books()
    cursor = first_cursor(client)

    def count(params: Params) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/books", params=list(params)).status_code == 200
        return len(captured.captured_queries)

    assert count([("limit", "5"), ("cursor", cursor)]) == count([("limit", "50"), ("cursor", cursor)]) == 1
    assert count([("limit", "50"), ("cursor", cursor), ("total", "true")]) == 2

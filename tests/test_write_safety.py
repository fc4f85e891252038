"""Writes that cannot lose data (SPEC §10): unknown fields are 422s naming them, a synced
nested list must be able to match its items, nested items in PATCH are partial (and new ones
complete), and PATCH writes only the columns that change — nothing when nothing does.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import Company, CompanyCostcenter
from tests.factories import make_company
from tests.helpers import auth
from tests.testapp.models import Book, Chapter, Note, Shelf

# -- a shelf -> books -> chapters tree whose PATCH items are partial ------------------------------------------------


class ChapterOut(BaseModel):
    id: int
    number: int
    title: str


class BookOut(BaseModel):
    id: int
    title: str
    isbn: str
    pages: int
    chapters: list[ChapterOut]


class ShelfOut(BaseModel):
    code: str
    name: str
    books: list[BookOut]


class ChapterWrite(BaseModel):
    id: int | None = None
    number: int = Field(ge=1)
    title: str = Field(min_length=1)


class BookWrite(BaseModel):
    title: str
    isbn: str
    pages: int = 1
    chapters: list[ChapterWrite] = Field(default_factory=list)


class ShelfWrite(BaseModel):
    code: str = Field(max_length=20)
    name: str


def shelves() -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="shelves",
        model=Shelf,
        get=ShelfOut,
        create=ShelfWrite,
        children=[DjangoRouterSchema(name="books", model=Book, get=BookOut, create=BookWrite, update=BookWrite)],
    )


def serve(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    app.include_router(tree.router)
    return TestClient(app)


@pytest.fixture
def api(shared_connection: None) -> Iterator[TestClient]:
    with serve(shelves()) as client:
        yield client


@pytest.fixture
def book() -> Book:
    shelf = Shelf.objects.create(code="S1", tenant_id="t", name="Science")
    book = Book.objects.create(shelf=shelf, title="Dune", isbn="isbn-1", pages=412)
    Chapter.objects.create(book=book, number=1, title="Arrakis")
    Chapter.objects.create(book=book, number=2, title="Muad'Dib")
    return book


def rows(book: Book) -> list[tuple[int, str]]:
    return list(book.chapters.order_by("number").values_list("number", "title"))


# -- unknown fields -------------------------------------------------------------------------------------------------


def test_an_unknown_field_at_any_depth_is_a_422_naming_it_and_nothing_is_written(api: TestClient, book: Book) -> None:
    path = f"/shelves/S1/books/{book.pk}"
    first = book.chapters.get(number=1)

    patched = api.patch(path, json={"title": "Dune!", "chapters": [{"id": first.pk, "titel": "typo"}]})
    put = api.put(path, json={"title": "Dune", "isbn": "isbn-1", "owner_id": "x"})
    created = api.post("/shelves/S1/books", json={"title": "New", "isbn": "isbn-2", "chapters": [{"nmber": 1}]})

    assert patched.status_code == put.status_code == created.status_code == 422
    assert [(e["loc"], e["type"]) for e in patched.json()["detail"]] == [
        (["body", "chapters", 0, "titel"], "extra_forbidden")
    ]
    assert [e["loc"] for e in put.json()["detail"]] == [["body", "owner_id"]]
    assert ["body", "chapters", 0, "nmber"] in [e["loc"] for e in created.json()["detail"]]
    book.refresh_from_db()
    assert (book.title, Book.objects.count()) == ("Dune", 1)
    assert rows(book) == [(1, "Arrakis"), (2, "Muad'Dib")]


def test_bulk_create_names_the_unknown_field_of_the_item_that_has_it(client: TestClient) -> None:
    company = make_company()
    hires = [{"user_id": "a", "hired_at": "2020-01-01"}, {"user_id": "b", "hired_at": "2020-01-01", "rank": 3}]

    response = client.post(f"/companies/{company.pk}/employees", json=hires, headers=auth())

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", 1, "rank"]]
    assert not company.employees.exists()


# -- a synced list must be able to match its items -------------------------------------------------------------------


class ChapterWithoutId(BaseModel):
    number: int
    title: str


class BookWithAnonymousChapters(BaseModel):
    title: str
    chapters: list[ChapterWithoutId] = Field(default_factory=list)


class ChapterMatchedByNumber(BaseModel):
    number: int = Field(is_sync_matching_field=True)
    title: str


class BookWithMatchedChapters(BaseModel):
    title: str
    chapters: list[ChapterMatchedByNumber] = Field(default_factory=list)


def books(**options: Any) -> DjangoRouterSchema:
    return DjangoRouterSchema(name="books", model=Book, get=BookOut, **options)


def test_an_update_schema_whose_list_items_cannot_be_matched_is_refused_at_start_up() -> None:
    with pytest.raises(SchemaDefinitionError) as refused:
        books(update=BookWithAnonymousChapters).router  # noqa: B018

    assert str(refused.value) == (
        "BookWithAnonymousChapters.chapters is synced on PUT/PATCH (items with an id update that row, rows not listed "
        "are deleted), but its item schema ChapterWithoutId has no field for Chapter.id, so every item would replace a "
        "row and lose its other columns. Add 'id: <type> | None = None' to ChapterWithoutId, or mark the fields that "
        "identify an item with Field(is_sync_matching_field=True), or leave the list out of the update schema."
    )


def test_the_same_list_is_accepted_for_create_with_matching_fields_or_with_an_id() -> None:
    assert books(create=BookWithAnonymousChapters).router.routes
    assert books(update=BookWithMatchedChapters).router.routes
    assert books(update=BookWrite).router.routes


# -- nested items in PATCH are partial ------------------------------------------------------------------------------


def test_patch_of_one_field_of_one_nested_item_keeps_its_other_fields(api: TestClient, book: Book) -> None:
    first, second = book.chapters.order_by("number")

    response = api.patch(
        f"/shelves/S1/books/{book.pk}",
        json={"chapters": [{"id": first.pk, "title": "Desert Planet"}, {"id": second.pk}]},
    )

    assert response.status_code == 200, response.text
    assert rows(book) == [(1, "Desert Planet"), (2, "Muad'Dib")]
    book.refresh_from_db()
    assert (book.title, book.pages) == ("Dune", 412)


def test_a_new_item_in_a_patch_must_be_complete_and_its_failure_rolls_everything_back(
    api: TestClient, book: Book
) -> None:
    first, second = book.chapters.order_by("number")
    path = f"/shelves/S1/books/{book.pk}"
    listed = [{"id": first.pk, "title": "Changed"}, {"id": second.pk}]

    incomplete = api.patch(path, json={"title": "Changed", "chapters": [*listed, {"title": "no number"}]})
    complete = api.patch(path, json={"chapters": [*listed, {"number": 3, "title": "Epilogue"}]})

    assert incomplete.status_code == 422
    assert incomplete.json()["detail"] == [
        {
            "type": "missing",
            "loc": ["body", "chapters", 2, "number"],
            "msg": "Field required",
            "input": {"title": "no number"},
        }
    ]
    assert complete.status_code == 200, complete.text
    assert rows(book) == [(1, "Changed"), (2, "Muad'Dib"), (3, "Epilogue")]
    book.refresh_from_db()
    assert book.title == "Dune"  # the refused PATCH changed nothing


def test_a_put_still_needs_complete_items(api: TestClient, book: Book) -> None:
    first = book.chapters.get(number=1)

    response = api.put(
        f"/shelves/S1/books/{book.pk}", json={"title": "Dune", "isbn": "isbn-1", "chapters": [{"id": first.pk}]}
    )

    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
        ("body", "chapters", 0, "number"),
        ("body", "chapters", 0, "title"),
    }


# -- PATCH writes only what changes ---------------------------------------------------------------------------------


def updates(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]


def assigned_columns(sql: str) -> list[str]:
    assignments = sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    return re.findall(r'"(\w+)" = ', assignments)


def test_a_one_field_patch_updates_one_column(client: TestClient) -> None:
    company = make_company()

    with CaptureQueriesContext(connection) as captured:
        response = client.patch(f"/companies/{company.pk}", json={"name": "Renamed"}, headers=auth())

    assert response.status_code == 200
    assert [assigned_columns(sql) for sql in updates(captured)] == [["name"]]


def test_a_patch_that_changes_nothing_writes_nothing(client: TestClient) -> None:
    company = make_company(name="Same")
    CompanyCostcenter.objects.create(company=company, code="A", name="Alpha")
    costcenter = company.costcenters.get()

    with CaptureQueriesContext(connection) as captured:
        response = client.patch(
            f"/companies/{company.pk}",
            json={"name": "Same", "costcenters": [{"id": costcenter.pk, "code": "A", "name": "Alpha"}]},
            headers=auth(),
        )

    assert response.status_code == 200
    assert updates(captured) == []
    assert not any(q["sql"].lstrip().upper().startswith(("INSERT", "DELETE")) for q in captured.captured_queries)


def test_auto_now_columns_move_only_when_something_changed(shared_connection: None) -> None:
    class NoteOut(BaseModel):
        id: int
        title: str
        updated_at: datetime.datetime

    class NoteWrite(BaseModel):
        title: str
        body: str = ""

    tree = DjangoRouterSchema(name="notes", model=Note, get=NoteOut, update=NoteWrite)
    note = Note.objects.create(tenant_id="t", author_id="u", title="Draft")
    stamp = Note.objects.get().updated_at

    with serve(tree) as api, CaptureQueriesContext(connection) as captured:
        unchanged = api.patch(f"/notes/{note.pk}", json={"title": "Draft"})
        changed = api.patch(f"/notes/{note.pk}", json={"title": "Final"})

    assert unchanged.json()["updated_at"] == stamp.isoformat().replace("+00:00", "Z")
    assert changed.json()["updated_at"] != unchanged.json()["updated_at"]
    assert [assigned_columns(sql) for sql in updates(captured)] == [["title", "updated_at"]]


def test_a_column_another_writer_changed_meanwhile_survives_a_patch_of_another(shared_connection: None) -> None:
    class CompanyOut(BaseModel):
        id: Any
        name: str
        status: str

    class CompanyWrite(BaseModel):
        name: str

    tree = DjangoRouterSchema(name="companies", model=Company, get=CompanyOut, update=CompanyWrite)

    @tree.hook("before_update")
    def another_writer_meanwhile(event: Any) -> None:
        # The row is loaded; another writer (a queryset update, a management command) changes a column.
        Company.objects.filter(pk=event.instance.pk).update(status="inactive")

    company = make_company()
    with serve(tree) as api:
        response = api.patch(f"/companies/{company.pk}", json={"name": "Renamed"})

    assert response.status_code == 200
    assert Company.objects.values_list("name", "status").get(pk=company.pk) == ("Renamed", "inactive")

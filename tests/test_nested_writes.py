"""Nested writes on a three-level tree (shelf -> books -> chapters, plus a book's detail):
nested create, PUT/PATCH sync at every level, nested one-to-one objects, and atomicity —
a failure in the last item of the deepest level rolls the whole request back, whatever
kind of failure it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.hooks import WriteEvent
from tests.testapp.models import Book, BookDetail, Chapter, Shelf

# -- schemas -------------------------------------------------------------------------------------------------------


class ChapterOut(BaseModel):
    id: int
    number: int
    title: str


class DetailOut(BaseModel):
    summary: str
    reviewed: bool


class BookOut(BaseModel):
    id: int
    title: str
    isbn: str
    pages: int
    detail: DetailOut | None
    chapters: list[ChapterOut]


class ShelfOut(BaseModel):
    code: str
    name: str
    books: list[BookOut]


def refuse_cursed_title(chapter: Chapter, title: str) -> None:
    """An ``orm_method`` writer that refuses one value (a model-level rule)."""
    if title == "cursed":
        raise ValueError("this title is not allowed")
    chapter.title = title


class ChapterWrite(BaseModel):
    id: int | None = None
    number: int = Field(ge=1, le=10_000, is_sync_matching_field=True)
    title: str = Field(orm_method=refuse_cursed_title)  # no max_length here: Django's own check applies


class DetailWrite(BaseModel):
    summary: str
    reviewed: bool = False


class BookWrite(BaseModel):
    id: int | None = None
    title: str
    isbn: str = Field(max_length=20, is_sync_matching_field=True)
    pages: int = Field(1, ge=0)
    detail: DetailWrite | None = None
    chapters: list[ChapterWrite] = Field(default_factory=list)


class ShelfCreate(BaseModel):
    code: str
    name: str
    books: list[BookWrite] = Field(default_factory=list)


class ShelfUpdate(BaseModel):
    name: str
    books: list[BookWrite] = Field(default_factory=list)


class BookUpdate(BaseModel):
    title: str
    isbn: str
    pages: int = 1
    detail: DetailWrite | None = None
    chapters: list[ChapterWrite] = Field(default_factory=list)


# -- the app -------------------------------------------------------------------------------------------------------

shelves = DjangoRouterSchema(
    name="shelves",
    model=Shelf,
    get=ShelfOut,
    create=ShelfCreate,
    update=ShelfUpdate,
    children=[DjangoRouterSchema(name="books", model=Book, get=BookOut, create=BookUpdate, update=BookUpdate)],
)


@shelves.hook("after_create")
def fail_when_asked(event: WriteEvent) -> None:
    """Fails after every nested row was written, when the shelf's name asks for it."""
    if event.instance.name == "fail in the hook":
        raise RuntimeError("the hook failed")


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(shelves.router)
    return app


@pytest.fixture
def api(shared_connection: None) -> Iterator[TestClient]:
    with TestClient(build_app(), raise_server_exceptions=False) as client:
        yield client


def chapters(*numbers: int, last_title: str | None = None) -> list[dict[str, Any]]:
    items = [{"number": n, "title": f"Chapter {n}"} for n in numbers]
    if last_title is not None:
        items[-1]["title"] = last_title
    return items


def three_levels(*, last_isbn: str = "isbn-3", last_title: str | None = None, name: str = "Main") -> dict[str, Any]:
    return {
        "code": "S1",
        "name": name,
        "books": [
            {"title": "One", "isbn": "isbn-1", "detail": {"summary": "first"}, "chapters": chapters(1, 2)},
            {"title": "Two", "isbn": "isbn-2", "chapters": chapters(1)},
            {"title": "Three", "isbn": last_isbn, "chapters": chapters(1, 2, 3, last_title=last_title)},
        ],
    }


def database_state() -> tuple[Any, ...]:
    """Every row the tree can write, to compare before and after a failed request."""
    return (
        list(Shelf.objects.order_by("code").values_list("code", "name")),
        list(Book.objects.order_by("pk").values_list("pk", "shelf_id", "title", "isbn", "pages")),
        list(Chapter.objects.order_by("pk").values_list("pk", "book_id", "number", "title")),
        list(BookDetail.objects.order_by("pk").values_list("book_id", "summary", "reviewed")),
    )


# -- nested create -------------------------------------------------------------------------------------------------


def test_create_writes_three_levels_and_a_nested_object(api: TestClient) -> None:
    response = api.post("/shelves", json=three_levels())

    assert response.status_code == 201, response.text
    books = response.json()["books"]
    assert [b["title"] for b in books] == ["One", "Two", "Three"]
    assert [c["number"] for c in books[2]["chapters"]] == [1, 2, 3]
    assert books[0]["detail"] == {"summary": "first", "reviewed": False}
    assert books[1]["detail"] is None
    assert Chapter.objects.count() == 6


# -- atomicity: a late failure rolls back everything ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status", "what"),
    [
        (three_levels(last_title="x" * 101), 422, "Django field validation of the last chapter"),
        (three_levels(last_isbn="isbn-1"), 409, "a unique constraint hit by the last book"),
        (three_levels(last_title="cursed"), 422, "an orm_method refusing the last chapter"),
        (three_levels(name="fail in the hook"), 500, "a hook failing after every row was written"),
    ],
    ids=["validation", "constraint", "orm-method", "hook"],
)
def test_a_late_failure_in_a_nested_create_leaves_the_database_as_before(
    api: TestClient, payload: dict[str, Any], status: int, what: str
) -> None:
    Shelf.objects.create(code="S0", tenant_id="t", name="Existing")
    before = database_state()

    response = api.post("/shelves", json=payload)

    assert response.status_code == status, (what, response.text)
    assert database_state() == before, what


def test_the_failures_point_at_the_last_item(api: TestClient) -> None:
    too_long = api.post("/shelves", json=three_levels(last_title="x" * 101)).json()["detail"][0]
    cursed = api.post("/shelves", json=three_levels(last_title="cursed")).json()["detail"][0]
    duplicate = api.post("/shelves", json=three_levels(last_isbn="isbn-1")).json()["detail"]

    assert too_long["loc"] == ["body", "books", 2, "chapters", 2, "title"]
    assert cursed["loc"] == ["body", "books", 2, "chapters", 2, "title"]
    assert cursed["msg"] == "this title is not allowed"
    assert duplicate["code"] == "integrity:testapp_book_isbn_key"


def test_a_hook_failure_is_a_500_without_details(api: TestClient) -> None:
    response = api.post("/shelves", json=three_levels(name="fail in the hook"))

    assert response.status_code == 500
    assert response.json()["detail"]["type"] == "internal_error"
    assert "the hook failed" not in response.text


# -- PUT and PATCH sync at every level -----------------------------------------------------------------------------


@pytest.fixture
def stocked(api: TestClient) -> dict[str, Any]:
    response = api.post("/shelves", json=three_levels())
    assert response.status_code == 201
    return response.json()


def test_put_syncs_books_and_their_chapters(api: TestClient, stocked: dict[str, Any]) -> None:
    one, two, three = stocked["books"]
    body = {
        "name": "Renamed",
        "books": [
            {  # kept by id: renamed, one chapter updated by id, one matched by number, one new
                "id": one["id"],
                "title": "One, revised",
                "isbn": "isbn-1",
                "chapters": [
                    {"id": one["chapters"][0]["id"], "number": 1, "title": "Opening"},
                    {"number": 2, "title": "Middle"},
                    {"number": 5, "title": "Epilogue"},
                ],
            },
            {"title": "Three", "isbn": "isbn-3"},  # matched by isbn; its chapters left out: untouched
            {"title": "Four", "isbn": "isbn-4", "chapters": chapters(1)},  # new
        ],  # "Two" is not listed: deleted with its chapters
    }

    response = api.put("/shelves/S1", json=body)

    assert response.status_code == 200, response.text
    books = {b["title"]: b for b in response.json()["books"]}
    assert set(books) == {"One, revised", "Three", "Four"}
    revised = books["One, revised"]
    assert revised["id"] == one["id"]
    assert [(c["number"], c["title"]) for c in revised["chapters"]] == [(1, "Opening"), (2, "Middle"), (5, "Epilogue")]
    assert revised["chapters"][0]["id"] == one["chapters"][0]["id"]
    assert revised["chapters"][1]["id"] == one["chapters"][1]["id"]
    assert books["Three"]["id"] == three["id"]
    assert [c["number"] for c in books["Three"]["chapters"]] == [1, 2, 3]
    assert not Book.objects.filter(pk=two["id"]).exists()
    assert not Chapter.objects.filter(book_id=two["id"]).exists()


def test_a_late_failure_in_a_put_sync_leaves_the_database_as_before(api: TestClient, stocked: dict[str, Any]) -> None:
    one = stocked["books"][0]
    before = database_state()
    body = {
        "name": "Renamed",
        "books": [
            {"id": one["id"], "title": "One", "isbn": "isbn-1", "chapters": chapters(1, 2, 3, last_title="x" * 101)},
        ],
    }

    response = api.put("/shelves/S1", json=body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "books", 0, "chapters", 2, "title"]
    assert database_state() == before


def test_patch_without_the_list_leaves_every_level_alone(api: TestClient, stocked: dict[str, Any]) -> None:
    before = database_state()

    response = api.patch("/shelves/S1", json={"name": "Renamed"})

    assert response.status_code == 200
    books, chapters_, details = database_state()[1:]
    assert (books, chapters_, details) == before[1:]


def test_an_id_of_another_parents_row_is_refused(api: TestClient, stocked: dict[str, Any]) -> None:
    other_shelf = Shelf.objects.create(code="S2", tenant_id="t", name="Other")
    foreign = Book.objects.create(shelf=other_shelf, title="Foreign", isbn="isbn-foreign")
    before = database_state()

    response = api.put(
        "/shelves/S1", json={"name": "x", "books": [{"id": foreign.pk, "title": "Mine now", "isbn": "z"}]}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "books", 0, "id"]
    assert database_state() == before
    foreign.refresh_from_db()
    assert foreign.title == "Foreign"


# -- nested one-to-one objects -------------------------------------------------------------------------------------


def test_a_nested_object_is_created_updated_and_deleted_with_null(api: TestClient, stocked: dict[str, Any]) -> None:
    two = stocked["books"][1]
    path = f"/shelves/S1/books/{two['id']}"
    base = {"title": "Two", "isbn": "isbn-2"}

    created = api.put(path, json={**base, "detail": {"summary": "new"}})
    updated = api.patch(path, json={"detail": {"summary": "changed", "reviewed": True}})
    untouched = api.patch(path, json={"title": "Two!"})
    removed = api.patch(path, json={"detail": None})

    assert created.json()["detail"] == {"summary": "new", "reviewed": False}
    assert updated.json()["detail"] == {"summary": "changed", "reviewed": True}
    assert untouched.json()["detail"] == {"summary": "changed", "reviewed": True}
    assert removed.json()["detail"] is None
    assert not BookDetail.objects.filter(book_id=two["id"]).exists()
    assert BookDetail.objects.count() == 1  # the first book's detail is someone else's


def test_nested_lists_are_bounded_by_max_nested_items(api: TestClient, settings: Any) -> None:
    """A schema without max_length still can't make one request write unbounded rows."""
    settings.DJFAPI = {**settings.DJFAPI, "MAX_NESTED_ITEMS": 2}
    two = {"code": "S2", "name": "Two", "books": [{"title": "a", "isbn": "1"}, {"title": "b", "isbn": "2"}]}
    three = {"code": "S3", "name": "Three", "books": [{"title": t, "isbn": t} for t in "abc"]}

    accepted = api.post("/shelves", json=two)
    refused = api.post("/shelves", json=three)

    assert accepted.status_code == 201
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["type"] == "too_long"
    assert refused.json()["detail"][0]["loc"] == ["body", "books"]
    assert not Shelf.objects.filter(code="S3").exists()

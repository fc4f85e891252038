"""Write hooks: they run inside the write's transaction, see the caller and the row
before and after, can change the row, and can refuse the write — which rolls back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import Conflict, ValidationFailed, install_error_handlers
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.hooks import WriteEvent
from tests.testapp.models import Book, Chapter, Shelf


class ChapterOut(BaseModel):
    number: int
    title: str


class BookOut(BaseModel):
    id: int
    title: str
    isbn: str
    pages: int
    chapters: list[ChapterOut]


class ChapterWrite(BaseModel):
    id: int | None = None
    number: int
    title: str


class BookWrite(BaseModel):
    title: str
    isbn: str
    pages: int = 1
    chapters: list[ChapterWrite] = Field(default_factory=list)


class ShelfOut(BaseModel):
    code: str
    name: str


class ChapterNode(BaseModel):
    number: int
    title: str


def make_tree(calls: list[tuple[str, object]]) -> DjangoRouterSchema:
    """A shelf -> books -> chapters tree whose book hooks record what they saw in ``calls``."""
    books = DjangoRouterSchema(
        name="books",
        model=Book,
        get=BookOut,
        create=BookWrite,
        update=BookWrite,
        children=[DjangoRouterSchema(name="chapters", model=Chapter, get=ChapterOut, create=ChapterNode)],
    )
    tree = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfOut, children=[books])
    chapters = books.children[0]

    @books.hook("before_create")
    def stamp_title(event: WriteEvent) -> None:
        calls.append(("before_create", event.instance.pk))
        event.instance.title = f"{event.instance.title} ({event.ids['shelf_id']})"

    @books.hook("after_create")
    def see_saved_book(event: WriteEvent) -> None:
        calls.append(("after_create", event.instance.chapters.count()))
        if event.instance.isbn == "refuse-after":
            raise Conflict("refused after the rows were written", code="refused")

    @books.hook("before_update")
    def no_shrinking(event: WriteEvent) -> None:
        calls.append(("before_update", event.previous["pages"]))
        if event.instance.pages < event.previous["pages"]:
            raise ValidationFailed("a book cannot lose pages", loc=("body", "pages"), value=event.instance.pages)

    @books.hook("after_update")
    def see_update(event: WriteEvent) -> None:
        calls.append(("after_update", (event.previous["title"], event.instance.title)))

    @books.hook("before_delete")
    def keep_classics(event: WriteEvent) -> None:
        calls.append(("before_delete", event.instance.pk))
        if event.instance.title.startswith("Classic"):
            raise Conflict("classics stay", code="classic")

    @books.hook("after_delete")
    def see_delete(event: WriteEvent) -> None:
        calls.append(("after_delete", event.previous["title"]))

    @chapters.hook("before_create")
    def chapter_hook(event: WriteEvent) -> None:
        calls.append(("chapter_before_create", event.instance.number))

    return tree


@pytest.fixture
def calls() -> list[tuple[str, object]]:
    return []


@pytest.fixture
def api(shared_connection: None, calls: list[tuple[str, object]]) -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_tree(calls).router)
    Shelf.objects.create(code="S1", tenant_id="t", name="Main")
    with TestClient(app) as client:
        yield client


def test_before_create_changes_the_row_before_it_is_saved(api: TestClient, calls: list[tuple[str, object]]) -> None:
    response = api.post(
        "/shelves/S1/books", json={"title": "Dune", "isbn": "1", "chapters": [{"number": 1, "title": "a"}]}
    )

    assert response.status_code == 201
    assert response.json()["title"] == "Dune (S1)"
    assert Book.objects.get().title == "Dune (S1)"
    # before the save (no pk yet), after it with the nested rows written; nested rows
    # of the book's body are not the chapters node's own writes, so its hook is silent
    assert calls == [("before_create", None), ("after_create", 1)]


def test_a_hook_refusing_after_the_rows_were_written_rolls_everything_back(
    api: TestClient, calls: list[tuple[str, object]]
) -> None:
    body = {"title": "Dune", "isbn": "refuse-after", "chapters": [{"number": 1, "title": "a"}]}

    response = api.post("/shelves/S1/books", json=body)

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "refused"
    assert not Book.objects.exists()
    assert not Chapter.objects.exists()


def test_before_update_sees_the_previous_row_and_refuses_with_a_422(
    api: TestClient, calls: list[tuple[str, object]]
) -> None:
    book = Book.objects.create(shelf_id="S1", title="Dune", isbn="1", pages=300)

    refused = api.patch(f"/shelves/S1/books/{book.pk}", json={"pages": 200, "title": "Shorter"})
    accepted = api.patch(f"/shelves/S1/books/{book.pk}", json={"pages": 400, "title": "Longer"})

    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {"type": "value_error", "loc": ["body", "pages"], "msg": "a book cannot lose pages", "input": 200}
    ]
    assert accepted.status_code == 200
    book.refresh_from_db()
    assert (book.title, book.pages) == ("Longer", 400)
    assert ("after_update", ("Dune", "Longer")) in calls
    assert [c for c in calls if c[0] == "before_update"] == [("before_update", 300), ("before_update", 300)]


def test_before_delete_can_refuse_and_after_delete_sees_the_row(
    api: TestClient, calls: list[tuple[str, object]]
) -> None:
    classic = Book.objects.create(shelf_id="S1", title="Classic Emma", isbn="1")
    modern = Book.objects.create(shelf_id="S1", title="Modern", isbn="2")

    refused = api.delete(f"/shelves/S1/books/{classic.pk}")
    deleted = api.delete(f"/shelves/S1/books/{modern.pk}")

    assert refused.status_code == 409
    assert Book.objects.filter(pk=classic.pk).exists()
    assert deleted.status_code == 204
    assert not Book.objects.filter(pk=modern.pk).exists()
    assert ("after_delete", "Modern") in calls
    assert ("after_delete", "Classic Emma") not in calls


def test_a_nodes_hooks_fire_for_its_own_routes(api: TestClient, calls: list[tuple[str, object]]) -> None:
    book = Book.objects.create(shelf_id="S1", title="Dune", isbn="1")

    response = api.post(f"/shelves/S1/books/{book.pk}/chapters", json={"number": 7, "title": "x"})

    assert response.status_code == 201
    assert calls == [("chapter_before_create", 7)]


def test_hook_registration_refuses_unknown_events_and_async_functions() -> None:
    tree = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfOut)

    with pytest.raises(SchemaDefinitionError, match="unknown hook event 'before_save'"):
        tree.hook("before_save")(lambda event: None)  # type: ignore[arg-type]

    async def asynchronous(event: WriteEvent) -> None:
        return None

    with pytest.raises(SchemaDefinitionError, match="must be a plain 'def'"):
        tree.hook("after_create")(asynchronous)  # type: ignore[arg-type]

    tree.hook("after_create")(lambda event: None)  # a sync function is accepted

"""Bulk create (``create_multi``): POST takes one object or a bounded list, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from tests.testapp.models import Book, Shelf


class BookOut(BaseModel):
    id: int
    title: str
    isbn: str


class BookWrite(BaseModel):
    title: str = Field(min_length=1)
    isbn: str = Field(max_length=20)


class ShelfOut(BaseModel):
    code: str


def make_app(create_multi: bool | int) -> FastAPI:
    books = DjangoRouterSchema(name="books", model=Book, get=BookOut, create=BookWrite, create_multi=create_multi)
    tree = DjangoRouterSchema(
        name="shelves", model=Shelf, get=ShelfOut, children=[books], pagination_options={"max_limit": 5}
    )
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return app


@pytest.fixture
def api(shared_connection: None) -> Iterator[TestClient]:
    Shelf.objects.create(code="S1", tenant_id="t", name="Main")
    with TestClient(make_app(3)) as client:
        yield client


def books(*isbns: str) -> list[dict[str, Any]]:
    return [{"title": f"Book {isbn}", "isbn": isbn} for isbn in isbns]


def test_a_list_creates_every_object_in_order(api: TestClient) -> None:
    response = api.post("/shelves/S1/books", json=books("c", "a", "b"))

    assert response.status_code == 201
    items = response.json()["items"]
    assert [item["isbn"] for item in items] == ["c", "a", "b"]
    assert [item["id"] for item in items] == sorted(item["id"] for item in items)
    assert list(Book.objects.order_by("pk").values_list("isbn", flat=True)) == ["c", "a", "b"]


def test_one_object_still_creates_one(api: TestClient) -> None:
    response = api.post("/shelves/S1/books", json={"title": "Alone", "isbn": "x"})

    assert response.status_code == 201
    assert response.json()["isbn"] == "x"


def test_an_invalid_item_is_a_422_at_its_index_and_nothing_is_created(api: TestClient) -> None:
    body = books("a", "b", "c")
    body[2]["title"] = ""

    response = api.post("/shelves/S1/books", json=body)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", 2, "title"]]
    assert not Book.objects.exists()


def test_a_single_invalid_object_keeps_the_plain_location(api: TestClient) -> None:
    response = api.post("/shelves/S1/books", json={"title": "", "isbn": "x"})

    assert [error["loc"] for error in response.json()["detail"]] == [["body", "title"]]


def test_a_constraint_violation_in_the_last_item_rolls_back_the_others(api: TestClient) -> None:
    Book.objects.create(shelf_id="S1", title="Existing", isbn="taken")

    response = api.post("/shelves/S1/books", json=books("a", "b", "taken"))

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "integrity:testapp_book_isbn_key"
    assert list(Book.objects.values_list("isbn", flat=True)) == ["taken"]


def test_the_list_length_is_bounded(api: TestClient) -> None:
    too_many = api.post("/shelves/S1/books", json=books("a", "b", "c", "d"))
    empty = api.post("/shelves/S1/books", json=[])

    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["type"] == "too_long"
    assert too_many.json()["detail"][0]["loc"] == ["body"]
    assert empty.status_code == 422
    assert not Book.objects.exists()


def test_create_multi_true_bounds_the_list_by_max_limit(shared_connection: None) -> None:
    Shelf.objects.create(code="S1", tenant_id="t", name="Main")
    with TestClient(make_app(True)) as client:
        five = client.post("/shelves/S1/books", json=books("1", "2", "3", "4", "5"))
        six = client.post("/shelves/S1/books", json=books("6", "7", "8", "9", "10", "11"))

    assert five.status_code == 201
    assert six.status_code == 422


def test_without_create_multi_a_list_is_refused(shared_connection: None) -> None:
    Shelf.objects.create(code="S1", tenant_id="t", name="Main")
    with TestClient(make_app(False)) as client:
        response = client.post("/shelves/S1/books", json=books("a"))

    assert response.status_code == 422
    assert not Book.objects.exists()


def test_openapi_documents_one_or_many() -> None:
    operation = make_app(3).openapi()["paths"]["/shelves/{shelf_id}/books"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]

    assert len(body["oneOf"]) == 2
    many = next(option for option in body["oneOf"] if option.get("type") == "array")
    assert (many["minItems"], many["maxItems"]) == (1, 3)
    assert (
        "oneOf" in operation["responses"]["201"]["content"]["application/json"]["schema"]
        or "anyOf" in (operation["responses"]["201"]["content"]["application/json"]["schema"])
    )

"""Lists of products: generated filters, ordering, paging, and 422 for what is not a filter."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.test_api import create_shop

PRODUCTS = [
    {"name": "Tea", "price": "4.50"},
    {"name": "Green Tea", "price": "5.20"},
    {"name": "Milk", "price": "1.20", "in_stock": False},
    {"name": "Scones", "price": "2.50"},
]


@pytest.fixture
def products(client: TestClient) -> str:
    """The products path of a shop holding ``PRODUCTS`` (and another shop's, which never show)."""
    shop = create_shop(client, products=PRODUCTS)
    create_shop(client, name="Elsewhere", products=[{"name": "Tea", "price": "9.99"}])
    return f"/shops/{shop['id']}/products"


def names(client: TestClient, path: str, query: str) -> list[str]:
    response = client.get(f"{path}?{query}", headers=auth("alice"))
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Tea", "Green Tea", "Milk", "Scones"]),  # by primary key by default
        ("in_stock=false", ["Milk"]),
        ("!in_stock=false", ["Tea", "Green Tea", "Scones"]),
        ("name=Tea", ["Tea"]),
        ("name__icontains=tea", ["Tea", "Green Tea"]),
        ("price__gte=2.50", ["Tea", "Green Tea", "Scones"]),
        ("price__lte=2.50", ["Milk", "Scones"]),
        ("price__gte=2&price__lte=5&in_stock=true", ["Tea", "Scones"]),
        ("order_by=price", ["Milk", "Scones", "Tea", "Green Tea"]),
        ("order_by=-price", ["Green Tea", "Tea", "Scones", "Milk"]),
        ("order_by=in_stock&order_by=-name", ["Milk", "Tea", "Scones", "Green Tea"]),
        ("order_by=name&limit=2", ["Green Tea", "Milk"]),
        ("order_by=name&limit=2&offset=2", ["Scones", "Tea"]),
    ],
)
def test_filters_and_ordering(client: TestClient, products: str, query: str, expected: list[str]) -> None:
    assert names(client, products, query) == expected


def test_total_counts_the_filtered_rows(client: TestClient, products: str) -> None:
    response = client.get(f"{products}?in_stock=true&limit=1&total=true", headers=auth("alice"))

    assert response.json()["total"] == 3
    assert len(response.json()["items"]) == 1


def test_shops_filter_on_their_product_count(client: TestClient, products: str) -> None:
    response = client.get("/shops?products__count__gte=2", headers=auth("alice"))

    assert [shop["name"] for shop in response.json()["items"]] == ["Corner Shop"]


@pytest.mark.parametrize(
    ("query", "name", "kind"),
    [
        ("prize__gte=2", "prize__gte", "extra_forbidden"),  # a typo is never an unfiltered list
        ("shop_id=1", "shop_id", "extra_forbidden"),  # the parent comes from the URL
        ("price__gte=cheap", "price__gte", "decimal_parsing"),
        ("in_stock=maybe", "in_stock", "bool_parsing"),
        ("limit=0", "limit", "greater_than_equal"),
    ],
)
def test_what_is_not_a_filter_is_422(client: TestClient, products: str, query: str, name: str, kind: str) -> None:
    response = client.get(f"{products}?{query}", headers=auth("alice"))

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["query", name], kind)


def test_ordering_by_an_unknown_field_is_422(client: TestClient, products: str) -> None:
    response = client.get(f"{products}?order_by=cost", headers=auth("alice"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "order_by", 0]

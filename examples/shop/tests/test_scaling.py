"""Lists that scale: reviews best first by cursor (mixed directions), products with a bounded
offset, totals exact or estimated, and the indexes the advisor asks for in place."""

from __future__ import annotations

from typing import Any

from catalog.models import Review
from fastapi.testclient import TestClient

from djfapi.routing.index_advice import advice_for_tree
from tests.conftest import auth
from tests.test_api import create_shop


def reviews_path(client: TestClient) -> str:
    shop = create_shop(client, products=[{"name": "Tea", "price": "4.50"}])
    product = shop["products"][0]["id"]
    # 23 reviews with many equal ratings: the id breaks the ties
    Review.objects.bulk_create(Review(product_id=product, author_id=f"c{n}", rating=n % 5 + 1) for n in range(23))
    return f"/shops/{shop['id']}/products/{product}/reviews"


def test_reviews_walk_best_first_by_cursor_each_exactly_once(client: TestClient) -> None:
    path = reviews_path(client)
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        query = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=query, headers=auth("bob")).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    expected = sorted(Review.objects.all(), key=lambda review: (-review.rating, review.pk))
    assert [item["id"] for item in seen] == [review.pk for review in expected]


def test_a_forged_or_foreign_cursor_is_a_422(client: TestClient) -> None:
    path = reviews_path(client)
    cursor = client.get(path, params={"limit": "2"}, headers=auth("bob")).json()["next_cursor"]

    assert client.get(path, params={"cursor": cursor + "x"}, headers=auth("bob")).status_code == 422
    assert client.get(path, params={"cursor": cursor, "order_by": "id"}, headers=auth("bob")).status_code == 422
    assert client.get(path, params={"cursor": cursor}, headers=auth("bob")).status_code == 200


def test_product_offsets_stop_at_500_and_point_to_the_cursor(client: TestClient) -> None:
    shop = create_shop(client, products=[{"name": "Tea", "price": "4.50"}])
    path = f"/shops/{shop['id']}/products"

    assert client.get(path, params={"offset": "500"}, headers=auth("alice")).json()["items"] == []
    refused = client.get(path, params={"offset": "501"}, headers=auth("alice"))

    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["loc"] == ["query", "offset"] and "cursor" in error["msg"]


def test_totals_are_exact_or_marked_as_estimates(client: TestClient) -> None:
    shop = create_shop(client, products=[{"name": "Tea", "price": "4.50"}, {"name": "Milk", "price": "1.20"}])
    path = f"/shops/{shop['id']}/products"

    exact = client.get(path, params={"total": "true"}, headers=auth("alice")).json()
    estimate = client.get(path, params={"total": "estimate"}, headers=auth("alice")).json()

    assert exact["total"] == 2 and "total_estimated" not in exact
    # Two rows are under EXACT_COUNT_BELOW (1000): counted, and said so.
    assert (estimate["total"], estimate["total_estimated"]) == (2, False)
    assert client.get(path, params={"total": "perhaps"}, headers=auth("alice")).status_code == 422


def test_the_shop_declares_every_index_the_advisor_asks_for() -> None:
    from catalog.api import router

    assert advice_for_tree(router) == []


def test_on_postgresql_the_products_order_index_holds_upper_name_for_substring_pages() -> None:
    from catalog.api import router
    from catalog.models import Product

    from djfapi.routing.index_advice import advise, model_indexes, silenced

    (products,) = [node for node in router.children if node.name == "products"]
    advice = [a.check_id for a in advise(products, vendor="postgresql") if not silenced(products, a.check_id)]

    assert advice == []  # W115's trigram index is silenced: a GIN index is PostgreSQL's only
    assert (("shop", False), ("id", False), ("upper(name)", False)) in model_indexes(Product)


def test_a_shops_product_total_comes_from_the_row_counter_and_hides_other_tenants_shops(client: TestClient) -> None:
    from django.db import connection

    products = [{"name": f"P{n}", "price": "1.00", "in_stock": n % 3 != 0} for n in range(7)]
    shop = create_shop(client, products=products)
    path = f"/shops/{shop['id']}/products"

    def totals() -> tuple[int, int]:
        every = client.get(path, params={"total": "true", "limit": "1"}, headers=auth("alice")).json()
        in_stock = client.get(path, params={"total": "true", "in_stock": "true"}, headers=auth("alice")).json()
        return every["total"], in_stock["total"]

    assert totals() == (7, 4)
    # The counter is what answers: skew it, and the totals follow (then put it right again).
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_product_counts SET djfapi_rows = djfapi_rows + 100 WHERE in_stock")
        try:
            assert totals() == (107, 104)
        finally:
            cursor.execute("UPDATE catalog_product_counts SET djfapi_rows = djfapi_rows - 100 WHERE in_stock")
    assert totals() == (7, 4)
    # Neither another tenant's caller nor a shopkeeper of the same tenant who does not own the
    # shop learns anything, not even how many products it has.
    for person in ("eve", "frank"):
        refused = client.get(path, params={"total": "true"}, headers=auth(person))
        assert refused.status_code == 404 and "total" not in refused.text


def test_substring_pages_at_an_offset_and_a_wildcard_is_only_a_character(client: TestClient) -> None:
    # (djfapi reads such a page by its keys first: tests/test_offset_pages.py checks the statement)
    products = [{"name": f"Tea {n:02d}" if n % 3 else f"Coffee {n:02d}", "price": "1.00"} for n in range(12)]
    products.append({"name": "100% Tea", "price": "2.00"})
    shop = create_shop(client, products=products)
    create_shop(client, name="Elsewhere", products=[{"name": "Tea 99", "price": "1.00"}])
    path = f"/shops/{shop['id']}/products"

    def names(**params: str) -> list[str]:
        response = client.get(path, params={"order_by": "name", **params}, headers=auth("alice"))
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    # "100% Tea", "Tea 01", "Tea 02", "Tea 04", "Tea 05", "Tea 07", "Tea 08", "Tea 10", "Tea 11"; never "Tea 99"
    assert names(name__icontains="tea", limit="3", offset="2") == ["Tea 02", "Tea 04", "Tea 05"]
    assert names(name__icontains="TEA", limit="3", offset="7") == ["Tea 10", "Tea 11"]
    # `%` and `_` are escaped: each matches itself, never any name
    assert names(name__icontains="%") == ["100% Tea"]
    assert names(name__icontains="_") == []
    # neither another tenant's caller nor a shopkeeper who does not own the shop reads it
    for person in ("eve", "frank"):
        assert client.get(path, params={"name__icontains": "tea"}, headers=auth(person)).status_code == 404

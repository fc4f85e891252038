"""Another tenant's shop, product or review is a 404 at every level, for every method —
never a 403, never a write — even for a caller holding every scope."""

from __future__ import annotations

from decimal import Decimal

import pytest
from catalog.models import Product, Review, Shop
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.test_api import MILK, TEA, create_review, create_shop

NOT_FOUND = {"type": "not_found", "code": "not_exist:shop", "message": "Shop does not exist.", "detail": None}


@pytest.fixture
def acme(client: TestClient) -> dict[str, int]:
    """Ids of a shop of tenant acme with a product and a review."""
    shop = create_shop(client, products=[TEA, MILK])
    product_id = shop["products"][0]["id"]
    review = create_review(client, shop["id"], product_id)
    return {"shop": shop["id"], "product": product_id, "review": review["id"]}


def test_another_tenant_lists_nothing(client: TestClient, acme: dict[str, int]) -> None:
    assert client.get("/shops", headers=auth("eve")).json() == {"items": []}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/shops/{shop}", None),
        ("PATCH", "/shops/{shop}", {"name": "Mine now"}),
        ("PUT", "/shops/{shop}", {"name": "Mine now"}),
        ("DELETE", "/shops/{shop}", None),
        ("GET", "/shops/{shop}/products", None),
        ("POST", "/shops/{shop}/products", TEA),
        ("GET", "/shops/{shop}/products/{product}", None),
        ("PATCH", "/shops/{shop}/products/{product}", {"price": "0.01"}),
        ("PUT", "/shops/{shop}/products/{product}", {"name": "Mine", "price": "0.01"}),
        ("DELETE", "/shops/{shop}/products/{product}", None),
        ("GET", "/shops/{shop}/products/{product}/reviews", None),
        ("POST", "/shops/{shop}/products/{product}/reviews", {"rating": 1, "text": "spam"}),
        ("GET", "/shops/{shop}/products/{product}/reviews/{review}", None),
        ("PATCH", "/shops/{shop}/products/{product}/reviews/{review}", {"rating": 1}),
        ("PUT", "/shops/{shop}/products/{product}/reviews/{review}", {"rating": 1}),
        ("DELETE", "/shops/{shop}/products/{product}/reviews/{review}", None),
        ("GET", "/shops/{shop}/products/subscribe", None),
    ],
)
def test_another_tenant_gets_404_at_every_level(
    client: TestClient, acme: dict[str, int], method: str, path: str, body: dict | None
) -> None:
    before = (list(Shop.objects.values()), list(Product.objects.values()), list(Review.objects.values()))

    response = client.request(method, path.format(**acme), json=body, headers=auth("eve"))

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": NOT_FOUND}
    assert (list(Shop.objects.values()), list(Product.objects.values()), list(Review.objects.values())) == before


def test_a_missing_shop_answers_exactly_like_another_tenants(client: TestClient, acme: dict[str, int]) -> None:
    hidden = client.get(f"/shops/{acme['shop']}/products", headers=auth("eve"))
    missing = client.get("/shops/999999/products", headers=auth("eve"))

    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())


def test_another_tenant_cannot_move_a_product_into_its_own_shop(client: TestClient, acme: dict[str, int]) -> None:
    theirs = create_shop(client, "eve", name="Eve's")
    body = {"name": "Eve's", "products": [{"id": acme["product"], "name": "Stolen", "price": "0.01"}]}

    response = client.put(f"/shops/{theirs['id']}", json=body, headers=auth("eve"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "products", 0, "id"]
    assert Product.objects.get(pk=acme["product"]).name == "Tea"
    assert Product.objects.get(pk=acme["product"]).shop_id == acme["shop"]


def test_an_id_in_a_created_item_is_422_and_never_reaches_another_tenants_product(
    client: TestClient, acme: dict[str, int]
) -> None:
    taken = {"name": "Eve's", "products": [{"id": acme["product"], "name": "Stolen", "price": "0.01"}]}
    free = {"name": "Eve's", "products": [{"id": 999999, "name": "Stolen", "price": "0.01"}]}

    answers = [client.post("/shops", json=body, headers=auth("eve")) for body in (taken, free)]

    # Ids are the server's: the same 422 whether the id exists (in another tenant) or not.
    assert [answer.status_code for answer in answers] == [422, 422]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["detail"][0]["loc"] == ["body", "products", 0, "id"]
    tea = Product.objects.get(pk=acme["product"])
    assert (tea.name, tea.price, tea.shop_id) == ("Tea", Decimal("4.50"), acme["shop"])
    assert not Shop.objects.filter(tenant_id="globex").exists()

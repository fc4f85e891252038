"""The three levels through the real app: list, create, get, patch, put and delete;
nested products in a shop's body; owners from the token; ``own`` scopes."""

from __future__ import annotations

from typing import Any

from catalog.models import Product, Review, Shop
from fastapi.testclient import TestClient

from tests.conftest import TENANT, auth

TEA = {"name": "Tea", "price": "4.50"}
MILK = {"name": "Milk", "price": "1.20", "in_stock": False}


def create_shop(client: TestClient, person: str = "alice", **body: Any) -> dict[str, Any]:
    response = client.post("/shops", json={"name": "Corner Shop", **body}, headers=auth(person))
    assert response.status_code == 201, response.text
    return response.json()


def create_product(client: TestClient, shop_id: int, person: str = "alice", **body: Any) -> dict[str, Any]:
    response = client.post(f"/shops/{shop_id}/products", json={**TEA, **body}, headers=auth(person))
    assert response.status_code == 201, response.text
    return response.json()


def create_review(client: TestClient, shop_id: int, product_id: int, person: str = "bob") -> dict[str, Any]:
    path = f"/shops/{shop_id}/products/{product_id}/reviews"
    response = client.post(path, json={"rating": 5, "text": "Lovely"}, headers=auth(person))
    assert response.status_code == 201, response.text
    return response.json()


# -- shops -------------------------------------------------------------------------------


def test_shops_create_get_list_patch_put_delete(client: TestClient) -> None:
    shop = create_shop(client)
    assert shop == {"id": shop["id"], "owner_id": "alice", "name": "Corner Shop", "products": []}
    path = f"/shops/{shop['id']}"

    assert client.get(path, headers=auth("alice")).json() == shop
    assert client.get("/shops", headers=auth("alice")).json() == {"items": [shop]}

    patched = client.patch(path, json={"name": "Corner Shop & Café"}, headers=auth("alice"))
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Corner Shop & Café"

    replaced = client.put(path, json={"name": "The Corner"}, headers=auth("alice"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {**shop, "name": "The Corner"}

    assert client.delete(path, headers=auth("alice")).status_code == 204
    assert client.get(path, headers=auth("alice")).status_code == 404
    assert not Shop.objects.exists()


def test_a_shop_is_tied_to_the_token_tenant_and_owner(client: TestClient) -> None:
    shop = create_shop(client)

    row = Shop.objects.get(pk=shop["id"])
    assert (row.tenant_id, row.owner_id) == (TENANT, "alice")


def test_owner_and_tenant_cannot_come_from_a_body(client: TestClient) -> None:
    for field in ("owner_id", "tenant_id"):
        response = client.post("/shops", json={"name": "Mine", field: "mallory"}, headers=auth("alice"))
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", field]
        assert response.json()["detail"][0]["type"] == "extra_forbidden"

    shop = create_shop(client)
    response = client.patch(f"/shops/{shop['id']}", json={"owner_id": "mallory"}, headers=auth("alice"))
    assert response.status_code == 422
    assert not Shop.objects.filter(owner_id="mallory").exists()


def test_a_write_without_the_scope_is_403_and_without_a_token_401(client: TestClient) -> None:
    refused = client.post("/shops", json={"name": "Nope"}, headers=auth("bob"))
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "required_scope_missing"

    anonymous = client.get("/shops")
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"]["code"] == "token_missing"


# -- nested products in a shop's body ------------------------------------------------------


def test_a_shop_is_created_with_its_products(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA, MILK])

    assert [(p["name"], p["price"], p["in_stock"]) for p in shop["products"]] == [
        ("Tea", "4.50", True),
        ("Milk", "1.20", False),
    ]
    assert list(Product.objects.filter(shop_id=shop["id"]).values_list("name", flat=True).order_by("pk")) == [
        "Tea",
        "Milk",
    ]


def test_put_syncs_the_products_it_sends(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA, MILK])
    tea, milk = shop["products"]

    body = {"name": "Corner Shop", "products": [{**tea, "price": "4.80"}, {"name": "Scones", "price": "2.50"}]}
    response = client.put(f"/shops/{shop['id']}", json=body, headers=auth("alice"))

    assert response.status_code == 200, response.text
    products = response.json()["products"]
    assert [(p["id"] == tea["id"], p["name"], p["price"]) for p in products] == [
        (True, "Tea", "4.80"),  # updated in place
        (False, "Scones", "2.50"),  # created
    ]
    assert not Product.objects.filter(pk=milk["id"]).exists()  # not listed: deleted


def test_put_without_products_leaves_them_alone(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA, MILK])

    response = client.put(f"/shops/{shop['id']}", json={"name": "Renamed"}, headers=auth("alice"))

    assert response.status_code == 200, response.text
    assert response.json()["products"] == shop["products"]


def test_patch_items_are_partial(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA])
    (tea,) = shop["products"]

    body = {"products": [{"id": tea["id"], "in_stock": False}]}
    response = client.patch(f"/shops/{shop['id']}", json=body, headers=auth("alice"))

    assert response.status_code == 200, response.text
    assert response.json()["products"] == [{**tea, "in_stock": False}]


def test_a_nested_product_is_validated_and_nothing_is_half_written(client: TestClient) -> None:
    body = {"name": "Bad", "products": [TEA, {"name": "Milk", "price": "-1"}]}
    response = client.post("/shops", json=body, headers=auth("alice"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "products", 1, "price"]
    assert not Shop.objects.exists() and not Product.objects.exists()


def test_an_unknown_field_of_a_nested_product_is_422(client: TestClient) -> None:
    body = {"name": "Typo", "products": [{**TEA, "instock": False}]}
    response = client.post("/shops", json=body, headers=auth("alice"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "products", 0, "instock"]


def test_a_product_of_another_shop_cannot_be_synced_into_this_one(client: TestClient) -> None:
    mine = create_shop(client, products=[TEA])
    theirs = create_shop(client, "frank", products=[MILK])
    body = {"name": "Corner Shop", "products": [{**theirs["products"][0], "name": "Taken"}]}

    response = client.put(f"/shops/{mine['id']}", json=body, headers=auth("alice"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "products", 0, "id"]
    assert Product.objects.get(pk=theirs["products"][0]["id"]).name == "Milk"


# -- products --------------------------------------------------------------------------------


def test_products_create_get_list_patch_put_delete(client: TestClient) -> None:
    shop = create_shop(client)
    base = f"/shops/{shop['id']}/products"

    product = create_product(client, shop["id"])
    assert product == {"id": product["id"], "name": "Tea", "price": "4.50", "in_stock": True, "tag_ids": []}
    path = f"{base}/{product['id']}"

    assert client.get(path, headers=auth("alice")).json() == product
    assert client.get(base, headers=auth("alice")).json() == {"items": [product]}

    patched = client.patch(path, json={"in_stock": False}, headers=auth("alice"))
    assert patched.json() == {**product, "in_stock": False}

    replaced = client.put(path, json={"name": "Green Tea", "price": "5"}, headers=auth("alice"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {**product, "name": "Green Tea", "price": "5.00", "in_stock": True}

    assert client.delete(path, headers=auth("alice")).status_code == 204
    assert client.get(path, headers=auth("alice")).status_code == 404
    assert Shop.objects.filter(pk=shop["id"]).exists()


def test_a_product_takes_its_shop_from_the_url(client: TestClient) -> None:
    shop = create_shop(client)

    for field in ("shop_id", "shop"):
        response = client.post(f"/shops/{shop['id']}/products", json={**TEA, field: 99}, headers=auth("alice"))
        assert response.status_code == 422, response.text

    product = create_product(client, shop["id"])
    assert Product.objects.get(pk=product["id"]).shop_id == shop["id"]


def test_prices_are_exact_decimal_strings(client: TestClient) -> None:
    shop = create_shop(client)

    product = create_product(client, shop["id"], price="0.10")
    assert product["price"] == "0.10"

    too_precise = client.post(f"/shops/{shop['id']}/products", json={**TEA, "price": "1.005"}, headers=auth("alice"))
    assert too_precise.status_code == 422


def test_customers_read_products_but_do_not_write_them(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA])
    base = f"/shops/{shop['id']}/products"

    assert client.get(base, headers=auth("bob")).json() == {"items": shop["products"]}
    refused = client.post(base, json=TEA, headers=auth("bob"))
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "required_scope_missing"


# -- reviews -----------------------------------------------------------------------------------


def test_reviews_create_get_list_patch_put_delete(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA])
    base = f"/shops/{shop['id']}/products/{shop['products'][0]['id']}/reviews"

    review = create_review(client, shop["id"], shop["products"][0]["id"])
    assert review == {"id": review["id"], "author_id": "bob", "rating": 5, "text": "Lovely"}
    path = f"{base}/{review['id']}"

    assert client.get(path, headers=auth("bob")).json() == review
    assert client.get(base, headers=auth("bob")).json() == {"items": [review], "next_cursor": None}

    patched = client.patch(path, json={"rating": 4}, headers=auth("bob"))
    assert patched.status_code == 200, patched.text
    assert patched.json() == {**review, "rating": 4}

    replaced = client.put(path, json={"rating": 3}, headers=auth("bob"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {**review, "rating": 3, "text": ""}  # PUT: left out is the default

    assert client.delete(path, headers=auth("bob")).status_code == 204
    assert not Review.objects.exists()


def test_the_author_comes_from_the_token_never_from_the_body(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA])
    base = f"/shops/{shop['id']}/products/{shop['products'][0]['id']}/reviews"

    refused = client.post(base, json={"rating": 1, "author_id": "alice"}, headers=auth("bob"))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "author_id"]

    review = create_review(client, shop["id"], shop["products"][0]["id"], "dan")
    assert Review.objects.get(pk=review["id"]).author_id == "dan"


def test_ratings_are_1_to_5(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA])
    base = f"/shops/{shop['id']}/products/{shop['products'][0]['id']}/reviews"

    for rating in (0, 6):
        response = client.post(base, json={"rating": rating}, headers=auth("bob"))
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "rating"]


def test_a_customer_changes_only_their_own_reviews(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA])
    product_id = shop["products"][0]["id"]
    bobs = create_review(client, shop["id"], product_id, "bob")
    dans = create_review(client, shop["id"], product_id, "dan")
    base = f"/shops/{shop['id']}/products/{product_id}/reviews"

    assert client.patch(f"{base}/{bobs['id']}", json={"rating": 1}, headers=auth("bob")).status_code == 200
    hidden = client.patch(f"{base}/{dans['id']}", json={"rating": 1}, headers=auth("bob"))
    assert hidden.status_code == 404
    assert hidden.json()["detail"]["code"] == "not_exist:review"
    assert client.delete(f"{base}/{dans['id']}", headers=auth("bob")).status_code == 404
    assert Review.objects.get(pk=dans["id"]).rating == 5

    # Reading is not "own": everybody with the shop's read scope reads every review.
    everyone = client.get(base, headers=auth("bob")).json()["items"]
    assert {r["author_id"] for r in everyone} == {"bob", "dan"}


def test_the_shopkeeper_reads_the_reviews_of_their_shop_but_cannot_change_them(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA])
    product_id = shop["products"][0]["id"]
    review = create_review(client, shop["id"], product_id)
    base = f"/shops/{shop['id']}/products/{product_id}/reviews"

    assert client.get(base, headers=auth("alice")).json() == {"items": [review], "next_cursor": None}
    refused = client.patch(f"{base}/{review['id']}", json={"rating": 1}, headers=auth("alice"))
    assert refused.status_code == 403


def test_deleting_a_shop_deletes_its_products_and_reviews(client: TestClient) -> None:
    shop = create_shop(client, products=[TEA, MILK])
    create_review(client, shop["id"], shop["products"][0]["id"])

    assert client.delete(f"/shops/{shop['id']}", headers=auth("alice")).status_code == 204
    assert not Product.objects.exists() and not Review.objects.exists()


# -- own scopes ---------------------------------------------------------------------------------


def test_a_shopkeeper_sees_and_changes_only_their_own_shops(client: TestClient) -> None:
    alices = create_shop(client, "alice", name="Alice's")
    franks = create_shop(client, "frank", name="Frank's", products=[TEA])

    assert [s["name"] for s in client.get("/shops", headers=auth("alice")).json()["items"]] == ["Alice's"]
    for method, path, body in [
        ("GET", f"/shops/{franks['id']}", None),
        ("PATCH", f"/shops/{franks['id']}", {"name": "Taken"}),
        ("DELETE", f"/shops/{franks['id']}", None),
        ("GET", f"/shops/{franks['id']}/products", None),
        ("POST", f"/shops/{franks['id']}/products", TEA),
    ]:
        response = client.request(method, path, json=body, headers=auth("alice"))
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["detail"]["code"] == "not_exist:shop"
    assert Shop.objects.get(pk=franks["id"]).name == "Frank's"
    assert Product.objects.filter(shop_id=franks["id"]).count() == 1

    staff = client.get("/shops", headers=auth("carol")).json()["items"]
    assert [s["id"] for s in staff] == [alices["id"], franks["id"]]
    assert client.patch(f"/shops/{franks['id']}", json={"name": "Fixed"}, headers=auth("carol")).status_code == 200

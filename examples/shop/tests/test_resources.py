"""The resource features a client front end leans on: ``?fields=`` for a table's columns,
``?dry_run=true`` for a form that checks as the user types, ``OPTIONS`` for which buttons
to grey out, and a product's tags (many-to-many)."""

from __future__ import annotations

from catalog.models import Product
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.test_api import create_product, create_shop


def test_a_table_of_shops_reads_only_its_columns(client: TestClient) -> None:
    shop = create_shop(client, products=[{"name": "Tea", "price": "4.50"}])
    listed = client.get("/shops?fields=name,products.name", headers=auth("alice"))
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [{"name": "Corner Shop", "products": [{"name": "Tea"}]}]}
    assert client.get(f"/shops/{shop['id']}?fields=id", headers=auth("alice")).json() == {"id": shop["id"]}
    refused = client.get("/shops?fields=name,products.colour", headers=auth("alice"))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "fields"]


def test_a_product_form_checks_as_the_user_types(client: TestClient) -> None:
    shop = create_shop(client)
    path = f"/shops/{shop['id']}/products?dry_run=true"
    checked = client.post(path, json={"name": "Tea", "price": "4.50"}, headers=auth("alice"))
    assert checked.status_code == 201, checked.text
    assert checked.json()["name"] == "Tea"
    assert client.post(path, json={"name": "Tea", "price": "-1"}, headers=auth("alice")).status_code == 422
    assert not Product.objects.exists()  # checked, never stored


def test_the_shop_page_asks_which_buttons_to_show(client: TestClient) -> None:
    shop = create_shop(client)
    mine = client.options(f"/shops/{shop['id']}", headers=auth("alice"))
    assert mine.status_code == 200, mine.text
    assert mine.json()["methods"] == ["DELETE", "GET", "OPTIONS", "PATCH", "PUT"]
    assert mine.headers["allow"] == "DELETE, GET, OPTIONS, PATCH, PUT"
    # a customer may look at the shop, not change it
    assert client.options(f"/shops/{shop['id']}", headers=auth("bob")).json()["methods"] == ["GET", "OPTIONS"]
    # another shopkeeper of the tenant ("own" scopes) cannot see it at all: 404, as GET answers
    assert client.options(f"/shops/{shop['id']}", headers=auth("frank")).status_code == 404
    reviews = client.options(f"/shops/{shop['id']}/products", headers=auth("bob")).json()
    assert reviews["methods"] == ["GET", "OPTIONS"] and reviews["fields"]["writable"] == []


def test_products_carry_their_shops_tags(client: TestClient) -> None:
    shop = create_shop(client)
    tags = f"/shops/{shop['id']}/tags"
    organic = client.post(tags, json={"name": "organic"}, headers=auth("alice")).json()
    vegan = client.post(tags, json={"name": "vegan"}, headers=auth("alice")).json()
    product = create_product(client, shop["id"], tag_ids=[organic["id"], vegan["id"]])
    assert product["tag_ids"] == [organic["id"], vegan["id"]]
    path = f"/shops/{shop['id']}/products/{product['id']}"
    assert client.patch(path, json={"tag_ids": [vegan["id"]]}, headers=auth("alice")).json()["tag_ids"] == [vegan["id"]]
    assert client.patch(path, json={"price": "5.00"}, headers=auth("alice")).json()["tag_ids"] == [vegan["id"]]
    # another shop's tag is refused like a tag that does not exist
    other = create_shop(client, "frank")
    foreign = client.post(f"/shops/{other['id']}/tags", json={"name": "local"}, headers=auth("frank")).json()
    refused = client.patch(path, json={"tag_ids": [foreign["id"]]}, headers=auth("alice"))
    missing = client.patch(path, json={"tag_ids": [foreign["id"] + 1000]}, headers=auth("alice"))
    assert refused.status_code == missing.status_code == 409
    assert refused.json()["detail"]["code"] == missing.json()["detail"]["code"]
    assert Product.objects.get().tags.get().name == "vegan"

"""Two owners on one path: an `.own` scope narrows the resource whose node declares it.

Shops are owned by their shopkeeper (``owner_id``), reviews by their author
(``author_id``); the default row filters of ``catalog/api.py`` apply each `.own` to its
own level only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from catalog import models, schemas
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken
from tests.conftest import auth


def default_filter_tree() -> DjangoRouterSchema:
    """``catalog/api.py``'s tree, built here so that each test gets a fresh one."""
    reviews = DjangoRouterSchema(
        name="reviews",
        model=models.Review,
        get=schemas.Review,
        create=schemas.ReviewWrite,
        update=schemas.ReviewWrite,
        owner_field="author_id",
        security_scopes=SecurityScopes(
            post=["shop.reviews.create"],
            patch=["shop.reviews.update.any", "shop.reviews.update.own"],
            delete=["shop.reviews.delete.any", "shop.reviews.delete.own"],
        ),
    )
    products = DjangoRouterSchema(
        name="products", model=models.Product, get=schemas.Product, create=schemas.ProductWrite, children=[reviews]
    )
    return DjangoRouterSchema(
        name="shops",
        model=models.Shop,
        get=schemas.Shop,
        create=schemas.ShopWrite,
        update=schemas.ShopWrite,
        security=JWTToken(),
        security_scopes=SecurityScopes(
            get=["shop.shops.read.any", "shop.shops.read.own"],
            post=["shop.shops.create"],
            patch=["shop.shops.update.any", "shop.shops.update.own"],
            delete=["shop.shops.delete.any", "shop.shops.delete.own"],
        ),
        owner_field="owner_id",
        children=[products],
    )


@pytest.fixture
def defaults(transactional_db: None) -> Iterator[tuple[TestClient, str]]:
    """A client of the default-filter tree, and the reviews path of Alice's tea with Bob's review."""
    app = FastAPI()
    app.include_router(default_filter_tree().router)
    with TestClient(app) as client:
        shop = client.post(
            "/shops",
            json={"name": "Corner Shop", "products": [{"name": "Tea", "price": "4.50"}]},
            headers=auth("alice"),
        )
        assert shop.status_code == 201, shop.text
        path = f"/shops/{shop.json()['id']}/products/{shop.json()['products'][0]['id']}/reviews"
        review = client.post(path, json={"rating": 5, "text": "Lovely"}, headers=auth("bob"))
        assert review.status_code == 201, review.text
        yield client, path


def test_an_own_scope_of_a_child_resource_does_not_narrow_the_parents_owner(defaults: tuple[TestClient, str]) -> None:
    client, path = defaults
    (review,) = client.get(path, headers=auth("bob")).json()["items"]

    # Bob holds shop.reviews.update.own: his own review, in Alice's shop. The `own` is
    # about reviews (the node that declares the scope), not about the shop above them.
    response = client.patch(f"{path}/{review['id']}", json={"rating": 4}, headers=auth("bob"))

    assert response.status_code == 200, response.text


def test_a_parents_own_scope_does_not_narrow_a_childs_owner(defaults: tuple[TestClient, str]) -> None:
    client, path = defaults

    # Alice reads her own shop with shop.shops.read.own; the reviews node inherits that
    # scope, so its `own` is the shop's: every review of her shop, not only hers.
    response = client.get(path, headers=auth("alice"))

    assert [review["author_id"] for review in response.json()["items"]] == ["bob"]

"""Identity and traffic in the shop: customers log in with a Django password, their scopes
and marketplace come from their groups; tokens are refreshed, reused refresh tokens revoke
their family, logging out revokes; the catalogue is public and rate limited; /metrics.
"""

from __future__ import annotations

from typing import Any

from catalog.models import Product, Shop
from django.contrib.auth.models import Group, User
from fastapi.testclient import TestClient

from djfapi.ratelimit import limiter
from tests.conftest import clear_of_a_window_boundary

PASSWORD = "a long and private passphrase"


def customer(name: str = "dora") -> User:
    user = User.objects.create_user(name, password=PASSWORD)
    user.groups.add(Group.objects.create(name="customers"), Group.objects.create(name="marketplace:acme"))
    return user


def login(client: TestClient, name: str = "dora", password: str = PASSWORD) -> Any:
    return client.post("/auth/token", json={"username": name, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_refresh_logout(client: TestClient) -> None:
    customer()
    shop = Shop.objects.create(tenant_id="acme", owner_id="alice", name="Alice's Bikes")
    pair = login(client).json()
    assert pair["scope"] == ["shop.shops.read.any", "shop.reviews.create", "shop.reviews.update.own"]
    assert client.get(f"/shops/{shop.pk}", headers=bearer(pair["access_token"])).status_code == 200

    newer = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    assert client.get("/shops", headers=bearer(newer["access_token"])).status_code == 200
    assert client.post("/auth/logout", headers=bearer(newer["access_token"])).status_code == 204
    refused = client.get("/shops", headers=bearer(newer["access_token"]))
    assert refused.status_code == 401
    assert refused.json()["detail"]["code"] == "token_revoked"
    assert client.post("/auth/refresh", json={"refresh_token": newer["refresh_token"]}).status_code == 401


def test_a_reused_refresh_token_revokes_the_family(client: TestClient) -> None:
    customer()
    pair = login(client).json()
    newer = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    reused = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert reused.json()["detail"]["code"] == "refresh_token_reused"
    assert client.get("/shops", headers=bearer(newer["access_token"])).status_code == 401


def test_wrong_passwords_are_rate_limited(client: TestClient) -> None:
    customer()
    limiter.reset()
    clear_of_a_window_boundary()
    answers = [login(client, password=f"guess {n}").status_code for n in range(6)]
    assert answers == [401] * 5 + [429]
    limiter.reset()


def test_the_catalogue_is_public_and_rate_limited(client: TestClient) -> None:
    limiter.reset()
    clear_of_a_window_boundary()
    shop = Shop.objects.create(tenant_id="acme", owner_id="alice", name="Alice's Bikes")
    Product.objects.create(shop=shop, name="Bell", price="4.50")
    first = client.get("/catalog")
    assert first.status_code == 200
    assert [p["name"] for p in first.json()["items"]] == ["Bell"]
    assert first.headers["ratelimit-policy"] == '"catalog.get";q=60;w=60'
    assert client.post("/catalog", json={"name": "x"}).status_code == 405  # read only
    answers = [client.get("/catalog").status_code for _ in range(60)]
    assert answers[-1] == 429 and answers[:59] == [200] * 59
    limiter.reset()


def test_metrics(client: TestClient) -> None:
    client.get("/catalog")
    text = client.get("/metrics").text
    assert 'djfapi_requests_total{method="GET",route="/catalog",status="200"}' in text

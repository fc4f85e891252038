"""The token lifecycle (``djfapi.auth``) on the demo: login through Django's backends, scopes
from permissions and groups, rotation with reuse detection, logout and revocation by
``jti`` (checked on every request, from memory), JWKS, and login brute force limited.

The tests commit (``transactional_db``): revocations reach the cache after commit, as in
production. ``tests/test_auth_processes.py`` shows a revocation reaching another process.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.test import override_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.auth import revocation
from djfapi.auth.claims import default_claims
from djfapi.auth.models import RevokedToken, TokenFamily
from djfapi.ratelimit import limiter
from djfapi.security.tokens import mint_token
from tests.factories import make_company
from tests.helpers import TENANT, clear_of_a_window_boundary

PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(app: FastAPI, transactional_db: None) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def user(transactional_db: None) -> User:
    user = User.objects.create_user("ada", password=PASSWORD)
    user.user_permissions.add(
        Permission.objects.get(codename="companies.read.any"),
        Permission.objects.get(codename="add_user"),  # not a scope: left out of the token
    )
    editors = Group.objects.create(name="editors")
    editors.permissions.add(Permission.objects.get(codename="companies.update.any"))
    user.groups.add(editors)
    return user


def login(client: TestClient, username: str = "ada", password: str = PASSWORD) -> Any:
    return client.post("/auth/token", json={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_issues_a_pair_whose_scopes_come_from_permissions_and_groups(client: TestClient, user: User) -> None:
    answer = login(client)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert body["scope"] == ["business.companies.read.any", "business.companies.update.any"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "ada"  # the demo's AUTH_SUBJECT_FIELD: the username, as its seeded employees
    assert claims["ten"] == "demo"  # the demo's AUTH_TENANT
    assert claims["rls"] == ["editors"]
    assert claims["typ"] == "access" and claims["fam"] and claims["jti"]
    assert claims["exp"] - claims["iat"] == settings.DJFAPI.get("AUTH_ACCESS_LIFETIME", 300)
    make_company("demo", name="Visible")
    assert client.get("/companies", headers=bearer(body["access_token"])).status_code == 200


def test_wrong_password_and_inactive_user_are_401(client: TestClient, user: User) -> None:
    answer = login(client, password="wrong")
    assert answer.status_code == 401
    assert answer.json()["detail"]["code"] == "invalid_credentials"
    assert login(client, username="nobody").status_code == 401
    user.is_active = False
    user.save()
    assert login(client).status_code == 401


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(client: TestClient, user: User) -> None:
    first = login(client).json()
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/companies", headers=bearer(second["access_token"])).status_code == 200

    reused = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["detail"]["code"] == "refresh_token_reused"
    # The whole family is gone: the newest refresh token, and every access token of the family.
    later = client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert later.json()["detail"]["code"] == "refresh_token_revoked"
    for access in (first["access_token"], second["access_token"]):
        refused = client.get("/companies", headers=bearer(access))
        assert refused.status_code == 401
        assert refused.json()["detail"]["code"] == "token_revoked"
    assert TokenFamily.objects.get().revoked_reason == "reuse"
    # Another login starts a new family, untouched.
    assert client.get("/companies", headers=bearer(login(client).json()["access_token"])).status_code == 200


def test_logout_revokes_the_access_token_and_its_family(client: TestClient, user: User) -> None:
    pair = login(client).json()
    assert client.post("/auth/logout", headers=bearer(pair["access_token"])).status_code == 204
    refused = client.get("/companies", headers=bearer(pair["access_token"]))
    assert refused.status_code == 401
    assert refused.json()["detail"]["code"] == "token_revoked"
    assert client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    assert RevokedToken.objects.filter(reason="logout").count() == 1


def test_token_kinds_are_not_interchangeable(client: TestClient, user: User) -> None:
    pair = login(client).json()
    as_access = client.get("/companies", headers=bearer(pair["refresh_token"]))
    assert as_access.status_code == 401
    assert as_access.json()["detail"]["code"] == "token_invalid"
    as_refresh = client.post("/auth/refresh", json={"refresh_token": pair["access_token"]})
    assert as_refresh.json()["detail"]["code"] == "refresh_token_invalid"
    forged = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"][:-4] + "AAAA"})
    assert forged.json()["detail"]["code"] == "refresh_token_invalid"


def test_revoke_by_jti_refuses_any_token_with_that_id(client: TestClient, user: User) -> None:
    """Also tokens that djfapi.auth did not issue (minted elsewhere, with a jti)."""
    victim = mint_token(tenant=TENANT, user="u1", scopes=["business.companies.read.any"])
    jti = jwt.decode(victim, options={"verify_signature": False})["jti"]
    assert client.get("/companies", headers=bearer(victim)).status_code == 200
    reader = mint_token(tenant=TENANT, user="admin", scopes=["business.companies.read.any"])
    assert client.post("/auth/revoke", json={"jti": jti}, headers=bearer(reader)).status_code == 403
    admin = mint_token(tenant=TENANT, user="admin", scopes=["auth.tokens.revoke"])
    assert client.post("/auth/revoke", json={"jti": jti}, headers=bearer(admin)).status_code == 204
    assert client.get("/companies", headers=bearer(victim)).json()["detail"]["code"] == "token_revoked"
    assert client.post("/auth/revoke", json={"family": "nope"}, headers=bearer(admin)).status_code == 404
    assert client.post("/auth/revoke", json={}, headers=bearer(admin)).status_code == 422


def test_deactivating_a_user_revokes_their_tokens(client: TestClient, user: User) -> None:
    pair = login(client).json()
    user.is_active = False
    user.save()
    assert client.get("/companies", headers=bearer(pair["access_token"])).json()["detail"]["code"] == "token_revoked"


def test_the_hot_path_costs_no_query(
    client: TestClient, user: User, django_assert_max_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation check reads memory only: a request costs what it cost before djfapi.auth."""
    pair = login(client).json()
    headers = bearer(pair["access_token"])
    client.get("/directory", headers=headers)  # warm: the cache is loaded by now
    before = revocation.cache.checks
    loads: list[int] = []
    monkeypatch.setattr(revocation, "load", lambda: loads.append(1))
    with django_assert_max_num_queries(1):  # the directory page itself
        assert client.get("/directory?limit=1", headers=headers).status_code == 200
    assert revocation.cache.checks == before + 1
    assert not loads


def test_jwks_publishes_the_public_keys_with_their_kid(client: TestClient, user: User) -> None:
    assert client.get("/auth/jwks.json").json() == {"keys": []}  # HS256: secrets are never published
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem_private = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pem_public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rsa_settings = {
        **settings.DJFAPI,
        "JWT_ALGORITHMS": ["RS256"],
        "JWT_KEY": {"2026-12": pem_public},
        "JWT_SIGNING_KEY": {"2026-12": pem_private},
    }
    with override_settings(DJFAPI=rsa_settings):
        keys = client.get("/auth/jwks.json").json()["keys"]
        assert [(k["kid"], k["kty"], k["alg"], k["use"]) for k in keys] == [("2026-12", "RSA", "RS256", "sig")]
        access = login(client).json()["access_token"]
        # Another service verifies djfapi's token with nothing but the published set.
        public = jwt.PyJWK.from_dict(keys[0]).key
        claims = jwt.decode(access, public, algorithms=["RS256"], issuer="testproject", options={"verify_aud": False})
        assert claims["sub"] == "ada"
        assert jwt.get_unverified_header(access)["kid"] == "2026-12"


def test_login_brute_force_is_rate_limited(client: TestClient, user: User) -> None:
    limiter.reset()
    clear_of_a_window_boundary()
    limits = {**settings.DJFAPI, "RATE_LIMITS_ENABLED": True}
    try:
        with override_settings(DJFAPI=limits):
            answers = [login(client, password=f"guess-{n}").status_code for n in range(6)]
            assert answers == [401] * 5 + [429]
            refused = login(client)  # the right password, too late: per username
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["detail"]["code"] == "rate_limited"
            # Per address: other usernames from the same address, up to the address's limit (10/minute).
            others = [login(client, username=f"user{n}").status_code for n in range(5)]
            assert others == [401, 401, 401, 429, 429]  # 6 + 1 + 3 attempts from this address so far
    finally:
        limiter.reset()


def test_default_claims_mapping(user: User) -> None:
    with override_settings(
        DJFAPI={**settings.DJFAPI, "AUTH_GROUP_SCOPES": {"editors": ["business.companies.create"]}, "AUTH_TENANT": None}
    ):
        claims = default_claims(user)
    assert claims == {
        "aud": ["business.companies.read.any", "business.companies.update.any", "business.companies.create"],
        "rls": ["editors"],
        "ten": None,
    }


def test_prune_deletes_what_expired(user: User) -> None:
    from djfapi.auth.tokens import issue_pair, prune_tokens, revoke_jti

    issue_pair(user)
    revoke_jti("old", datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
    assert prune_tokens() == 1
    assert prune_tokens(datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC)) == 2  # the refresh token, its family

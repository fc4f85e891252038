"""Rate limits per node and method (``rate_limits=``): 429 with ``Retry-After``, the IETF
``RateLimit``/``RateLimit-Policy`` headers, keys (subject, tenant, address), OpenAPI, and
counters shared between processes through Redis.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models import Q
from django.test import override_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from djfapi import BaseModel
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.ratelimit import Limiter, RateLimit, RouteLimits, limiter, route_limits
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from djfapi.security.tokens import mint_token
from tests.helpers import OTHER_TENANT, TENANT, clear_of_a_window_boundary
from tests.testapp.models import Shelf

READ = "lib.shelves.read.any"
WRITE = "lib.shelves.update.any"
REDIS_URL = os.environ.get("DJFAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
pytestmark = pytest.mark.usefixtures("shared_connection", "fresh_counters")


class ShelfOut(BaseModel):
    code: str
    name: str


class ShelfWrite(BaseModel):
    code: str
    name: str


@pytest.fixture
def fresh_counters() -> Iterator[None]:
    """Limits on (the suite turns them off), and counters of this test's own, clear of a window's end."""
    limiter.reset()
    clear_of_a_window_boundary()
    with override_settings(DJFAPI={**_djfapi(), "RATE_LIMITS_ENABLED": True}):
        yield
    limiter.reset()


def shelves(rate_limits: dict[str, Any], **options: Any) -> DjangoRouterSchema:
    tree = DjangoRouterSchema(
        name="shelves",
        model=Shelf,
        get=ShelfOut,
        create=ShelfWrite,
        update=ShelfWrite,
        security=JWTToken(),
        security_scopes=SecurityScopes(get=[READ], post=[WRITE], patch=[WRITE], delete=[WRITE]),
        rate_limits=rate_limits,
        **options,
    )
    return tree


def serve(tree: DjangoRouterSchema) -> TestClient:
    from djfapi.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


def bearer(user: str = "u1", tenant: str = TENANT) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(tenant=tenant, user=user, scopes=[READ, WRITE])}"}


def test_over_the_limit_is_a_429_with_retry_after_and_ratelimit_headers() -> None:
    client = serve(shelves({"get": "3/minute"}))
    answers = [client.get("/shelves", headers=bearer()) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    first, refused = answers[0], answers[3]
    assert first.headers["ratelimit-policy"] == '"shelves.get";q=3;w=60'
    assert re.fullmatch(r'"shelves\.get";r=2;t=\d+', first.headers["ratelimit"])
    assert answers[2].headers["ratelimit"].startswith('"shelves.get";r=0;')
    assert refused.json()["detail"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"] == '"shelves.get";q=3;w=60'


def test_get_covers_list_and_item_with_one_budget_and_writes_are_apart() -> None:
    Shelf.objects.create(code="s1", tenant_id=TENANT, name="One")
    client = serve(shelves({"get": "2/minute"}))
    assert client.get("/shelves", headers=bearer()).status_code == 200
    assert client.get("/shelves/s1", headers=bearer()).status_code == 200
    assert client.get("/shelves/s1", headers=bearer()).status_code == 429
    assert client.patch("/shelves/s1", json={"name": "Two"}, headers=bearer()).status_code == 200  # not limited
    assert "ratelimit" not in client.patch("/shelves/s1", json={"name": "Two"}, headers=bearer()).headers


def test_star_limits_every_route_of_the_node() -> None:
    client = serve(shelves({"*": "2/minute"}))
    assert client.get("/shelves", headers=bearer()).status_code == 200
    assert client.post("/shelves", json={"code": "x", "name": "X"}, headers=bearer()).status_code == 201
    answer = client.get("/shelves", headers=bearer())
    assert answer.status_code == 429
    assert '"shelves.all"' in answer.headers["ratelimit-policy"]


def test_subject_key_counts_each_token_subject_apart() -> None:
    client = serve(shelves({"get": "1/minute"}))
    assert client.get("/shelves", headers=bearer("alice")).status_code == 200
    assert client.get("/shelves", headers=bearer("alice")).status_code == 429
    assert client.get("/shelves", headers=bearer("bob")).status_code == 200


def test_tenant_key_shares_one_budget_per_tenant() -> None:
    client = serve(shelves({"get": RateLimit("2/minute", key="tenant")}))
    assert client.get("/shelves", headers=bearer("alice")).status_code == 200
    assert client.get("/shelves", headers=bearer("bob")).status_code == 200
    assert client.get("/shelves", headers=bearer("carol")).status_code == 429
    assert client.get("/shelves", headers=bearer("dave", OTHER_TENANT)).status_code == 200


def test_anonymous_callers_of_a_public_route_are_counted_by_address() -> None:
    tree = shelves({"get": "1/minute"}, public=["get"], objects_filter=lambda access: Q())
    client = serve(tree)
    assert client.get("/shelves").status_code == 200
    assert client.get("/shelves").status_code == 429
    assert client.get("/shelves", headers=bearer()).status_code == 200  # a token holder has their own budget


def test_several_limits_on_one_entry_and_a_key_function() -> None:
    def by_header(request: Any, token: Any) -> str:
        return request.headers.get("x-client", "none")

    client = serve(shelves({"get": ["5/minute", RateLimit("2/hour", key=by_header)]}))
    assert client.get("/shelves", headers={**bearer(), "x-client": "a"}).status_code == 200
    answer = client.get("/shelves", headers={**bearer(), "x-client": "a"})
    assert answer.headers["ratelimit-policy"] == '"shelves.get";q=5;w=60, "shelves.get.1";q=2;w=3600'
    assert client.get("/shelves", headers={**bearer(), "x-client": "a"}).status_code == 429
    assert client.get("/shelves", headers={**bearer(), "x-client": "b"}).status_code == 200


def test_custom_endpoints_are_limited_and_get_the_headers() -> None:
    tree = shelves({"get": "1/minute"})

    @tree.endpoint("/count", detail=False)
    def count(access: Access) -> dict[str, int]:
        return {"shelves": 0}

    client = serve(tree)
    answer = client.get("/shelves/count", headers=bearer())
    assert answer.json() == {"shelves": 0}
    assert answer.headers["ratelimit-policy"] == '"shelves.get";q=1;w=60'
    assert client.get("/shelves/count", headers=bearer()).status_code == 429


def test_limits_are_in_openapi() -> None:
    client = serve(shelves({"get": RateLimit("100/minute", key="tenant")}))
    operation = client.get("/openapi.json").json()["paths"]["/shelves"]["get"]
    assert set(operation["responses"]["429"]["headers"]) == {"Retry-After", "RateLimit", "RateLimit-Policy"}
    assert operation["x-rate-limits"] == [
        {"name": "shelves.get", "limit": "100/minute", "quota": 100, "window": 60, "key": "tenant"}
    ]
    assert "Rate limited: 100 per 60 s per tenant." in operation["description"]
    assert "429" not in client.get("/openapi.json").json()["paths"]["/shelves"]["post"]["responses"]


def test_limits_can_be_switched_off() -> None:
    client = serve(shelves({"get": "1/minute"}))
    with override_settings(DJFAPI={**_djfapi(), "RATE_LIMITS_ENABLED": False}):
        for _ in range(3):
            answer = client.get("/shelves", headers=bearer())
            assert answer.status_code == 200
            assert "ratelimit" not in answer.headers


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ({"read": "1/minute"}, "not a SecurityScopes entry"),
        ({"get": "often"}, "is not a limit"),
        ({"get": 3}, "expected"),
    ],
)
def test_bad_declarations_are_refused(declaration: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaDefinitionError, match=message):
        shelves(declaration)


def test_unknown_key_is_refused() -> None:
    with pytest.raises(SchemaDefinitionError, match="key='user'"):
        RateLimit("1/minute", key="user")


def test_store_down_fails_open_with_a_warning_or_closed_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    client = serve(shelves({"get": "1/minute"}))
    with override_settings(DJFAPI={**_djfapi(), "RATE_LIMIT_STORAGE": "redis://127.0.0.1:1/0"}):
        assert client.get("/shelves", headers=bearer()).status_code == 200
        assert client.get("/shelves", headers=bearer()).status_code == 200
        assert "rate limit store failed" in caplog.text
    with override_settings(
        DJFAPI={**_djfapi(), "RATE_LIMIT_STORAGE": "redis://127.0.0.1:1/0", "RATE_LIMIT_FAIL_OPEN": False}
    ):
        answer = client.get("/shelves", headers=bearer())
        assert answer.status_code == 503
        assert answer.json()["detail"]["code"] == "rate_limit_store_unavailable"


# -- shared between processes -------------------------------------------------------------


def _redis_or_skip() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {error}")


def test_redis_counters_are_shared_by_separate_limiters() -> None:
    """Two limiters (as in two processes) on one Redis count against one budget."""
    _redis_or_skip()
    name = f"shared-{uuid.uuid4().hex}"
    limits = RouteLimits(route_limits({"get": (RateLimit("3/minute", name=name),)}, "get", "x").policies)
    request = Request({"type": "http", "headers": [], "client": ("10.1.2.3", 1234)})
    results: list[int] = []

    async def hit(own: Limiter) -> None:
        try:
            await own.check(limits, request, None)
            results.append(200)
        except Exception as error:
            results.append(getattr(error, "status_code", 500))

    with override_settings(DJFAPI={**_djfapi(), "RATE_LIMIT_STORAGE": REDIS_URL}):
        first, second = Limiter(), Limiter()
        asyncio.run(hit(first))
        asyncio.run(hit(second))
        asyncio.run(hit(first))
        asyncio.run(hit(second))
    assert results == [200, 200, 200, 429]


def test_redis_store_through_the_routes() -> None:
    _redis_or_skip()
    name = f"route-{uuid.uuid4().hex}"
    client = serve(shelves({"get": RateLimit("2/minute", name=name)}))
    with override_settings(DJFAPI={**_djfapi(), "RATE_LIMIT_STORAGE": REDIS_URL}):
        assert [client.get("/shelves", headers=bearer()).status_code for _ in range(3)] == [200, 200, 429]


def _djfapi() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.DJFAPI)

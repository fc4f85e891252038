"""The demo's rate limits: its public directory answers 429 after its limit per client
address, and the company tree's reads carry the RateLimit headers of their budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from fastapi.testclient import TestClient

from djfapi.ratelimit import limiter
from tests.factories import make_company
from tests.helpers import auth, clear_of_a_window_boundary


@pytest.fixture
def limited() -> Iterator[None]:
    limiter.reset()
    with override_settings(DJFAPI={**settings.DJFAPI, "RATE_LIMITS_ENABLED": True}):
        yield
    limiter.reset()


def test_directory_is_public_and_429_after_its_limit(client: TestClient, limited: None) -> None:
    make_company(name="Listed", is_verified=True)
    make_company(name="Unlisted")
    quota = int(settings.DEMO_RATE_LIMITS["directory"].split("/")[0])
    clear_of_a_window_boundary()
    first = client.get("/directory")
    assert first.status_code == 200
    assert [c["name"] for c in first.json()["items"]] == ["Listed"]
    assert first.headers["ratelimit-policy"] == f'"directory.get";q={quota};w=60'
    answers = [client.get("/directory").status_code for _ in range(quota)]
    assert answers[: quota - 1] == [200] * (quota - 1)
    assert answers[-1] == 429
    refused = client.get("/directory")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["detail"]["code"] == "rate_limited"


def test_company_reads_carry_their_budget(client: TestClient, limited: None) -> None:
    answer = client.get("/companies", headers=auth())
    assert answer.status_code == 200
    quota = int(settings.DEMO_RATE_LIMITS["read"].split("/")[0])
    assert answer.headers["ratelimit-policy"] == f'"companies.get";q={quota};w=60'
    assert answer.headers["ratelimit"].startswith(f'"companies.get";r={quota - 1};')


def test_demo_openapi_shows_the_limits(app: Any) -> None:
    operation = app.openapi()["paths"]["/directory"]["get"]
    assert "429" in operation["responses"]
    assert operation["x-rate-limits"][0]["key"] == "address"

"""``/metrics`` (Prometheus, ``djfapi.ops.metrics``) on the demo: requests by route template,
method and status, latency histograms, feed subscribers, connections in use, the
revocation cache, 429s by policy — and labels that cannot grow with ids or tenants.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from djfapi.ratelimit import limiter
from tests.factories import make_company
from tests.helpers import auth


def scrape(client: TestClient) -> dict[str, list[Any]]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(answer.text)}


def requests_of(samples: dict[str, list[Any]], **labels: str) -> float:
    return sum(
        s.value
        for s in samples["djfapi_requests"]
        if s.name == "djfapi_requests_total" and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_requests_are_counted_by_route_template_method_and_status(client: TestClient) -> None:
    company = make_company()
    before = scrape(client)
    for _ in range(3):
        assert client.get(f"/companies/{company.pk}", headers=auth()).status_code == 200
    assert client.get(f"/companies/{uuid.uuid4()}", headers=auth()).status_code == 404
    assert client.get("/companies").status_code == 401
    after = scrape(client)
    route = "/companies/{company_id}"
    assert (
        requests_of(after, method="GET", route=route, status="200")
        - requests_of(before, method="GET", route=route, status="200")
        == 3
    )
    assert (
        requests_of(after, method="GET", route=route, status="404")
        - requests_of(before, method="GET", route=route, status="404")
        == 1
    )
    assert requests_of(after, method="GET", route="/companies", status="401") >= 1
    histogram = [s for s in after["djfapi_request_duration_seconds"] if s.name.endswith("_count")]
    assert any(s.labels == {"method": "GET", "route": route} and s.value >= 3 for s in histogram)


def test_labels_stay_bounded(client: TestClient) -> None:
    """Ids never become labels; unknown paths and methods collapse into one series each."""
    for _ in range(5):
        client.get(f"/scanner/{uuid.uuid4()}")
    client.request("PROPFIND", "/companies")
    samples = scrape(client)["djfapi_requests"]
    routes = {s.labels["route"] for s in samples}
    assert "unmatched" in routes
    assert not any(re.search(r"[0-9a-f]{8}-[0-9a-f]{4}", route) for route in routes)
    assert all(set(s.labels) == {"method", "route", "status"} for s in samples)  # no tenant unless enabled
    assert {s.labels["method"] for s in samples} <= {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "other",
    }


def test_state_gauges_are_served(client: TestClient) -> None:
    client.get("/companies", headers=auth())  # loads the revocation cache, checks one token
    samples = scrape(client)
    assert samples["djfapi_feed_subscribers"][0].value == 0
    assert {s.labels["database"] for s in samples["djfapi_db_connections_in_use"]} == {"default"}
    assert samples["djfapi_revocation_cache_checks"][0].value >= 1
    assert {s.labels["kind"] for s in samples["djfapi_revoked_tokens"]} == {"jti", "family"}


@pytest.fixture
def limited() -> Iterator[None]:
    limiter.reset()
    with override_settings(DJFAPI={**settings.DJFAPI, "RATE_LIMITS_ENABLED": True}):
        yield
    limiter.reset()


def test_429s_are_counted_by_policy(client: TestClient, limited: None) -> None:
    quota = int(settings.DEMO_RATE_LIMITS["directory"].split("/")[0])
    before = sum(s.value for s in scrape(client)["djfapi_rate_limited"] if s.labels.get("policy") == "directory.get")
    answers = [client.get("/directory").status_code for _ in range(quota + 2)]
    after = sum(s.value for s in scrape(client)["djfapi_rate_limited"] if s.labels.get("policy") == "directory.get")
    # Two refusals, or one when the loop straddles the quota's minute boundary (a new window opens).
    refused = answers.count(429)
    assert refused in (1, 2)
    assert after - before == refused

"""The subscribe routes (``djfapi.live.routes``): where they are, how they are documented,
and that they refuse callers exactly as the node's ``GET`` does — over SSE and WebSocket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from djfapi import BaseModel
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema
from testproject.api import companies
from tests.factories import make_company
from tests.helpers import OTHER_TENANT, TENANT, auth, token
from tests.livefeed import feed_client, ready, subscribe
from tests.testapp.models import Room

READ_OWN = ("business.companies.read.own",)
NO_READ = ("business.companies.create",)


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    yield from feed_client(app, settings)


class RoomOut(BaseModel):
    id: int
    name: str


# -- where the routes are ----------------------------------------------------------------


def test_subscribe_routes_exist_at_every_subscribed_level(app: FastAPI) -> None:
    paths = [path for path in app.openapi()["paths"] if path.endswith("/subscribe")]
    websockets = [route.path for route in companies.router.routes if isinstance(route, APIWebSocketRoute)]

    expected = [
        "/companies/subscribe",
        "/companies/{company_id}/departments/subscribe",
        "/companies/{company_id}/employees/subscribe",
    ]
    assert paths == expected  # teams and cost centres do not subscribe
    assert websockets == expected


def test_subscribe_is_off_by_default() -> None:
    rooms = DjangoRouterSchema(name="rooms", model=Room, get=RoomOut)

    assert rooms.subscribe is False
    assert not [route for route in rooms.router.routes if route.path.endswith("/subscribe")]  # type: ignore[attr-defined]


def test_subscribe_without_the_app_installed_is_refused_at_build_time(settings: Any) -> None:
    apps = [app for app in settings.INSTALLED_APPS if app != "djfapi.live"]
    rooms = DjangoRouterSchema(name="rooms", model=Room, get=RoomOut, subscribe=True)

    with override_settings(INSTALLED_APPS=apps), pytest.raises(SchemaDefinitionError, match=r"djfapi\.live"):
        rooms.router  # noqa: B018


def test_the_subscribe_route_is_matched_before_the_item_route(app: FastAPI) -> None:
    operations = [getattr(route, "operation_id", None) for route in companies.router.routes]

    assert operations.index("companies_subscribe") < operations.index("companies_get")


# -- the OpenAPI document ------------------------------------------------------------------


def test_openapi_documents_the_event_stream_and_its_messages(app: FastAPI) -> None:
    document = app.openapi()
    operation = document["paths"]["/companies/{company_id}/departments/subscribe"]["get"]
    get_list = document["paths"]["/companies/{company_id}/departments"]["get"]
    schemas = document["components"]["schemas"]

    assert operation["operationId"] == "companies_departments_subscribe"
    assert operation["security"] == get_list["security"]  # the same scheme and the same read scopes
    item = operation["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]
    assert item["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/DepartmentStreamMessage"}
    assert schemas["DepartmentStreamMessage"]["anyOf"] == [
        {"$ref": "#/components/schemas/DepartmentChangeEvent"},
        {"$ref": "#/components/schemas/StreamControl"},
    ]
    event = schemas["DepartmentChangeEvent"]
    assert event["properties"]["event"]["enum"] == ["INSERT", "UPDATE", "DELETE"]
    assert event["properties"]["data"]["anyOf"][0] == {"$ref": "#/components/schemas/Department"}
    for status in ("401", "403", "404", "422"):
        assert list(operation["responses"][status]["content"]) == ["application/json"], status
    parameters = {(p["in"], p["name"]) for p in operation["parameters"]}
    assert parameters == {
        ("path", "company_id"),
        ("query", "last_event_id"),
        ("query", "access_token"),
        ("header", "Last-Event-ID"),
    }


# -- refusals over SSE: exactly as GET -------------------------------------------------------


def test_no_token_is_a_401_as_for_get(feed: TestClient) -> None:
    stream = feed.get("/companies/subscribe")
    listing = feed.get("/companies")

    assert stream.status_code == listing.status_code == 401
    assert stream.headers["www-authenticate"] == "Bearer"
    assert stream.json()["detail"]["code"] == listing.json()["detail"]["code"] == "token_missing"


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"expires": -10}, "token_expired"),
        ({"not_before": 60}, "token_not_yet_valid"),
        ({"issuer": "x"}, "token_issuer_invalid"),
    ],
)
def test_a_bad_token_is_the_same_401_as_for_get(feed: TestClient, options: dict[str, Any], code: str) -> None:
    headers = auth(**options)

    stream = feed.get("/companies/subscribe", headers=headers)
    listing = feed.get("/companies", headers=headers)

    assert stream.status_code == 401
    assert stream.json() == listing.json()
    assert stream.json()["detail"]["code"] == code


def test_a_token_without_a_read_scope_is_the_same_403_as_for_get(feed: TestClient) -> None:
    headers = auth(scopes=NO_READ)

    stream = feed.get("/companies/subscribe", headers=headers)
    listing = feed.get("/companies", headers=headers)

    assert stream.status_code == listing.status_code == 403
    assert stream.json() == listing.json()
    assert stream.json()["detail"]["code"] == "required_scope_missing"


def test_a_hidden_or_missing_parent_is_the_same_404_as_for_get(feed: TestClient) -> None:
    foreign = make_company(tenant=OTHER_TENANT)
    missing = "00000000-0000-0000-0000-000000000000"

    for company_id in (foreign.pk, missing):
        stream = feed.get(f"/companies/{company_id}/departments/subscribe", headers=auth())
        listing = feed.get(f"/companies/{company_id}/departments", headers=auth())
        assert stream.status_code == listing.status_code == 404
        assert stream.json() == listing.json()
        assert stream.json()["detail"]["code"] == "not_exist:company"


def test_a_soft_deleted_parent_is_a_404(feed: TestClient) -> None:
    company = make_company(status="deleted")

    response = feed.get(f"/companies/{company.pk}/employees/subscribe", headers=auth())

    assert response.status_code == 404


def test_own_scope_cannot_subscribe_below_a_company_it_does_not_own(feed: TestClient) -> None:
    company = make_company()  # nobody owns it

    response = feed.get(f"/companies/{company.pk}/departments/subscribe", headers=auth(scopes=READ_OWN))

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("query", "headers", "loc"),
    [
        ("?last_eventid=5", {}, ["query", "last_eventid"]),
        ("?last_event_id=-1", {}, ["query", "last_event_id"]),
        ("?last_event_id=abc", {}, ["query", "last_event_id"]),
        ("", {"Last-Event-ID": "x"}, ["header", "Last-Event-ID"]),
    ],
)
def test_unknown_or_malformed_parameters_are_a_422(
    feed: TestClient, query: str, headers: dict[str, str], loc: list[str]
) -> None:
    response = feed.get(f"/companies/subscribe{query}", headers={**auth(), **headers})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_other_methods_are_a_405(feed: TestClient) -> None:
    response = feed.post("/companies/subscribe", headers=auth(), json={})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_the_token_may_come_in_the_query_string(feed: TestClient) -> None:
    with subscribe(feed, f"/companies/subscribe?access_token={token()}") as reader:
        assert ready(reader).event == "ready"
    refused = feed.get(f"/companies/subscribe?access_token={token(scopes=NO_READ)}")
    assert refused.status_code == 403


def test_the_header_wins_over_the_query_string(feed: TestClient) -> None:
    response = feed.get(f"/companies/subscribe?access_token={token()}", headers=auth(scopes=NO_READ))

    assert response.status_code == 403


def test_the_response_is_an_uncached_event_stream(feed: TestClient) -> None:
    with feed.stream("GET", "/companies/subscribe", headers=auth()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert "content-length" not in response.headers
        assert response.headers["x-request-id"]


# -- refusals over WebSocket: the same answers, before the handshake ----------------------------


def _denied(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Any:
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(path, headers=headers or {}):
        pass
    return denied.value


def test_websocket_refusals_are_the_http_answers_of_get(feed: TestClient) -> None:
    foreign = make_company(tenant=OTHER_TENANT)

    missing = _denied(feed, "/companies/subscribe")
    expired = _denied(feed, "/companies/subscribe", auth(expires=-10))
    forbidden = _denied(feed, "/companies/subscribe", auth(scopes=NO_READ))
    hidden = _denied(feed, f"/companies/{foreign.pk}/departments/subscribe", auth())
    unknown = _denied(feed, "/companies/subscribe?sinse=3", auth())

    assert (missing.status_code, missing.json()["detail"]["code"]) == (401, "token_missing")
    assert expired.status_code == 401
    assert expired.json() == feed.get("/companies", headers=auth(expires=-10)).json()
    assert forbidden.status_code == 403
    assert forbidden.json() == feed.get("/companies", headers=auth(scopes=NO_READ)).json()
    assert hidden.status_code == 404
    assert hidden.json() == feed.get(f"/companies/{foreign.pk}/departments", headers=auth()).json()
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["query", "sinse"]


def test_websocket_accepts_the_header_or_the_query_token(feed: TestClient) -> None:
    with feed.websocket_connect("/companies/subscribe", headers=auth()) as websocket:
        assert websocket.receive_json()["event"] == "ready"
    with feed.websocket_connect(f"/companies/subscribe?access_token={token(tenant=TENANT)}") as websocket:
        assert websocket.receive_json()["event"] == "ready"

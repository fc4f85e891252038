"""Positions a client resumes from, read strictly: ``Last-Event-ID``, ``?last_event_id=``, ``?since=``.

A position is an event id given once, as plain decimal digits, from 0 to ``2**63 - 1``.
Anything else — negative, not a number, a float, empty, too large, signed, with ``_``,
repeated — is refused, never read as some other position (FastAPI alone would take
``1.0``, ``+5``, ``1_0`` or the last of two values):

* SSE: a 422 in FastAPI's validation format whose ``loc`` names the header or the
  query parameter, ``["header", "Last-Event-ID"]`` or ``["query", "last_event_id"]``;
* WebSocket: the same 422 as the HTTP answer to the handshake (the ASGI denial
  response), ``loc`` ``["query", "since"]`` — not the bare 403 a server sends when a
  socket is closed before it is accepted, which a client cannot tell from a missing
  scope; on a server without the denial response, the socket is accepted and closed
  with 4422 and a reason naming the parameter (4401, 4403, ... for the other refusals).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.types import Message

from tests.factories import make_company
from tests.helpers import auth
from tests.livefeed import feed_client, ready, subscribe

NO_READ = ("business.companies.create",)
MAX_ID = 2**63 - 1

# value -> the error type of the 422
MALFORMED = {
    "-1": "greater_than_equal",
    "-0": "int_parsing",
    "abc": "int_parsing",
    "": "int_parsing",
    "1.5": "int_parsing",
    "1.0": "int_parsing",
    "1e3": "int_parsing",
    "+5": "int_parsing",
    "1_0": "int_parsing",
    "0x10": "int_parsing",
    "\uff15": "int_parsing",  # a fullwidth digit five
    str(2**63): "less_than_equal",
    "9" * 40: "less_than_equal",
}


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    yield from feed_client(app, settings)


def only_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, f"{response.status_code}: the position was taken"
    (error,) = response.json()["detail"]
    return dict(error)


def answer(client: TestClient, path: str, **kwargs: Any) -> Any:
    """``GET path``, read to the end unless it is a stream (a position that was taken)."""
    with client.stream("GET", path, **kwargs) as response:
        if response.status_code != 200:
            response.read()
    return response


# -- SSE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "kind"), MALFORMED.items(), ids=[repr(v)[:12] for v in MALFORMED])
def test_a_malformed_last_event_id_query_parameter_is_a_422_naming_it(feed: TestClient, value: str, kind: str) -> None:
    error = only_error(answer(feed, "/companies/subscribe", params={"last_event_id": value}, headers=auth()))

    assert (error["loc"], error["type"], error["input"]) == (["query", "last_event_id"], kind, value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [(value, kind) for value, kind in MALFORMED.items() if value.isascii()],  # header values are latin-1
    ids=[repr(v)[:12] for v in MALFORMED if v.isascii()],
)
def test_a_malformed_last_event_id_header_is_a_422_naming_it(feed: TestClient, value: str, kind: str) -> None:
    error = only_error(answer(feed, "/companies/subscribe", headers={**auth(), "Last-Event-ID": value}))

    assert (error["loc"], error["type"], error["input"]) == (["header", "Last-Event-ID"], kind, value)


def test_a_repeated_position_is_a_422_not_the_first_or_the_last(feed: TestClient) -> None:
    query = only_error(answer(feed, "/companies/subscribe?last_event_id=1&last_event_id=2", headers=auth()))
    header = only_error(
        answer(feed, "/companies/subscribe", headers=[*auth().items(), ("Last-Event-ID", "1"), ("Last-Event-ID", "2")])
    )

    assert (query["loc"], query["type"], query["input"]) == (["query", "last_event_id"], "multiple_values", ["1", "2"])
    assert (header["loc"], header["type"]) == (["header", "Last-Event-ID"], "multiple_values")


def test_well_formed_positions_are_taken(feed: TestClient) -> None:
    make_company()
    with subscribe(feed, "/companies/subscribe?last_event_id=0", headers=auth()) as reader:
        assert ready(reader).id == 0
    with subscribe(feed, "/companies/subscribe", headers={**auth(), "Last-Event-ID": "0000"}) as reader:
        assert ready(reader).id == 0
    with subscribe(feed, f"/companies/subscribe?last_event_id={MAX_ID}", headers=auth()) as reader:
        frame = ready(reader)  # a position past the newest event: reload, then carry on
        assert (frame.event, frame.data["reason"]) == ("reset", "unknown_position")


# -- WebSocket ---------------------------------------------------------------------------------


def denied(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Any:
    with pytest.raises(WebSocketDenialResponse) as refusal, client.websocket_connect(path, headers=headers or {}):
        pass
    return refusal.value


@pytest.mark.parametrize(("value", "kind"), MALFORMED.items(), ids=[repr(v)[:12] for v in MALFORMED])
def test_a_malformed_since_refuses_the_websocket_with_the_422(feed: TestClient, value: str, kind: str) -> None:
    from urllib.parse import quote

    refusal = denied(feed, f"/companies/subscribe?since={quote(value)}", auth())

    error = only_error(refusal)
    assert (error["loc"], error["type"], error["input"]) == (["query", "since"], kind, value)


def test_a_repeated_since_refuses_the_websocket(feed: TestClient) -> None:
    error = only_error(denied(feed, "/companies/subscribe?since=1&since=2", auth()))

    assert (error["loc"], error["type"], error["input"]) == (["query", "since"], "multiple_values", ["1", "2"])


def test_a_bad_position_is_told_apart_from_no_token_and_no_scope(feed: TestClient) -> None:
    position = denied(feed, "/companies/subscribe?since=-1", auth())
    no_token = denied(feed, "/companies/subscribe")
    no_scope = denied(feed, "/companies/subscribe", auth(scopes=NO_READ))

    assert [position.status_code, no_token.status_code, no_scope.status_code] == [422, 401, 403]
    assert position.json()["detail"][0]["loc"] == ["query", "since"]
    assert no_token.json()["detail"]["code"] == "token_missing"


def test_a_malformed_parent_id_refuses_the_websocket_as_get_answers(feed: TestClient) -> None:
    path = "/companies/not-a-uuid/departments"

    refusal = denied(feed, f"{path}/subscribe", auth())

    assert refusal.status_code == 422
    assert refusal.json() == feed.get(path, headers=auth()).json()


def test_a_well_formed_since_is_taken(feed: TestClient) -> None:
    make_company()
    with feed.websocket_connect("/companies/subscribe?since=0", headers=auth()) as websocket:
        assert websocket.receive_json() == {"event": "ready", "id": 0}


# -- WebSocket on a server without the denial response -----------------------------------------


def refused_without_denial(app: FastAPI, query: str, headers: dict[str, str]) -> list[Message]:
    """What the app sends when the server does not offer ``websocket.http.response``."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
        "root_path": "",
        "path": "/companies/subscribe",
        "raw_path": b"/companies/subscribe",
        "query_string": query.encode(),
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "subprotocols": [],
        "state": {},
        "extensions": {},
    }
    sent: list[Message] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        if inbox:
            return inbox.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    async def call() -> None:
        with anyio.fail_after(10):
            await app(scope, receive, send)

    anyio.run(call)
    return sent


@pytest.mark.parametrize(
    ("query", "headers", "code", "reason"),
    [
        ("since=-1", auth(), 4422, "query.since: greater_than_equal"),
        ("since=1&since=2", auth(), 4422, "query.since: multiple_values"),
        ("", {}, 4401, "token_missing"),
        ("", auth(scopes=NO_READ), 4403, "required_scope_missing"),
    ],
    ids=["negative since", "repeated since", "no token", "no scope"],
)
def test_without_the_denial_response_the_socket_is_closed_with_4000_plus_the_status(
    app: FastAPI, query: str, headers: dict[str, str], code: int, reason: str
) -> None:
    sent = refused_without_denial(app, query, headers)

    assert [message["type"] for message in sent] == ["websocket.accept", "websocket.close"]
    assert (sent[1]["code"], sent[1]["reason"]) == (code, reason)

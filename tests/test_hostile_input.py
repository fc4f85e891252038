"""Hostile input: a clear 4xx for each, bounded memory and time, and the server keeps serving.

``tests/test_errors.py`` already proves the hostile JSON bodies (NaN, lone surrogates,
NUL, invalid UTF-8, 10 000 levels of nesting, huge integers: 422 and nothing written),
malformed company and cost-centre ids, and ``tests/test_limits.py`` the 413 over the
body limit. This module adds:

* in-process, on SQLite and PostgreSQL: NUL bytes and huge integers in *query filters*,
  malformed ids at every nested level, invalid UTF-8 in query strings and headers, the
  exact body-size boundary, and a body of 100 000 invalid items (the 422 lists at most
  ``MAX_VALIDATION_ERRORS`` of them);
* against a live uvicorn on PostgreSQL: 10 MB bodies, declared and chunked, one after
  the other and concurrently, with the server's peak resident memory (``VmHWM`` in
  ``/proc``) before and after; a mix of hostile requests over real sockets, including a
  request line with raw invalid UTF-8; and that the server answers and holds no
  connection afterwards.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from djfapi.errors.handlers import MAX_VALIDATION_ERRORS
from djfapi.routing.route import DEFAULT_MAX_BODY_SIZE
from testproject.business.models import Company, CompanyCostcenter
from testproject.seed import DEMO_TENANT, DEMO_USER
from tests.factories import make_company, make_costcenter, make_department, make_employee, make_team
from tests.helpers import auth, behind_pooler
from tests.live.figures import record
from tests.live.server import Call, LiveServer, drive, running_server, unexpected

JSON = {"content-type": "application/json"}
ERROR_KEYS = {"type", "code", "message", "detail"}


def strict_json(response: httpx.Response) -> Any:
    """The body as strict JSON (UTF-8, no NaN): what any client can parse."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"non-JSON constant {name}")

    return json.loads(response.content.decode("utf-8"), parse_constant=refuse)


def validation_locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in strict_json(response)["detail"]]


@pytest.fixture
def tree(db: None) -> dict[str, Any]:
    company = make_company()
    department = make_department(company)
    return {
        "company": company.pk,
        "department": department.pk,
        "team": make_team(department).pk,
        "costcenter": make_costcenter(company).pk,
        "employee": make_employee(company).pk,
    }


# -- query filters -------------------------------------------------------------------------

LISTS = {
    "companies": "/companies",
    "company aggregate": "/companies/aggregate/count/id",
    "departments": "/companies/{company}/departments",
    "teams": "/companies/{company}/departments/{department}/teams",
    "costcenters": "/companies/{company}/costcenters",
    "employees": "/companies/{company}/employees",
}
TEXT_FILTERS = [
    ("companies", "name"),
    ("companies", "name__icontains"),
    ("companies", "!name"),
    ("company aggregate", "name__icontains"),
    ("departments", "name"),
    ("teams", "name__icontains"),
    ("costcenters", "code"),
    ("employees", "user_id__icontains"),
]


@pytest.mark.parametrize(("where", "parameter"), TEXT_FILTERS)
def test_nul_byte_in_a_query_filter_is_422_naming_it(
    client: TestClient, tree: dict[str, Any], where: str, parameter: str
) -> None:
    """PostgreSQL text cannot hold NUL: without the filter's own check the query itself
    fails (a 500 on PostgreSQL, a silent non-match on SQLite). Same filter, clean value: 200."""
    url = LISTS[where].format(**tree)
    assert client.get(url, params={parameter: "a\x00b"}, headers=auth()).status_code == 422
    assert validation_locs(client.get(url, params={parameter: "a\x00b"}, headers=auth())) == [["query", parameter]]
    assert client.get(url, params={parameter: "a b"}, headers=auth()).status_code == 200


INTEGER_FILTERS = [
    ("companies", "limit"),
    ("companies", "offset"),
    ("companies", "departments__count__gte"),
    ("companies", "created_at__year"),
    ("departments", "teams__count__lte"),
    ("teams", "size__gte"),
    ("costcenters", "id"),
    ("costcenters", "id__lte"),
    ("employees", "hired_at__month"),
]


@pytest.mark.parametrize("value", [10**30, -(10**30), 2**63])
@pytest.mark.parametrize(("where", "parameter"), INTEGER_FILTERS)
def test_huge_integer_in_a_query_parameter_is_422(
    client: TestClient, tree: dict[str, Any], where: str, parameter: str, value: int
) -> None:
    """Out of the column's range: refused before the query (else a DataError or an overflow)."""
    url = LISTS[where].format(**tree)
    assert validation_locs(client.get(url, params={parameter: str(value)}, headers=auth())) == [["query", parameter]]
    assert client.get(url, params={parameter: "3"}, headers=auth()).status_code == 200


# -- path segments -------------------------------------------------------------------------

ITEMS = {
    "department_id": "/companies/{company}/departments/{id}",
    "team_id": "/companies/{company}/departments/{department}/teams/{id}",
    "employee_id": "/companies/{company}/employees/{id}",
}


@pytest.mark.parametrize("segment", ["not-a-uuid", "%00", "9" * 40, "%FF%FE", "1%20OR%201=1", "%2e%2e"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("name", list(ITEMS))
def test_nested_path_segment_that_is_not_an_id_is_422(
    client: TestClient, tree: dict[str, Any], name: str, method: str, segment: str
) -> None:
    url = ITEMS[name].format(**tree, id=segment)
    response = client.request(method, url, json={"name": "x"}, headers=auth())
    assert ["path", name] in validation_locs(response)


@pytest.mark.parametrize("name", list(ITEMS))
def test_an_encoded_slash_in_an_id_matches_no_route(client: TestClient, tree: dict[str, Any], name: str) -> None:
    """``%2F`` decodes to ``/`` before routing: the path has more segments than any route,
    so it is the router's 404 with the SPEC body (never a file or another route)."""
    response = client.get(ITEMS[name].format(**tree, id="..%2F..%2F..%2Fetc%2Fpasswd"), headers=auth())
    assert response.status_code == 404
    assert strict_json(response)["detail"] == {
        "type": "not_found",
        "code": "not_found",
        "message": "Not Found",
        "detail": None,
    }


@pytest.mark.parametrize("name", list(ITEMS))
def test_nested_well_formed_but_missing_id_is_404(client: TestClient, tree: dict[str, Any], name: str) -> None:
    """The control: the same routes with a well-formed id answer 404, not 422."""
    response = client.get(ITEMS[name].format(**tree, id=uuid.uuid4()), headers=auth())
    assert response.status_code == 404
    assert set(strict_json(response)["detail"]) == ERROR_KEYS


# -- encodings -----------------------------------------------------------------------------


def test_invalid_utf8_in_a_query_value_is_not_a_server_error(client: TestClient, tree: dict[str, Any]) -> None:
    """Percent-encoded bytes that are not UTF-8 become U+FFFD (Starlette decodes leniently):
    a value that matches nothing, answered in strict JSON."""
    response = client.get("/companies?name=%FF%FE%C3", headers=auth())
    assert response.status_code == 200
    assert strict_json(response) == {"items": []}


def test_invalid_utf8_in_a_query_name_is_422(client: TestClient, tree: dict[str, Any]) -> None:
    response = client.get("/companies?%FF%FE=1", headers=auth())
    assert response.status_code == 422
    assert strict_json(response)["detail"][0]["loc"][0] == "query"


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe\xfd", b"\xff\xfe", b"Bearer a.\xc3(.b"])
def test_invalid_utf8_in_the_authorization_header_is_401(client: TestClient, db: None, value: bytes) -> None:
    response = client.get("/companies", headers={"Authorization": value})  # type: ignore[dict-item]
    assert response.status_code == 401
    assert strict_json(response)["detail"]["type"] == "unauthorized"


# -- size ------------------------------------------------------------------------------------


def body_of_size(size: int) -> bytes:
    """A JSON company body of exactly ``size`` bytes."""
    skeleton = b'{"name": ""}'
    return b'{"name": "' + b"x" * (size - len(skeleton)) + b'"}'


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_body_limit_is_exact(settings: Any, client: TestClient, db: None, chunked: bool) -> None:
    """``MAX_BODY_SIZE`` bytes are read; one byte more is a 413 (declared or streamed)."""
    settings.DJFAPI = {**settings.DJFAPI, "MAX_BODY_SIZE": 150}

    def send(body: bytes) -> Any:
        content: Any = iter([body[:50], body[50:]]) if chunked else body
        return client.post("/companies", content=content, headers={**auth(), **JSON})

    at_limit, over = send(body_of_size(150)), send(body_of_size(151))
    assert at_limit.status_code == 201, at_limit.text
    assert over.status_code == 413
    assert strict_json(over)["detail"]["type"] == "payload_too_large"


def test_the_demo_refuses_an_oversized_nested_list_at_once(client: TestClient, tree: dict[str, Any]) -> None:
    """The demo's write schemas bound their nested lists (``max_length=100``): 100 000
    items fail on the length before a single item is validated, with one error."""
    body = json.dumps({"name": "x", "costcenters": [{}] * 100_000}).encode()
    response = client.post("/companies", content=body, headers={**auth(), **JSON})

    errors = strict_json(response)["detail"]
    assert response.status_code == 422
    assert [(e["type"], e["loc"]) for e in errors] == [("too_long", ["body", "costcenters"])]
    assert not Company.objects.filter(name="x").exists()


def test_a_body_of_100_000_invalid_items_gets_a_bounded_422(shared_connection: None) -> None:
    """400 KB of ``{}`` items against a schema whose list has no bound: 200 000 errors.
    The 422 lists the first ``MAX_VALIDATION_ERRORS`` and says how many more there are.
    Without the bound the answer was 19 MB and rendering it held the event loop (the
    whole process) for 3-4 s."""
    from fastapi import FastAPI

    from djfapi import BaseModel
    from djfapi.errors import install_error_handlers
    from djfapi.routing.django import DjangoRouterSchema
    from tests.testapp.models import Book, Shelf

    class BookIn(BaseModel):
        title: str
        isbn: str

    class ShelfIn(BaseModel):
        code: str
        name: str
        books: list[BookIn]  # unbounded on purpose

    class ShelfOut(BaseModel):
        code: str

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfOut, create=ShelfIn).router)
    body = json.dumps({"code": "S", "name": "x", "books": [{}] * 100_000}).encode()
    with TestClient(app) as client:
        started = time.monotonic()
        response = client.post("/shelves", content=body, headers=JSON)
        elapsed = time.monotonic() - started

    errors = strict_json(response)["detail"]
    assert response.status_code == 422
    assert len(errors) == MAX_VALIDATION_ERRORS + 1
    assert errors[-1] == {
        "type": "too_many_errors",
        "loc": ["body"],
        "msg": f"{200_000 - MAX_VALIDATION_ERRORS} more errors not listed",
    }
    assert len(response.content) < 64 * 1024
    assert not Shelf.objects.exists() and not Book.objects.exists()
    assert elapsed < 10  # generous: the point is the size; CI machines vary


def test_a_body_with_few_errors_lists_them_all(client: TestClient, tree: dict[str, Any]) -> None:
    """The control: under the bound every error is listed, with no marker."""
    body = {"name": "x", "costcenters": [{}] * 3}
    errors = strict_json(client.post("/companies", json=body, headers=auth()))["detail"]
    assert len(errors) == 6
    assert all(error["type"] == "missing" for error in errors)
    assert not CompanyCostcenter.objects.filter(name="x").exists()


# -- against a live server ---------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(request.config, tmp_path_factory.mktemp("hostile"), "hostile") as server:
        yield server


def ten_mb_body() -> bytes:
    return b'{"name": "' + b"x" * TEN_MB + b'"}'


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.postgresql
def test_10_mb_bodies_are_413_and_memory_stays_bounded(request: pytest.FixtureRequest, live: LiveServer) -> None:
    """Ten 10 MB uploads (declared length and chunked, in turn and four at once): each a
    413 with the SPEC body, and the server's peak resident memory grows by less than
    5 MB, half of one body: reading even one of them in full would show. Without the
    limit (or with a body read before the check) each upload would be read, joined and
    parsed: the peak grows by tens of MB, as it did when the check was removed."""
    reader = auth(DEMO_TENANT, DEMO_USER)
    headers = {**reader, **JSON}
    warm = drive(live.base_url, [Call("POST", "/companies", 201, {"name": "warm"}, reader)] * 20)
    assert unexpected(warm) == []
    peak_before, rss_before = live.peak_rss_kb(), live.rss_kb()

    body = ten_mb_body()
    answers = []
    with httpx.Client(base_url=live.base_url, timeout=60) as client:
        for _ in range(3):
            answers.append(client.post("/companies", content=body, headers=headers))
            answers.append(client.post("/companies", content=chunks(body), headers=headers))
    concurrent = drive(live.base_url, [Call("POST", "/companies", 413, {"name": "x" * TEN_MB}, reader)] * 4, timeout=60)
    peak_after, rss_after = live.peak_rss_kb(), live.rss_kb()
    after = httpx.get(f"{live.base_url}/companies", headers=reader, timeout=10)

    for answer in answers:
        assert answer.status_code == 413, answer.text[:200]
        assert strict_json(answer)["detail"]["type"] == "payload_too_large"
    assert unexpected(concurrent) == []
    assert peak_after - peak_before < 5 * 1024, (peak_before, peak_after)
    assert after.status_code == 200
    if not behind_pooler():  # behind PgBouncer PostgreSQL's backends are its own, kept open
        assert live.watch().settle(0) == 0
    record(
        request.config,
        f"10 MB bodies (limit {DEFAULT_MAX_BODY_SIZE} B): {len(answers) + len(concurrent)} uploads, all 413; "
        f"server peak RSS {peak_before // 1024} -> {peak_after // 1024} MB (+{peak_after - peak_before} kB), "
        f"RSS {rss_before // 1024} -> {rss_after // 1024} MB",
    )


def raw_request(base_url: str, request_bytes: bytes) -> bytes:
    """Send bytes as they are (no client library would send them) and return the answer."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.postgresql
def test_a_hostile_mix_is_all_4xx_and_the_server_keeps_serving(
    request: pytest.FixtureRequest, live: LiveServer
) -> None:
    """Each hostile request gets its clear 4xx (never a 5xx), over real sockets, and
    afterwards the server answers normally and holds no database connection."""
    reader = auth(DEMO_TENANT, DEMO_USER)
    json_headers = {**reader, **JSON}
    deep = b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    bodies = {
        "deep nesting": deep,
        "invalid utf-8": b'{"name": "\xff\xfe"}',
        "nul": b'{"name": "a\\u0000b"}',
        "lone surrogate": b'{"name": "\\ud800"}',
        "nan": b'{"name": NaN}',
        "huge integer": b'{"name": "t", "is_verified": ' + b"9" * 5000 + b"}",
    }
    answers: dict[str, int] = {}
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        for name, body in bodies.items():
            answers[name] = client.post("/companies", content=body, headers=json_headers).status_code
        for name, path in {
            "nul in a filter": "/companies?name=a%00b",
            "huge limit": f"/companies?limit={10**30}",
            "id not a uuid": "/companies/not-a-uuid",
            "nested id with nul": f"/companies/{uuid.uuid4()}/departments/%00",
            "int id out of range": f"/companies/{uuid.uuid4()}/costcenters/{10**30}",
        }.items():
            answers[name] = client.get(path, headers=reader).status_code
        answers["100 KB token"] = client.get(
            "/companies", headers={"Authorization": "Bearer " + "x" * 100_000}
        ).status_code
    raw = raw_request(live.base_url, b"GET /companies?name=\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answers["raw invalid utf-8 in the request line"] = int(raw.split(b" ", 2)[1])

    expected = dict.fromkeys(bodies, 422) | {
        "nul in a filter": 422,
        "huge limit": 422,
        "id not a uuid": 422,
        "nested id with nul": 422,
        "int id out of range": 422,
    }
    assert {name: answers[name] for name in expected} == expected
    # 401 from djfapi, or 400 from uvicorn (h11) when it had to buffer over 16 KB of header.
    assert answers["100 KB token"] in (400, 401)
    assert 400 <= answers["raw invalid utf-8 in the request line"] < 500, answers
    assert httpx.get(f"{live.base_url}/companies", headers=reader, timeout=10).status_code == 200
    if not behind_pooler():  # behind PgBouncer PostgreSQL's backends are its own, kept open
        assert live.watch().settle(0) == 0
    record(
        request.config,
        f"hostile mix on a live server: {len(answers)} requests, answers {sorted(set(answers.values()))}",
    )

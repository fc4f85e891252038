"""Errors as SPEC §7 describes them, and no 500 for anything a client can send.

* Every error but a 422 is ``{"detail": {"type", "code", "message", "detail"}}``; 422s keep
  FastAPI's list of ``{"loc", "msg", "type"}``.
* Hostile bodies (NaN, lone surrogates, NUL, bad UTF-8, deep nesting, ...) are a 422
  whose body is strict JSON, and they change nothing in the database.
* Constraint violations are 409 ``integrity:<model's constraint name>`` on SQLite and
  PostgreSQL alike, a PROTECTed delete is 409 ``protected:<model>``, and neither
  half-writes nor leaks SQL.

The demo API is reached through the ``client`` fixture; a small library tree on the
test-only models (``Shelf`` / ``Book`` / ``Loan``) covers string and integer primary
keys, a unique field, a check constraint and custom endpoints.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pydantic
import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.route import DjfapiRoute
from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.testapp.models import Book, Loan, Shelf

ERROR_KEYS = {"type", "code", "message", "detail"}
BIGINT_MAX = 9_223_372_036_854_775_807
JSON = {"content-type": "application/json"}
SQL_FRAGMENTS = (
    "INSERT INTO",
    "UPDATE ",
    "DELETE FROM",
    "SELECT ",
    "constraint failed",  # SQLite
    "duplicate key value",  # PostgreSQL
    "violates unique constraint",
    "violates check constraint",
    "Key (",
    "DETAIL:",
)


# -- helpers -------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise AssertionError(f"the response body holds the non-JSON constant {name}")


def strict_json(response: Response) -> Any:
    """The body parsed as strict JSON: UTF-8 only, no NaN/Infinity, no lone surrogates."""
    text = response.content.decode("utf-8")  # strict: raises on invalid UTF-8
    text.encode("utf-8")  # raises on a lone surrogate smuggled in through a \\ud800 escape
    return json.loads(text, parse_constant=_refuse_constant)


def assert_error(response: Response, status: int, error_type: str, code: str | None) -> dict[str, Any]:
    """Assert the SPEC §7 error body and return its ``detail`` object."""
    assert response.status_code == status, response.text
    body = strict_json(response)
    assert set(body) <= {"detail", "event_id"}, body
    detail = body["detail"]
    assert set(detail) == ERROR_KEYS, body
    assert detail["type"] == error_type, body
    assert detail["code"] == code, body
    return detail


def assert_validation_error(response: Response) -> list[dict[str, Any]]:
    """Assert a 422 in FastAPI's format and return its errors."""
    assert response.status_code == 422, response.text
    body = strict_json(response)
    assert set(body) == {"detail"}, body
    errors = body["detail"]
    assert isinstance(errors, list) and errors, body
    for error in errors:
        assert isinstance(error["loc"], list) and error["loc"], body
        assert isinstance(error["msg"], str) and isinstance(error["type"], str), body
    return errors


def error_locs(response: Response) -> list[list[Any]]:
    return [error["loc"] for error in assert_validation_error(response)]


def assert_no_database_text(response: Response, raw_error: str) -> None:
    """The body carries neither SQL nor the database's own error message."""
    text = response.text
    for fragment in SQL_FRAGMENTS:
        assert fragment.lower() not in text.lower(), (fragment, text)
    for line in raw_error.splitlines():
        if line.strip():
            assert line.strip() not in text, (line, text)


def raw_database_error(write: Callable[[], Any], error: type[Exception] = IntegrityError) -> str:
    """What the database (or Django) says about ``write``, run directly and rolled back."""
    with pytest.raises(error) as info, transaction.atomic():
        write()
    return str(info.value)


def demo_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every demo row a company write could touch, to compare before and after."""
    return {
        "companies": sorted(Company.objects.values_list("id", "tenant_id", "name", "status", "is_verified")),
        "costcenters": sorted(CompanyCostcenter.objects.values_list("id", "company_id", "code", "name")),
        "departments": sorted(CompanyDepartment.objects.values_list("id", "company_id", "name", "budget")),
        "employees": sorted(Employee.objects.values_list("id", "company_id", "user_id")),
    }


def send(client: TestClient, method: str, url: str, content: bytes, headers: dict[str, str]) -> Response:
    return client.request(method, url, content=content, headers=headers)


# -- demo fixtures -------------------------------------------------------------------


@pytest.fixture
def company(db: None) -> Company:
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    CompanyCostcenter.objects.create(company=company, code="CC1", name="Main")
    return company


@pytest.fixture
def department(company: Company) -> CompanyDepartment:
    return CompanyDepartment.objects.create(company=company, name="Research")


@pytest.fixture
def team(department: CompanyDepartment) -> CompanyDepartmentTeam:
    return CompanyDepartmentTeam.objects.create(department=department, name="Core", size=3)


def team_url(company_id: Any, department_id: Any, team_id: Any) -> str:
    return f"/companies/{company_id}/departments/{department_id}/teams/{team_id}"


# -- the library tree (test-only models) ---------------------------------------------


class ShelfRead(BaseModel):
    code: str
    name: str


class BookRead(BaseModel):
    id: int
    title: str
    isbn: str
    pages: int


class BookWrite(BaseModel):
    """No max_length on ``title`` and no bound on ``pages``: the model and database judge them."""

    title: str
    isbn: str = Field(min_length=1, max_length=20)
    pages: int = 1


library = DjangoRouterSchema(
    name="shelves",
    model=Shelf,
    get=ShelfRead,
    delete=False,
    children=[DjangoRouterSchema(name="books", model=Book, get=BookRead, create=BookWrite, update=BookWrite)],
)


@library.endpoint("/explode", detail=False)
def explode() -> dict[str, str]:
    raise RuntimeError("secret-marker-4711: the vault key is hunter2")


@library.endpoint("/calm", detail=False)
def calm() -> dict[str, str]:
    return {"status": "calm"}


def create_library_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(library.router)
    return app


LIBRARY_APP = create_library_app()


@pytest.fixture
def library_client(shared_connection: None) -> Iterator[TestClient]:
    with TestClient(LIBRARY_APP, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def shelf(db: None) -> Shelf:
    return Shelf.objects.create(code="s1", tenant_id=TENANT, name="Fiction")


@pytest.fixture
def book(shelf: Shelf) -> Book:
    return Book.objects.create(shelf=shelf, title="Dune", isbn="978-0441172719", pages=412)


# -- 404 -----------------------------------------------------------------------------


def test_missing_company_is_404_not_exist_company(client: TestClient, company: Company) -> None:
    response = client.get(f"/companies/{uuid.uuid4()}", headers=auth())
    detail = assert_error(response, 404, "not_found", "not_exist:company")
    assert detail["message"]


def test_existing_company_is_found(client: TestClient, company: Company) -> None:
    assert client.get(f"/companies/{company.id}", headers=auth()).status_code == 200


def test_company_of_another_tenant_is_404_not_403(client: TestClient) -> None:
    foreign = Company.objects.create(tenant_id=OTHER_TENANT, name="Elsewhere")
    assert_error(client.get(f"/companies/{foreign.id}", headers=auth()), 404, "not_found", "not_exist:company")


def test_missing_department_is_404_not_exist_companydepartment(client: TestClient, company: Company) -> None:
    response = client.get(f"/companies/{company.id}/departments/{uuid.uuid4()}", headers=auth())
    assert_error(response, 404, "not_found", "not_exist:companydepartment")


def test_missing_team_is_404_not_exist_companydepartmentteam(client: TestClient, department: CompanyDepartment) -> None:
    response = client.get(team_url(department.company_id, department.id, uuid.uuid4()), headers=auth())
    assert_error(response, 404, "not_found", "not_exist:companydepartmentteam")


def test_existing_team_is_found(client: TestClient, team: CompanyDepartmentTeam) -> None:
    response = client.get(team_url(team.department.company_id, team.department_id, team.id), headers=auth())
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Core"


def test_404_names_the_company_when_every_level_is_missing(client: TestClient, db: None) -> None:
    response = client.get(team_url(uuid.uuid4(), uuid.uuid4(), uuid.uuid4()), headers=auth())
    assert_error(response, 404, "not_found", "not_exist:company")


def test_404_names_the_department_when_it_and_the_team_are_missing(client: TestClient, company: Company) -> None:
    response = client.get(team_url(company.id, uuid.uuid4(), uuid.uuid4()), headers=auth())
    assert_error(response, 404, "not_found", "not_exist:companydepartment")


def test_404_names_the_hidden_company_even_when_department_and_team_exist(client: TestClient) -> None:
    foreign = Company.objects.create(tenant_id=OTHER_TENANT, name="Elsewhere")
    department = CompanyDepartment.objects.create(company=foreign, name="Hidden")
    team = CompanyDepartmentTeam.objects.create(department=department, name="Hidden team")
    response = client.get(team_url(foreign.id, department.id, team.id), headers=auth())
    assert_error(response, 404, "not_found", "not_exist:company")


def test_department_of_another_company_is_404_not_exist_companydepartment(client: TestClient, company: Company) -> None:
    other = Company.objects.create(tenant_id=TENANT, name="Sibling")
    department = CompanyDepartment.objects.create(company=other, name="Not yours")
    response = client.get(f"/companies/{company.id}/departments/{department.id}", headers=auth())
    assert_error(response, 404, "not_found", "not_exist:companydepartment")


def test_create_under_missing_company_is_404_and_writes_nothing(client: TestClient, db: None) -> None:
    before = demo_state()
    response = client.post(f"/companies/{uuid.uuid4()}/costcenters", json={"code": "X", "name": "X"}, headers=auth())
    assert_error(response, 404, "not_found", "not_exist:company")
    assert demo_state() == before


def test_unknown_path_is_router_level_404_with_error_body(client: TestClient) -> None:
    response = client.get("/no-such-resource", headers=auth())
    assert_error(response, 404, "not_found", "not_found")


def test_unknown_child_path_is_router_level_404(client: TestClient, company: Company) -> None:
    response = client.get(f"/companies/{company.id}/no-such-children", headers=auth())
    assert_error(response, 404, "not_found", "not_found")


# -- 405 -----------------------------------------------------------------------------


def test_wrong_method_is_405_with_error_body_and_allow_header(client: TestClient) -> None:
    response = client.delete("/companies", headers=auth())
    assert_error(response, 405, "method_not_allowed", "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_405_allow_header_lists_every_method_of_the_collection(client: TestClient) -> None:
    # RFC 9110 §15.5.6: the Allow header lists the target resource's supported methods.
    response = client.delete("/companies", headers=auth())
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed, response.headers["allow"]


def test_405_allow_header_lists_every_method_of_the_item(client: TestClient, company: Company) -> None:
    response = client.post(f"/companies/{company.id}", json={}, headers=auth())
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "PATCH", "PUT", "DELETE"} <= allowed, response.headers["allow"]


# -- 401 / 403 -----------------------------------------------------------------------


def test_missing_token_is_401_token_missing(client: TestClient) -> None:
    response = client.get("/companies")
    assert_error(response, 401, "unauthorized", "token_missing")
    assert response.headers["www-authenticate"] == "Bearer"


def test_garbage_token_is_401_token_invalid(client: TestClient) -> None:
    response = client.get("/companies", headers={"Authorization": "Bearer not.a.jwt"})
    assert_error(response, 401, "unauthorized", "token_invalid")


def test_expired_token_is_401_token_expired(client: TestClient) -> None:
    assert_error(client.get("/companies", headers=auth(expires=-60)), 401, "unauthorized", "token_expired")


def test_token_without_route_scope_is_403_required_scope_missing(client: TestClient) -> None:
    response = client.get("/companies", headers=auth(scopes=["business.companies.create"]))
    assert_error(response, 403, "forbidden", "required_scope_missing")


def test_token_with_route_scope_is_allowed(client: TestClient, db: None) -> None:
    response = client.get("/companies", headers=auth(scopes=["business.companies.read.any"]))
    assert response.status_code == 200, response.text


# -- 422 keeps FastAPI's format ------------------------------------------------------


def test_body_validation_error_is_fastapi_list_with_body_loc(client: TestClient, db: None) -> None:
    response = client.post("/companies", json={"name": ""}, headers=auth())
    assert ["body", "name"] in error_locs(response)


def test_query_validation_error_is_fastapi_list_with_query_loc(client: TestClient, db: None) -> None:
    response = client.get("/companies", params={"limit": 0}, headers=auth())
    assert ["query", "limit"] in error_locs(response)


def test_path_validation_error_is_fastapi_list_with_path_loc(client: TestClient, db: None) -> None:
    response = client.get("/companies/not-a-uuid", headers=auth())
    assert error_locs(response) == [["path", "company_id"]]


# -- hostile bodies ------------------------------------------------------------------

DEEP = 10_000
HOSTILE_JSON_BODIES: dict[str, bytes] = {
    "nan": b'{"name": NaN, "status": "active"}',
    "infinity": b'{"name": Infinity, "status": "active"}',
    "negative-infinity": b'{"name": -Infinity, "status": "active"}',
    "nan-in-nested-item": b'{"name": "n", "status": "active", "costcenters": [{"code": NaN, "name": "x"}]}',
    "lone-high-surrogate": b'{"name": "\\ud800", "status": "active"}',
    "lone-low-surrogate": b'{"name": "x\\udfff", "status": "active"}',
    "lone-surrogate-in-key": b'{"\\ud800": 1, "name": "n", "status": "active"}',
    "nul-in-string": b'{"name": "a\\u0000b", "status": "active"}',
    "nul-in-nested-item": b'{"name": "n", "status": "active", "costcenters": [{"code": "\\u0000", "name": "x"}]}',
    "invalid-utf8": b'{"name": "\xff\xfe\xc3", "status": "active"}',
    "latin1-bytes": '{"name": "Caf\u00e9", "status": "active"}'.encode("latin-1"),
    "truncated": b'{"name": "Acme", "status": "act',
    "empty": b"",
    "whitespace-only": b"   ",
    "array": b'[{"name": "n", "status": "active"}]',
    "string": b'"just a string"',
    "null": b"null",
    "deeply-nested-arrays": b'{"name": ' + b"[" * DEEP + b"]" * DEEP + b', "status": "active"}',
    "deeply-nested-objects": b'{"name": "n", "status": "active", "x": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
    "huge-integer": b'{"name": ' + b"9" * 40 + b', "status": "active"}',
    "integer-beyond-str-digit-limit": b'{"name": 1' + b"0" * 5000 + b', "status": "active"}',
    "float-overflowing-to-infinity": b'{"name": 1e400, "status": "active"}',
}
WRONG_CONTENT_TYPES: dict[str, dict[str, str]] = {
    "text-plain": {"content-type": "text/plain"},
    "form-urlencoded": {"content-type": "application/x-www-form-urlencoded"},
    "xml": {"content-type": "application/xml"},
    "no-content-type": {},
}
WRITE_METHODS = ["POST", "PATCH", "PUT"]


def write_url(method: str, company: Company) -> str:
    return "/companies" if method == "POST" else f"/companies/{company.id}"


@pytest.mark.parametrize("method", WRITE_METHODS)
@pytest.mark.parametrize("name", list(HOSTILE_JSON_BODIES))
def test_hostile_json_body_is_422_with_strict_json_and_writes_nothing(
    client: TestClient, company: Company, method: str, name: str
) -> None:
    before = demo_state()
    response = send(client, method, write_url(method, company), HOSTILE_JSON_BODIES[name], {**auth(), **JSON})
    assert_validation_error(response)
    assert demo_state() == before


@pytest.mark.parametrize("method", WRITE_METHODS)
@pytest.mark.parametrize("name", list(WRONG_CONTENT_TYPES))
def test_wrong_content_type_is_4xx_with_strict_json_and_writes_nothing(
    client: TestClient, company: Company, method: str, name: str
) -> None:
    before = demo_state()
    content = b'{"name": "Would be valid JSON", "status": "active"}'
    response = send(client, method, write_url(method, company), content, {**auth(), **WRONG_CONTENT_TYPES[name]})
    assert response.status_code in (415, 422), response.text
    strict_json(response)
    assert demo_state() == before


@pytest.mark.parametrize("method", WRITE_METHODS)
def test_wrong_content_type_with_invalid_utf8_is_4xx_with_strict_json(
    client: TestClient, company: Company, method: str
) -> None:
    before = demo_state()
    content = b'\xff{"name": NaN, "x": "\\ud800"}'
    response = send(client, method, write_url(method, company), content, {**auth(), "content-type": "text/plain"})
    assert response.status_code in (415, 422), response.text
    strict_json(response)
    assert demo_state() == before


WELL_FORMED_BODIES = {
    "POST": (b'{"name": "Fresh", "status": "active"}', 201),
    "PATCH": (b'{"name": "Fresh"}', 200),
    "PUT": (b'{"name": "Fresh", "status": "inactive"}', 200),
}


@pytest.mark.parametrize("method", WRITE_METHODS)
def test_well_formed_json_body_is_accepted(client: TestClient, company: Company, method: str) -> None:
    content, status = WELL_FORMED_BODIES[method]
    response = send(client, method, write_url(method, company), content, {**auth(), **JSON})
    assert response.status_code == status, response.text
    assert Company.objects.filter(tenant_id=TENANT, name="Fresh").count() == 1


@pytest.mark.parametrize(
    ("escaped", "stored"),
    [
        pytest.param(b"\\ud83d\\ude00", "\U0001f600", id="surrogate-pair"),
        pytest.param(b"a\\\\u0000b", "a\\u0000b", id="escaped-backslash-before-u0000"),
        pytest.param(b"Caf\\u00e9", "Caf\u00e9", id="unicode-escape"),
        pytest.param("Caf\u00e9".encode(), "Caf\u00e9", id="raw-utf8"),
    ],
)
def test_legitimate_escapes_near_the_refused_ones_are_accepted(
    client: TestClient, db: None, escaped: bytes, stored: str
) -> None:
    content = b'{"name": "' + escaped + b'", "status": "active"}'
    response = client.post("/companies", content=content, headers={**auth(), **JSON})
    assert response.status_code == 201, response.text
    assert strict_json(response)["name"] == stored
    assert Company.objects.get(pk=response.json()["id"]).name == stored


def test_moderately_nested_json_reaches_validation(client: TestClient, db: None) -> None:
    # The depth limit refuses 10 000 levels as invalid JSON; 20 levels parse and fail on the schema.
    content = b'{"name": ' + b"[" * 20 + b"]" * 20 + b', "status": "active"}'
    response = client.post("/companies", content=content, headers={**auth(), **JSON})
    errors = assert_validation_error(response)
    assert [error["type"] for error in errors] == ["string_type"]


def test_huge_integer_in_bounded_integer_field_is_422(client: TestClient, company: Company) -> None:
    before = demo_state()
    content = b'{"name": "Lab", "teams": [{"name": "t", "size": ' + b"9" * 40 + b"}]}"
    response = client.post(f"/companies/{company.id}/departments", content=content, headers={**auth(), **JSON})
    assert ["body", "teams", 0, "size"] in error_locs(response)
    assert demo_state() == before


def test_huge_integer_as_nested_item_id_is_422(client: TestClient, company: Company) -> None:
    before = demo_state()
    content = (
        b'{"name": "Acme", "status": "active", "costcenters": [{"id": ' + b"9" * 40 + b', "code": "A", "name": "a"}]}'
    )
    response = client.put(f"/companies/{company.id}", content=content, headers={**auth(), **JSON})
    assert ["body", "costcenters", 0, "id"] in error_locs(response)
    assert demo_state() == before


def test_integer_at_field_bound_is_accepted(client: TestClient, company: Company) -> None:
    body = {"name": "Lab", "teams": [{"name": "t", "size": 100_000}]}
    response = client.post(f"/companies/{company.id}/departments", json=body, headers=auth())
    assert response.status_code == 201, response.text


# -- why the handler matters: stock FastAPI vs install_error_handlers ----------------


class Thing(pydantic.BaseModel):
    name: str
    count: int = 0


def plain_app(*, handlers: bool, strict_route: bool = False) -> FastAPI:
    """An app with no djfapi in it, optionally with djfapi's handlers or route class."""
    app = FastAPI()
    if handlers:
        install_error_handlers(app)
    if strict_route:
        app.router.route_class = DjfapiRoute

    @app.post("/things")
    def create_thing(body: Thing) -> dict[str, Any]:
        return {"name": body.name, "count": body.count}

    return app


def post_thing(app: FastAPI, content: bytes) -> Response:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        return test_client.post("/things", content=content, headers=JSON)


def test_stock_fastapi_answers_500_to_nan() -> None:
    # json.loads accepts NaN; the stock 422 handler then fails to encode the echoed input.
    assert post_thing(plain_app(handlers=False), b'{"name": NaN}').status_code == 500


def test_error_handlers_alone_answer_422_to_nan() -> None:
    response = post_thing(plain_app(handlers=True), b'{"name": NaN}')
    errors = assert_validation_error(response)
    assert errors[0]["loc"] == ["body", "name"]


def test_error_handlers_alone_answer_422_to_infinity_in_int_field() -> None:
    response = post_thing(plain_app(handlers=True), b'{"name": "n", "count": -Infinity}')
    assert ["body", "count"] in error_locs(response)


def test_stock_fastapi_answers_500_to_lone_surrogate_echoed_in_422() -> None:
    assert post_thing(plain_app(handlers=False), b'{"name": "n", "count": "\\ud800"}').status_code == 500


def test_error_handlers_alone_answer_422_to_lone_surrogate_echoed_in_422() -> None:
    response = post_thing(plain_app(handlers=True), b'{"name": "n", "count": "\\ud800"}')
    assert ["body", "count"] in error_locs(response)


def test_handlers_alone_cannot_save_a_lone_surrogate_that_passes_validation() -> None:
    # The surrogate is a valid ``str`` for pydantic and reaches the endpoint's response,
    # which cannot be encoded: the last-resort handler hides it, but only the strict
    # parser (next test) stops it at the door.
    response = post_thing(plain_app(handlers=True), b'{"name": "\\ud800"}')
    assert_error(response, 500, "internal_error", None)


def test_strict_route_class_refuses_a_lone_surrogate_that_passes_validation() -> None:
    response = post_thing(plain_app(handlers=True, strict_route=True), b'{"name": "\\ud800"}')
    assert [error["type"] for error in assert_validation_error(response)] == ["json_invalid"]


def test_strict_route_class_accepts_valid_json() -> None:
    response = post_thing(plain_app(handlers=True, strict_route=True), b'{"name": "ok", "count": 2}')
    assert response.status_code == 200
    assert response.json() == {"name": "ok", "count": 2}


# -- invalid path ids ----------------------------------------------------------------


@pytest.mark.parametrize("company_id", ["not-a-uuid", "1234", "00000000-0000-0000-0000-00000000000g", "%00"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_malformed_company_id_is_422(client: TestClient, db: None, company_id: str, method: str) -> None:
    response = client.request(
        method, f"/companies/{company_id}", json={"name": "x", "status": "active"}, headers=auth()
    )
    assert ["path", "company_id"] in error_locs(response)


@pytest.mark.parametrize(
    "costcenter_id",
    ["-1", "0", str(BIGINT_MAX + 1), "9" * 40, "1.5", "1e3", "abc", "%00"],
)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_invalid_costcenter_id_is_422(client: TestClient, company: Company, costcenter_id: str, method: str) -> None:
    url = f"/companies/{company.id}/costcenters/{costcenter_id}"
    response = client.request(method, url, json={"name": "x"}, headers=auth())
    assert ["path", "costcenter_id"] in error_locs(response)


@pytest.mark.parametrize("costcenter_id", [1, BIGINT_MAX])
def test_costcenter_id_in_range_but_missing_is_404(client: TestClient, company: Company, costcenter_id: int) -> None:
    CompanyCostcenter.objects.filter(pk=costcenter_id).delete()
    response = client.get(f"/companies/{company.id}/costcenters/{costcenter_id}", headers=auth())
    assert_error(response, 404, "not_found", "not_exist:companycostcenter")


def test_existing_costcenter_id_is_found(client: TestClient, company: Company) -> None:
    costcenter = company.costcenters.get()
    response = client.get(f"/companies/{company.id}/costcenters/{costcenter.pk}", headers=auth())
    assert response.status_code == 200
    assert response.json()["code"] == "CC1"


@pytest.mark.parametrize("shelf_id", ["a%00b", "%00", "x" * 21])
def test_invalid_string_shelf_id_is_422(library_client: TestClient, shelf: Shelf, shelf_id: str) -> None:
    assert error_locs(library_client.get(f"/shelves/{shelf_id}")) == [["path", "shelf_id"]]


def test_invalid_string_shelf_id_in_child_route_is_422(library_client: TestClient, shelf: Shelf) -> None:
    response = library_client.post("/shelves/s%001/books", json={"title": "t", "isbn": "1"})
    assert ["path", "shelf_id"] in error_locs(response)
    assert not Book.objects.exists()


def test_valid_string_shelf_id_is_found_or_404(library_client: TestClient, shelf: Shelf) -> None:
    assert library_client.get("/shelves/s1").json() == {"code": "s1", "name": "Fiction"}
    assert library_client.get(f"/shelves/{'x' * 20}").status_code == 404


# -- 409 conflicts -------------------------------------------------------------------


def test_duplicate_costcenter_code_is_409_with_model_constraint_name(client: TestClient, company: Company) -> None:
    before = demo_state()
    response = client.post(f"/companies/{company.id}/costcenters", json={"code": "CC1", "name": "Dup"}, headers=auth())
    detail = assert_error(response, 409, "conflict", "integrity:company_costcenter_code_unique")
    assert detail["message"]
    assert demo_state() == before


def test_duplicate_costcenter_code_body_holds_no_sql(client: TestClient, company: Company) -> None:
    raw = raw_database_error(lambda: CompanyCostcenter.objects.create(company=company, code="CC1", name="Raw"))
    response = client.post(f"/companies/{company.id}/costcenters", json={"code": "CC1", "name": "Dup"}, headers=auth())
    assert response.status_code == 409
    assert_no_database_text(response, raw)
    assert CompanyCostcenter._meta.db_table not in response.text


def test_same_costcenter_code_in_another_company_is_accepted(client: TestClient, company: Company) -> None:
    other = Company.objects.create(tenant_id=TENANT, name="Other")
    response = client.post(f"/companies/{other.id}/costcenters", json={"code": "CC1", "name": "Ok"}, headers=auth())
    assert response.status_code == 201, response.text


def test_costcenter_patch_onto_taken_code_is_409_and_unchanged(client: TestClient, company: Company) -> None:
    second = CompanyCostcenter.objects.create(company=company, code="CC2", name="Second")
    url = f"/companies/{company.id}/costcenters/{second.pk}"
    response = client.patch(url, json={"code": "CC1", "name": "Renamed"}, headers=auth())
    assert_error(response, 409, "conflict", "integrity:company_costcenter_code_unique")
    second.refresh_from_db()
    assert (second.code, second.name) == ("CC2", "Second")


def test_duplicate_employee_is_409_employee_company_user_unique(client: TestClient, company: Company) -> None:
    Employee.objects.create(company=company, user_id="alice", hired_at="2024-01-02")
    body = {"user_id": "alice", "hired_at": "2024-02-03"}
    response = client.post(f"/companies/{company.id}/employees", json=body, headers=auth())
    assert_error(response, 409, "conflict", "integrity:employee_company_user_unique")
    assert Employee.objects.filter(company=company).count() == 1


def test_reference_to_missing_department_is_409_foreign_key(client: TestClient, company: Company) -> None:
    body = {"user_id": "bob", "hired_at": "2024-01-02", "department_id": str(uuid.uuid4())}
    response = client.post(f"/companies/{company.id}/employees", json=body, headers=auth())
    assert_error(response, 409, "conflict", "integrity:business_employee_department_id_fk")
    assert not Employee.objects.exists()


def test_reference_to_existing_department_is_accepted(client: TestClient, department: CompanyDepartment) -> None:
    body = {"user_id": "bob", "hired_at": "2024-01-02", "department_id": str(department.id)}
    response = client.post(f"/companies/{department.company_id}/employees", json=body, headers=auth())
    assert response.status_code == 201, response.text
    assert response.json()["department_id"] == str(department.id)


def test_company_create_with_duplicate_nested_codes_is_409_and_writes_nothing(client: TestClient, db: None) -> None:
    before = demo_state()
    body = {"name": "Twins", "costcenters": [{"code": "A", "name": "first"}, {"code": "A", "name": "second"}]}
    response = client.post("/companies", json=body, headers=auth())
    assert_error(response, 409, "conflict", "integrity:company_costcenter_code_unique")
    assert demo_state() == before
    assert not Company.objects.filter(name="Twins").exists()
    assert not CompanyCostcenter.objects.filter(code="A").exists()


def test_company_create_with_distinct_nested_codes_is_accepted(client: TestClient, db: None) -> None:
    body = {"name": "Pair", "costcenters": [{"code": "A", "name": "first"}, {"code": "B", "name": "second"}]}
    response = client.post("/companies", json=body, headers=auth())
    assert response.status_code == 201, response.text
    assert sorted(CompanyCostcenter.objects.filter(company__name="Pair").values_list("code", flat=True)) == ["A", "B"]


def test_company_put_with_duplicate_nested_codes_is_409_and_rolls_back_everything(
    client: TestClient, company: Company
) -> None:
    before = demo_state()
    body = {
        "name": "Renamed",
        "status": "inactive",
        "costcenters": [{"code": "A", "name": "first"}, {"code": "A", "name": "second"}],
    }
    response = client.put(f"/companies/{company.id}", json=body, headers=auth())
    assert_error(response, 409, "conflict", "integrity:company_costcenter_code_unique")
    assert demo_state() == before  # the name, the status and the deleted CC1 are all back


def test_duplicate_isbn_is_409_with_unique_field_name(library_client: TestClient, book: Book) -> None:
    response = library_client.post("/shelves/s1/books", json={"title": "Copy", "isbn": book.isbn})
    assert_error(response, 409, "conflict", "integrity:testapp_book_isbn_key")
    assert list(Book.objects.values_list("title", flat=True)) == ["Dune"]


def test_duplicate_isbn_body_holds_no_sql(library_client: TestClient, book: Book) -> None:
    raw = raw_database_error(lambda: Book.objects.create(shelf=book.shelf, title="Raw", isbn=book.isbn))
    response = library_client.post("/shelves/s1/books", json={"title": "Copy", "isbn": book.isbn})
    assert response.status_code == 409
    assert_no_database_text(response, raw)


def test_patch_onto_taken_isbn_is_409_and_unchanged(library_client: TestClient, book: Book) -> None:
    other = Book.objects.create(shelf=book.shelf, title="Emma", isbn="978-0141439587")
    response = library_client.patch(f"/shelves/s1/books/{other.pk}", json={"isbn": book.isbn, "title": "Changed"})
    assert_error(response, 409, "conflict", "integrity:testapp_book_isbn_key")
    other.refresh_from_db()
    assert (other.title, other.isbn) == ("Emma", "978-0141439587")


def test_unique_isbn_is_accepted(library_client: TestClient, book: Book) -> None:
    response = library_client.post("/shelves/s1/books", json={"title": "Emma", "isbn": "978-0141439587"})
    assert response.status_code == 201, response.text


def test_check_constraint_violation_is_409_with_constraint_name(library_client: TestClient, shelf: Shelf) -> None:
    response = library_client.post("/shelves/s1/books", json={"title": "Tome", "isbn": "1", "pages": 10_001})
    assert_error(response, 409, "conflict", "integrity:book_pages_reasonable")
    assert not Book.objects.exists()


def test_check_constraint_body_holds_no_sql(library_client: TestClient, shelf: Shelf) -> None:
    raw = raw_database_error(lambda: Book.objects.create(shelf=shelf, title="Raw", isbn="1", pages=10_001))
    response = library_client.post("/shelves/s1/books", json={"title": "Tome", "isbn": "1", "pages": 10_001})
    assert response.status_code == 409
    assert_no_database_text(response, raw)


def test_check_constraint_violation_on_patch_is_409_and_unchanged(library_client: TestClient, book: Book) -> None:
    response = library_client.patch(f"/shelves/s1/books/{book.pk}", json={"pages": 20_000})
    assert_error(response, 409, "conflict", "integrity:book_pages_reasonable")
    book.refresh_from_db()
    assert book.pages == 412


def test_check_constraint_bound_is_accepted(library_client: TestClient, shelf: Shelf) -> None:
    response = library_client.post("/shelves/s1/books", json={"title": "Tome", "isbn": "1", "pages": 10_000})
    assert response.status_code == 201, response.text
    assert response.json()["pages"] == 10_000


def test_deleting_protected_book_is_409_protected_loan(library_client: TestClient, book: Book) -> None:
    Loan.objects.create(book=book, borrower="bob")
    response = library_client.delete(f"/shelves/s1/books/{book.pk}")
    assert_error(response, 409, "conflict", "protected:loan")
    assert response.json()["detail"]["detail"] == {"relations": ["loan.book"]}
    assert Book.objects.filter(pk=book.pk).exists()
    assert Loan.objects.filter(book=book).count() == 1


def test_protected_delete_body_holds_no_internals(library_client: TestClient, book: Book) -> None:
    Loan.objects.create(book=book, borrower="bob")
    raw = raw_database_error(book.delete, ProtectedError)
    response = library_client.delete(f"/shelves/s1/books/{book.pk}")
    assert response.status_code == 409
    assert_no_database_text(response, raw)
    assert Loan._meta.db_table not in response.text


def test_deleting_unprotected_book_is_accepted(library_client: TestClient, book: Book) -> None:
    response = library_client.delete(f"/shelves/s1/books/{book.pk}")
    assert response.status_code == 204
    assert not Book.objects.filter(pk=book.pk).exists()


# -- Django validation ---------------------------------------------------------------


def test_too_long_title_on_create_is_422_at_body_title(library_client: TestClient, shelf: Shelf) -> None:
    response = library_client.post("/shelves/s1/books", json={"title": "x" * 101, "isbn": "1"})
    assert error_locs(response) == [["body", "title"]]
    assert not Book.objects.exists()


def test_too_long_title_on_patch_is_422_at_body_title(library_client: TestClient, book: Book) -> None:
    response = library_client.patch(f"/shelves/s1/books/{book.pk}", json={"title": "x" * 101})
    assert error_locs(response) == [["body", "title"]]
    book.refresh_from_db()
    assert book.title == "Dune"


def test_title_at_max_length_is_accepted(library_client: TestClient, shelf: Shelf) -> None:
    response = library_client.post("/shelves/s1/books", json={"title": "x" * 100, "isbn": "1"})
    assert response.status_code == 201, response.text


def test_negative_pages_is_422_at_body_pages(library_client: TestClient, shelf: Shelf) -> None:
    response = library_client.post("/shelves/s1/books", json={"title": "t", "isbn": "1", "pages": -1})
    assert error_locs(response) == [["body", "pages"]]


def test_huge_integer_in_unbounded_schema_field_is_422_at_body_pages(library_client: TestClient, shelf: Shelf) -> None:
    content = b'{"title": "t", "isbn": "1", "pages": ' + b"9" * 40 + b"}"
    response = library_client.post("/shelves/s1/books", content=content, headers=JSON)
    assert error_locs(response) == [["body", "pages"]]
    assert not Book.objects.exists()


# -- unexpected exceptions -----------------------------------------------------------


def test_unexpected_exception_is_500_internal_error_without_traceback(library_client: TestClient, db: None) -> None:
    response = library_client.get("/shelves/explode")
    detail = assert_error(response, 500, "internal_error", None)
    assert detail["detail"] is None
    for leak in ("secret-marker-4711", "hunter2", "RuntimeError", "Traceback", 'File "', "explode"):
        assert leak not in response.text, leak


def test_custom_endpoint_that_does_not_raise_is_200(library_client: TestClient, db: None) -> None:
    response = library_client.get("/shelves/calm")
    assert response.status_code == 200
    assert response.json() == {"status": "calm"}

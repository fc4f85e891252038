"""Error classes by cause (SPEC §10): 503 only when the database cannot be reached.

Every ``OperationalError`` used to be a 503 ``database_unavailable``: a 50,001-character
``name__icontains`` on SQLite ("LIKE or GLOB pattern too complex") let any reader send
"database down" signals at will, and ``budget__gte=1e999999`` on PostgreSQL ("value
overflows numeric format") was a 422 at ``["body"]`` of a request without a body. Now:

* values are checked before SQL, each refused at ``["query", <parameter>]`` with the
  accepted value next to it: text at most ``MAX_FILTER_LENGTH`` characters (an exact
  match at most the column's ``max_length``), decimals within the column's digits,
  integers within the column's range;
* a value the database refuses all the same (the checks widened by settings or switched
  off) is a 422 at ``["query"]`` that does not repeat the database's message;
* a database that cannot be reached is still a 503 ``database_unavailable``; one that
  stays locked past its timeout a 503 ``database_busy`` with ``Retry-After``; any other
  database error (a missing table) a 500: a bug, not an outage.

Each case runs on SQLite and on PostgreSQL (``DATABASE_URL``), as real requests to the
demo app; the last test pins the classification table behind them.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import types
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.errors
import psycopg_pool
import pytest
from django.db import DatabaseError, Error, OperationalError, connection, connections
from django.db.utils import DatabaseErrorWrapper
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from djfapi.errors.handlers import DatabaseFailure, classify_database_error, render_error
from djfapi.routing import filters
from testproject.business.models import Company, CompanyCostcenter
from tests.factories import make_company, make_costcenter, make_department, make_employee, make_team
from tests.helpers import auth, own_postgresql_connection
from tests.live.server import Call, Outcome
from tests.test_outage import assert_unavailable, closed_port


@pytest.fixture
def tree(db: None) -> dict[str, Any]:
    company = make_company()
    department = make_department(company)
    make_team(department)
    make_costcenter(company)
    make_employee(company)
    return {"company": company.pk, "department": department.pk}


ROUTES = {
    "companies": "/companies",
    "company aggregate": "/companies/aggregate/count/id",
    "departments": "/companies/{company}/departments",
    "department aggregate": "/companies/{company}/departments/aggregate/sum/budget",
    "teams": "/companies/{company}/departments/{department}/teams",
    "costcenters": "/companies/{company}/costcenters",
    "employees": "/companies/{company}/employees",
    "employee aggregate": "/companies/{company}/employees/aggregate/sum/salary",
}


def get(client: TestClient, tree: dict[str, Any], route: str, parameter: str, value: str) -> Any:
    return client.get(ROUTES[route].format(**tree), params={parameter: value}, headers=auth())


def refused_at(response: Any) -> list[Any]:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    return [error["loc"] for error in response.json()["detail"]]


# -- text: at most MAX_FILTER_LENGTH characters, an exact match at most the column's max_length ------------------

#: (route, parameter, the longest value accepted)
TEXT_BOUNDS = [
    ("companies", "name__icontains", 1000),
    ("companies", "!name__icontains", 1000),
    ("companies", "name", 200),  # CharField(max_length=200)
    ("companies", "!name", 200),
    ("company aggregate", "name__icontains", 1000),
    ("departments", "name", 200),
    ("department aggregate", "name__icontains", 1000),
    ("teams", "name__icontains", 1000),
    ("costcenters", "code", 32),
    ("costcenters", "code__icontains", 1000),
    ("employees", "user_id", 64),
    ("employees", "user_id__icontains", 1000),
]


@pytest.mark.parametrize(("route", "parameter", "longest"), TEXT_BOUNDS)
def test_a_text_filter_value_is_bounded_before_sql(
    client: TestClient, tree: dict[str, Any], route: str, parameter: str, longest: int
) -> None:
    accepted = get(client, tree, route, parameter, "a" * longest)
    refused = get(client, tree, route, parameter, "a" * (longest + 1))

    assert accepted.status_code == 200, accepted.text[:300]
    assert refused_at(refused) == [["query", parameter]]
    error = refused.json()["detail"][0]
    assert error["type"] == "string_too_long"
    assert error["msg"] == f"String should have at most {longest} characters"
    assert error["ctx"] == {"max_length": longest}


def test_the_text_bound_is_a_setting_and_the_column_still_bounds_exact_matches(
    settings: Any, client: TestClient, tree: dict[str, Any]
) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "MAX_FILTER_LENGTH": 10}
    assert get(client, tree, "companies", "name__icontains", "a" * 10).status_code == 200
    assert refused_at(get(client, tree, "companies", "name__icontains", "a" * 11)) == [["query", "name__icontains"]]
    assert refused_at(get(client, tree, "companies", "name", "a" * 11)) == [["query", "name"]]

    settings.DJFAPI = {**settings.DJFAPI, "MAX_FILTER_LENGTH": 5000}
    assert get(client, tree, "companies", "name__icontains", "a" * 5000).status_code == 200
    assert refused_at(get(client, tree, "companies", "name", "a" * 201)) == [["query", "name"]]


def test_the_50001_character_pattern_is_a_422_never_a_503(
    settings: Any, client: TestClient, tree: dict[str, Any]
) -> None:
    """The finding: a 503 on SQLite. Within the default query budget it is refused as too
    long a query string; with the budget raised, as too long a filter value."""
    pattern = "a" * 50_001
    assert refused_at(get(client, tree, "companies", "name__icontains", pattern)) == [["query"]]

    settings.DJFAPI = {**settings.DJFAPI, "MAX_QUERY_LENGTH": 64 * 1024}
    assert refused_at(get(client, tree, "companies", "name__icontains", pattern)) == [["query", "name__icontains"]]
    assert get(client, tree, "companies", "name__icontains", "a" * 1000).status_code == 200


# -- decimals: within the column's digits ----------------------------------------------------------------------

#: (accepted, refused) next to each other. budget and salary are DecimalField(max_digits=14,
#: decimal_places=2): 12 digits before the point. Finer digits are compared exactly
#: (tests/test_filters.py), up to MAX_FILTER_LENGTH of them.
DECIMAL_PAIRS = [
    ("999999999999.99", "1000000000000"),
    ("-999999999999.99", "-1000000000000"),
    ("999999999999.999", "1e12"),
    ("1e-1000", "1e-1001"),
    ("0", "1e999999"),  # the finding: "value overflows numeric format" on PostgreSQL
    ("0", "-1e999999"),
    ("0", "1e-999999"),
]
DECIMAL_FILTERS = [
    ("departments", "budget__gte"),
    ("departments", "budget__lte"),
    ("departments", "budget"),
    ("departments", "!budget__gte"),
    ("department aggregate", "budget__gte"),
    ("employees", "salary__lte"),
    ("employee aggregate", "salary__gte"),
]


@pytest.mark.parametrize(("accepted", "refused"), DECIMAL_PAIRS)
@pytest.mark.parametrize(("route", "parameter"), DECIMAL_FILTERS)
def test_a_decimal_filter_value_is_bounded_by_the_column(
    client: TestClient, tree: dict[str, Any], route: str, parameter: str, accepted: str, refused: str
) -> None:
    ok = get(client, tree, route, parameter, accepted)
    assert ok.status_code == 200, ok.text[:300]

    response = get(client, tree, route, parameter, refused)
    assert refused_at(response) == [["query", parameter]]
    assert response.json()["detail"][0]["type"] == "value_error"


def test_the_decimal_bound_says_why(client: TestClient, tree: dict[str, Any]) -> None:
    response = get(client, tree, "departments", "budget__gte", "1e999999")
    assert response.json()["detail"][0]["msg"] == (
        "Value error, out of range: budget holds numbers with at most 12 digits before the decimal point"
    )
    response = get(client, tree, "departments", "budget__gte", "1e-1001")
    assert (
        response.json()["detail"][0]["msg"] == "Value error, too precise: at most 1000 digits after the decimal point"
    )


def test_a_bound_inside_the_column_still_filters(client: TestClient, tree: dict[str, Any]) -> None:
    """The department's budget is 1000.00: the column's extremes find it or not, as they should."""
    path = ROUTES["departments"].format(**tree)
    assert len(client.get(path, params={"budget__lte": "999999999999.99"}, headers=auth()).json()["items"]) == 1
    assert client.get(path, params={"budget__gte": "999999999999.99"}, headers=auth()).json()["items"] == []
    assert len(client.get(path, params={"budget__gte": "-999999999999.99"}, headers=auth()).json()["items"]) == 1


# -- integers: within the column's range (checked before this issue; kept here with the others) ----------------

INTEGER_PAIRS = [
    ("teams", "size__gte", "2147483647", "2147483648"),  # PositiveIntegerField
    ("teams", "size__lte", "0", "-1"),
    ("costcenters", "id", "9223372036854775807", "9223372036854775808"),  # BigAutoField
    ("companies", "departments__count__gte", "2147483647", "2147483648"),
    ("companies", "created_at__year", "9999", "10000"),
]


@pytest.mark.parametrize(("route", "parameter", "accepted", "refused"), INTEGER_PAIRS)
def test_an_integer_filter_value_is_bounded_by_the_column(
    client: TestClient, tree: dict[str, Any], route: str, parameter: str, accepted: str, refused: str
) -> None:
    assert get(client, tree, route, parameter, accepted).status_code == 200
    assert refused_at(get(client, tree, route, parameter, refused)) == [["query", parameter]]


def test_a_body_value_beyond_the_column_is_a_422_at_its_field(client: TestClient, tree: dict[str, Any]) -> None:
    path = ROUTES["departments"].format(**tree)
    accepted = client.post(path, json={"name": "d", "budget": "999999999999.99"}, headers=auth())
    refused = client.post(path, json={"name": "d", "budget": "1000000000000"}, headers=auth())

    assert accepted.status_code == 201
    assert refused_at(refused) == [["body", "budget"]]


# -- the safety net: a value the database refuses anyway ---------------------------------------------------------


@pytest.fixture
def without_the_checks(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a value through to the database that it refuses: on SQLite a LIKE pattern over
    its 50,000 bytes (the budgets widened by settings), on PostgreSQL a decimal beyond
    ``numeric`` (the decimal check switched off)."""
    settings.DJFAPI = {**settings.DJFAPI, "MAX_QUERY_LENGTH": 128 * 1024, "MAX_FILTER_LENGTH": 100_000}
    monkeypatch.setattr(filters._DecimalRange, "__call__", lambda self, value: value)


def refused_by_the_database() -> tuple[str, str, str]:
    """(parameter, a value the database takes, the next one it refuses) on this database."""
    if connection.vendor == "sqlite":
        # Django sends '%' + value + '%': 50,000 bytes are SQLite's most.
        return "name__icontains", "a" * 49_998, "a" * 49_999
    return "budget__gte", "999999999999.99", "1e999999"


@pytest.mark.parametrize("route", ["list", "aggregate"])
def test_a_value_the_database_refuses_is_a_422_at_the_query(
    client: TestClient, tree: dict[str, Any], without_the_checks: None, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: a 503 ``database_unavailable`` on SQLite, a 422 at ``["body"]`` on PostgreSQL.
    The accepted value goes first: on PostgreSQL the refused one aborts the test's transaction."""
    parameter, accepted, refused = refused_by_the_database()
    names = {"list": "companies", "aggregate": "company aggregate"}
    if parameter.startswith("budget"):
        names = {"list": "departments", "aggregate": "department aggregate"}
    path = ROUTES[names[route]].format(**tree)

    assert client.get(path, params={parameter: accepted}, headers=auth()).status_code == 200
    with caplog.at_level(logging.WARNING, logger="djfapi.errors"):
        response = client.get(path, params={parameter: refused}, headers=auth())

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "value_error",
                "loc": ["query"],
                "msg": "A value of the query string is beyond what the database can process (too long, too large "
                "or too complex).",
            }
        ]
    }
    assert "database refused a value of the query" in caplog.text


# -- what stays a 503, and what is a 500 -------------------------------------------------------------------------


@contextlib.contextmanager
def database_settings(**changes: Any) -> Iterator[None]:
    """Connections opened meanwhile (the app's, one per request) use ``changes``."""
    config = connections.settings["default"]
    saved = {key: config.get(key) for key in changes}
    config.update(changes)
    try:
        yield
    finally:
        config.update(saved)


@pytest.fixture
def own_connections(app: FastAPI, transactional_db: None) -> Iterator[TestClient]:
    """A client whose requests open (and close) their own connections, as in production."""
    with TestClient(app) as client:
        yield client


def unreachable() -> dict[str, Any]:
    if connection.vendor == "sqlite":
        return {"NAME": "/nonexistent-djfapi-directory/db.sqlite3"}  # "unable to open database file"
    return {"PORT": closed_port()}  # "connection refused"


def test_a_database_that_cannot_be_reached_is_still_a_503(
    own_connections: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    company = make_company()
    path = f"/companies/{company.pk}"
    with database_settings(**unreachable()), caplog.at_level(logging.WARNING, logger="djfapi.errors"):
        down = own_connections.get(path, headers=auth())
    back = own_connections.get(path, headers=auth())

    assert_unavailable(Outcome(Call("GET", path, 503), down.status_code, down.content))
    assert down.json()["detail"]["code"] == "database_unavailable"
    assert "database unavailable" in caplog.text
    assert back.status_code == 200


@contextlib.contextmanager
def row_locked_elsewhere(company: Company) -> Iterator[dict[str, Any]]:
    """Another connection holds a write lock the request needs; the app waits 0.2 s for it.

    SQLite: a writer's RESERVED lock on the whole file ("database is locked");
    PostgreSQL: the company row ``FOR UPDATE``, met by the PATCH's own ``FOR UPDATE``
    under ``lock_timeout`` (lock_not_available, 55P03).
    """
    if connection.vendor == "sqlite":
        writer = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            yield {"OPTIONS": {**connection.settings_dict["OPTIONS"], "timeout": 0.2}}
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        return
    config = connection.settings_dict
    with own_postgresql_connection() as other:
        other.execute(f"SELECT 1 FROM {Company._meta.db_table} WHERE id = %s FOR UPDATE", [company.pk])
        yield {"OPTIONS": {**config["OPTIONS"], "options": "-c lock_timeout=200"}}
        other.rollback()


@pytest.mark.direct_postgresql  # lock_timeout as a startup option, which PgBouncer does not forward
def test_a_database_locked_past_its_timeout_is_a_503_that_says_so(own_connections: TestClient) -> None:
    """Not "unavailable": the database answers, other work holds it. Before: the same 503
    ``database_unavailable`` as an outage."""
    company = make_company()
    path = f"/companies/{company.pk}"
    with row_locked_elsewhere(company) as changes, database_settings(**changes):
        busy = own_connections.patch(path, json={"name": "Renamed"}, headers=auth())
    free = own_connections.patch(path, json={"name": "Renamed"}, headers=auth())

    assert busy.status_code == 503, busy.text
    assert busy.json()["detail"] == {
        "type": "service_unavailable",
        "code": "database_busy",
        "message": "The database is busy (locked by other work for longer than its timeout); try again.",
        "detail": None,
    }
    assert busy.headers["retry-after"] == "1"
    assert free.status_code == 200


def test_a_missing_table_is_a_500_not_an_outage(client: TestClient, tree: dict[str, Any]) -> None:
    """A bug (here: the table renamed away) is an ``internal_error``; SQLite's "no such
    table" is an OperationalError and was a 503. Rolled back with the test."""
    path = ROUTES["costcenters"].format(**tree)
    assert client.get(path, headers=auth()).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {CompanyCostcenter._meta.db_table} RENAME TO djfapi_test_renamed_away")

    response = client.get(path, headers=auth())

    assert response.status_code == 500
    assert response.json()["detail"]["type"] == "internal_error"
    assert "djfapi_test_renamed_away" not in response.text and "business_" not in response.text


# -- the classification table ------------------------------------------------------------------------------------


def as_django_raises(driver: types.ModuleType, error: Exception) -> Error:
    """``error`` wrapped by Django's own wrapper for ``driver``'s backend (``__cause__`` set)."""
    backend = types.SimpleNamespace(Database=driver, errors_occurred=False)
    try:
        with DatabaseErrorWrapper(backend):
            raise error
    except Error as wrapped:
        return wrapped
    raise AssertionError("not wrapped")


def pg(sqlstate: str) -> Exception:
    return psycopg.errors.lookup(sqlstate)("message")


UNAVAILABLE, BUSY, VALUE, OTHER = (
    DatabaseFailure.UNAVAILABLE,
    DatabaseFailure.BUSY,
    DatabaseFailure.VALUE,
    DatabaseFailure.OTHER,
)
CLASSES = [
    (psycopg, psycopg.OperationalError("connection failed: Connection refused"), UNAVAILABLE),
    (psycopg, psycopg.OperationalError("server closed the connection unexpectedly"), UNAVAILABLE),
    (psycopg, psycopg_pool.PoolTimeout("couldn't get a connection after 1.00 sec"), UNAVAILABLE),
    (psycopg, psycopg.InterfaceError("the connection is closed"), UNAVAILABLE),
    # PgBouncer's server connection killed during COMMIT: the client connection is broken
    (psycopg, psycopg.InternalError("received 2 results from command 'COMMIT'"), UNAVAILABLE),
    (psycopg, pg("XX000"), OTHER),  # internal_error from the server itself: a bug, not an outage
    (psycopg, pg("08006"), UNAVAILABLE),  # connection_failure
    (psycopg, pg("57P01"), UNAVAILABLE),  # admin_shutdown (pg_terminate_backend)
    (psycopg, pg("57P03"), UNAVAILABLE),  # cannot_connect_now
    (psycopg, pg("53300"), UNAVAILABLE),  # too_many_connections
    (psycopg, pg("58030"), UNAVAILABLE),  # io_error
    (psycopg, pg("55P03"), BUSY),  # lock_not_available
    (psycopg, pg("57014"), BUSY),  # query_canceled (statement_timeout)
    (psycopg, pg("40P01"), BUSY),  # deadlock_detected
    (psycopg, pg("22003"), VALUE),  # numeric_value_out_of_range
    (psycopg, pg("22P02"), VALUE),  # invalid_text_representation
    (psycopg, pg("54001"), VALUE),  # statement_too_complex
    (psycopg, pg("42P01"), OTHER),  # undefined_table
    (psycopg, pg("25P02"), OTHER),  # in_failed_sql_transaction
    (psycopg, pg("55000"), OTHER),  # object_not_in_prerequisite_state
    (sqlite3, sqlite3.OperationalError("unable to open database file"), UNAVAILABLE),
    (sqlite3, sqlite3.OperationalError("disk I/O error"), UNAVAILABLE),
    (sqlite3, sqlite3.OperationalError("database is locked"), BUSY),
    (sqlite3, sqlite3.OperationalError("LIKE or GLOB pattern too complex"), VALUE),
    (sqlite3, sqlite3.OperationalError("Expression tree is too large (maximum depth 1000)"), VALUE),
    (sqlite3, sqlite3.OperationalError("parser stack overflow"), VALUE),
    (sqlite3, sqlite3.DataError("string or blob too big"), VALUE),
    (sqlite3, sqlite3.OperationalError("no such table: business_company"), OTHER),
]


@pytest.mark.parametrize(
    ("driver", "error", "expected"),
    CLASSES,
    ids=[f"{type(error).__name__}-{getattr(error, 'sqlstate', None) or error}" for _, error, _ in CLASSES],
)
def test_the_classification_reads_the_drivers_error(
    driver: types.ModuleType, error: Exception, expected: DatabaseFailure
) -> None:
    wrapped = as_django_raises(driver, error)
    assert wrapped.__cause__ is error
    assert classify_database_error(wrapped) is expected


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (as_django_raises(psycopg, psycopg.InterfaceError("the connection is closed")), 503),
        (as_django_raises(sqlite3, sqlite3.OperationalError("database is locked")), 503),
        (as_django_raises(psycopg, pg("22003")), 422),
        (as_django_raises(psycopg, pg("42P01")), 500),
    ],
    ids=["interface error", "locked", "out of range", "undefined table"],
)
def test_every_database_error_reaches_the_classification(error: Error, status: int) -> None:
    """``InterfaceError`` is no ``DatabaseError`` in Django: it needs its own handler entry."""
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""})
    assert render_error(request, error).status_code == status


def test_an_operational_error_without_a_driver_error_stays_unavailable() -> None:
    """Raised by hand (or by a driver djfapi cannot read): a 503, as before."""
    assert classify_database_error(OperationalError("connection refused")) is DatabaseFailure.UNAVAILABLE
    assert classify_database_error(DatabaseError("something")) is DatabaseFailure.OTHER

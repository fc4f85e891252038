"""List filters on the demo API (SPEC §5): every filter kind, negation, "any of",
paths through relations, relation counts, the 422s for unknown or malformed parameters,
and the 403 for filtering on a field the caller may not read (SPEC §4).

Two small worlds are built through the ORM. Companies of tenant A (Alpha, Bravo,
Charlie, Delta, plus the soft-deleted Echo) and a foreign tenant's Foxtrot, which
matches most filters but must never appear; and the employees of Alpha, one of them
without a department and one without a salary, for the NULL cases.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from testproject.business.models import Company, CompanyDepartment, Employee
from tests.helpers import OTHER_TENANT, TENANT, USER, auth

READ_ANY = "business.companies.read.any"
READ_OWN = "business.companies.read.own"

Params = Sequence[tuple[str, str]]


def utc(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=datetime.UTC)


def make_company(
    name: str,
    *,
    tenant: str = TENANT,
    status: str = "active",
    verified: bool = False,
    created_at: datetime.datetime | None = None,
    departments: int = 0,
    owners: Sequence[str] = (),
    admins: Sequence[str] = (),
) -> Company:
    company = Company.objects.create(
        tenant_id=tenant,
        name=name,
        status=status,
        is_verified=verified,
        created_at=created_at or utc(2022, 1, 1),
    )
    for index in range(departments):
        CompanyDepartment.objects.create(company=company, name=f"{name} department {index}")
    for role, users in ((Employee.Type.OWNER, owners), (Employee.Type.ADMIN, admins)):
        for user in users:
            make_employee(company, user, role=role)
    return company


def make_employee(
    company: Company,
    user_id: str,
    *,
    role: str = Employee.Type.MEMBER,
    department: CompanyDepartment | None = None,
    salary: str | None = "1000.00",
    hired_at: datetime.date = datetime.date(2020, 1, 1),
) -> Employee:
    return Employee.objects.create(
        company=company,
        user_id=user_id,
        type=role,
        department=department,
        salary=None if salary is None else Decimal(salary),
        hired_at=hired_at,
    )


def company_names(client: TestClient, params: Params = (), headers: dict[str, str] | None = None) -> list[str]:
    """The names on the companies list (ordered by name, the demo's default order)."""
    response = client.get("/companies", params=list(params), headers=headers or auth())
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def employee_users(
    client: TestClient, company: Company, params: Params = (), headers: dict[str, str] | None = None
) -> list[str]:
    response = client.get(f"/companies/{company.pk}/employees", params=list(params), headers=headers or auth())
    assert response.status_code == 200, response.text
    return sorted(item["user_id"] for item in response.json()["items"])


def single_error(response: Any) -> dict[str, Any]:
    """The one validation error of a 422, after checking FastAPI's format."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert list(body) == ["detail"]
    assert len(body["detail"]) == 1, body
    error = body["detail"][0]
    assert {"loc", "msg", "type"} <= set(error)
    assert isinstance(error["msg"], str)
    assert isinstance(error["type"], str)
    return error


# -- the worlds ---------------------------------------------------------------------------------------------------


@dataclass
class Companies:
    alpha: Company
    bravo: Company
    charlie: Company
    delta: Company
    echo: Company  # soft-deleted
    foxtrot: Company  # another tenant's

    @property
    def ids(self) -> dict[str, str]:
        return {name: str(getattr(self, name).pk) for name in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")}


VISIBLE = ["Alpha", "Bravo", "Charlie", "Delta"]


@pytest.fixture
def companies(db: None) -> Companies:
    return Companies(
        alpha=make_company(
            "Alpha", verified=True, created_at=utc(2023, 5, 10, 12), departments=2, owners=["ann"], admins=["bea"]
        ),
        bravo=make_company(
            "Bravo", status="inactive", created_at=utc(2024, 3, 31, 23, 30), departments=1, admins=["al"]
        ),
        # Two owners: a filter through the relation must still list Charlie once.
        charlie=make_company("Charlie", created_at=utc(2024, 4, 1, 0, 30), owners=["cy", "cal"]),
        delta=make_company("Delta", created_at=utc(2024, 12, 25, 8)),
        echo=make_company(
            "Echo", status="deleted", verified=True, created_at=utc(2024, 4, 1, 0, 30), departments=3, owners=["ed"]
        ),
        foxtrot=make_company(
            "Foxtrot",
            tenant=OTHER_TENANT,
            status="inactive",
            verified=True,
            created_at=utc(2024, 3, 31, 23, 30),
            departments=2,
            owners=["fay"],
        ),
    )


@dataclass
class Staff:
    company: Company
    sales: CompanyDepartment
    support: CompanyDepartment

    @property
    def ids(self) -> dict[str, str]:
        ids = {"sales": str(self.sales.pk), "support": str(self.support.pk)}
        ids.update({e.user_id: str(e.pk) for e in self.company.employees.all()})
        return ids


ALL_STAFF = ["ann", "bob", "cid", "dan", "eve"]


@pytest.fixture
def staff(db: None) -> Staff:
    company = make_company("Staffed")
    sales = CompanyDepartment.objects.create(company=company, name="Sales")
    support = CompanyDepartment.objects.create(company=company, name="Support")
    make_employee(company, "ann", role="OWNER", department=sales, salary="52000.00", hired_at=datetime.date(2019, 3, 1))
    make_employee(
        company, "bob", role="ADMIN", department=sales, salary="61000.50", hired_at=datetime.date(2020, 6, 15)
    )
    make_employee(company, "cid", department=support, salary="45000.25", hired_at=datetime.date(2020, 1, 10))
    make_employee(company, "dan", department=None, salary="38000.10", hired_at=datetime.date(2021, 9, 30))
    make_employee(company, "eve", department=support, salary=None, hired_at=datetime.date(2021, 2, 1))
    # Another company's employee that matches everything: it must never show up under "Staffed".
    other = make_company("Other")
    make_employee(other, "zed", role="OWNER", salary="99999.00", hired_at=datetime.date(2020, 6, 15))
    return Staff(company, sales, support)


# -- every filter kind, and its negation --------------------------------------------------------------------------

#: (parameter, value, the company names it keeps); values may name ids as "{alpha}".
COMPANY_FILTERS = [
    ("id", "{bravo}", ["Bravo"]),
    ("name", "Alpha", ["Alpha"]),
    ("name__icontains", "ARL", ["Charlie"]),
    ("status", "inactive", ["Bravo"]),
    ("is_verified", "true", ["Alpha"]),
    ("created_at", "2024-03-31T23:30:00Z", ["Bravo"]),
    ("created_at__gte", "2024-04-01T00:00:00Z", ["Charlie", "Delta"]),
    ("created_at__lte", "2024-04-01T02:30:00+02:00", ["Alpha", "Bravo", "Charlie"]),
    ("created_at__date", "2024-03-31", ["Bravo"]),
    ("created_at__year", "2024", ["Bravo", "Charlie", "Delta"]),
    ("created_at__month", "4", ["Charlie"]),
    ("created_at__day", "31", ["Bravo"]),
    ("departments__count__gte", "1", ["Alpha", "Bravo"]),
    ("departments__count__lte", "1", ["Bravo", "Charlie", "Delta"]),
    ("employees__type", "OWNER", ["Alpha", "Charlie"]),
]

#: (parameter, value, the employees of "Staffed" it keeps)
EMPLOYEE_FILTERS = [
    ("id", "{bob}", ["bob"]),
    ("user_id", "bob", ["bob"]),
    ("user_id__icontains", "A", ["ann", "dan"]),
    ("type", "MEMBER", ["cid", "dan", "eve"]),
    ("department_id", "{sales}", ["ann", "bob"]),
    ("department_id__isnull", "true", ["dan"]),
    ("department_id__isnull", "false", ["ann", "bob", "cid", "eve"]),
    ("salary", "45000.25", ["cid"]),
    ("salary__gte", "50000", ["ann", "bob"]),
    ("salary__lte", "45000.25", ["cid", "dan"]),
    ("salary__isnull", "true", ["eve"]),
    ("salary__isnull", "false", ["ann", "bob", "cid", "dan"]),
    ("hired_at", "2020-06-15", ["bob"]),
    ("hired_at__gte", "2020-06-15", ["bob", "dan", "eve"]),
    ("hired_at__lte", "2020-01-10", ["ann", "cid"]),
    ("hired_at__year", "2021", ["dan", "eve"]),
    ("hired_at__month", "6", ["bob"]),
    ("hired_at__day", "1", ["ann", "eve"]),
]


@pytest.mark.parametrize(("name", "value", "expected"), COMPANY_FILTERS)
def test_company_filter_keeps_the_matching_rows(
    client: TestClient, companies: Companies, name: str, value: str, expected: list[str]
) -> None:
    assert company_names(client, [(name, value.format(**companies.ids))]) == expected


@pytest.mark.parametrize(("name", "value", "expected"), COMPANY_FILTERS)
def test_negated_company_filter_keeps_exactly_the_other_rows(
    client: TestClient, companies: Companies, name: str, value: str, expected: list[str]
) -> None:
    negated = company_names(client, [(f"!{name}", value.format(**companies.ids))])

    assert negated == [company for company in VISIBLE if company not in expected]


@pytest.mark.parametrize(("name", "value", "expected"), EMPLOYEE_FILTERS)
def test_employee_filter_keeps_the_matching_rows(
    client: TestClient, staff: Staff, name: str, value: str, expected: list[str]
) -> None:
    assert employee_users(client, staff.company, [(name, value.format(**staff.ids))]) == expected


@pytest.mark.parametrize(("name", "value", "expected"), EMPLOYEE_FILTERS)
def test_negated_employee_filter_keeps_exactly_the_other_rows(
    client: TestClient, staff: Staff, name: str, value: str, expected: list[str]
) -> None:
    negated = employee_users(client, staff.company, [(f"!{name}", value.format(**staff.ids))])

    assert negated == [user for user in ALL_STAFF if user not in expected]


def test_unfiltered_lists_are_the_worlds_baseline(client: TestClient, companies: Companies, staff: Staff) -> None:
    assert company_names(client) == ["Alpha", "Bravo", "Charlie", "Delta", "Other", "Staffed"]
    assert employee_users(client, staff.company) == ALL_STAFF


def test_text_exact_is_case_sensitive_and_icontains_is_not(client: TestClient, db: None) -> None:
    for name in ("Acme", "ACME Labs", "acme", "Other"):
        make_company(name)

    assert company_names(client, [("name", "acme")]) == ["acme"]
    assert company_names(client, [("name__icontains", "acme")]) == ["ACME Labs", "Acme", "acme"]


@pytest.mark.parametrize(
    ("needle", "expected"), [("%", ["100% Juice"]), ("_", ["snake_case"]), ("\\", ["back\\slash"])]
)
def test_icontains_treats_like_wildcards_literally(
    client: TestClient, db: None, needle: str, expected: list[str]
) -> None:
    for name in ("100% Juice", "snake_case", "back\\slash", "Plain"):
        make_company(name)

    assert company_names(client, [("name__icontains", needle)]) == expected


def test_number_bounds_are_inclusive(client: TestClient, staff: Staff) -> None:
    bounds = [("salary__gte", "45000.25"), ("salary__lte", "52000.00")]

    assert employee_users(client, staff.company, bounds) == ["ann", "cid"]
    assert employee_users(client, staff.company, [("salary__gte", "45000.26"), ("salary__lte", "51999.99")]) == []


def test_decimal_bounds_finer_than_the_column_are_compared_exactly(client: TestClient, staff: Staff) -> None:
    """cid earns 45000.25: a bound a tenth of a cent above must not be rounded down to it."""
    assert employee_users(client, staff.company, [("salary__gte", "45000.251")]) == ["ann", "bob"]
    assert employee_users(client, staff.company, [("salary__lte", "45000.249")]) == ["dan"]
    assert employee_users(client, staff.company, [("salary", "45000.250")]) == ["cid"]
    assert employee_users(client, staff.company, [("salary", "45000.2500001")]) == []


def test_date_bounds_are_inclusive(client: TestClient, staff: Staff) -> None:
    bounds = [("hired_at__gte", "2020-01-10"), ("hired_at__lte", "2020-06-15")]

    assert employee_users(client, staff.company, bounds) == ["bob", "cid"]


# -- datetimes and time zones -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bound", "expected"),
    [
        ("2024-04-01T01:30:00+02:00", ["Bravo", "Charlie", "Delta"]),  # Bravo's instant, written in +02:00
        ("2024-04-01T01:30:01+02:00", ["Charlie", "Delta"]),
        ("2024-03-31T18:30:00-05:00", ["Bravo", "Charlie", "Delta"]),
        ("2024-03-31T23:30:00Z", ["Bravo", "Charlie", "Delta"]),
        ("2024-03-31T23:30:00", ["Bravo", "Charlie", "Delta"]),  # naive: read in UTC
        ("2024-03-31T23:30:01", ["Charlie", "Delta"]),
    ],
)
def test_datetime_gte_honours_the_offset_and_reads_naive_values_in_utc(
    client: TestClient, companies: Companies, bound: str, expected: list[str]
) -> None:
    assert company_names(client, [("created_at__gte", bound)]) == expected


@pytest.mark.parametrize("instant", ["2024-03-31T23:30:00Z", "2024-04-01T01:30:00+02:00", "2024-03-31T23:30:00"])
def test_datetime_exact_matches_the_same_instant_in_any_offset(
    client: TestClient, companies: Companies, instant: str
) -> None:
    assert company_names(client, [("created_at", instant)]) == ["Bravo"]


def test_datetime_lte_with_an_offset(client: TestClient, companies: Companies) -> None:
    assert company_names(client, [("created_at__lte", "2024-04-01T01:29:59+02:00")]) == ["Alpha"]
    assert company_names(client, [("created_at__lte", "2024-04-01T01:30:00+02:00")]) == ["Alpha", "Bravo"]


def test_date_parts_of_a_datetime_are_taken_in_utc(client: TestClient, companies: Companies) -> None:
    """Bravo was created at 23:30 UTC on 31 March: in UTC that is still March."""
    assert company_names(client, [("created_at__date", "2024-03-31")]) == ["Bravo"]
    assert company_names(client, [("created_at__date", "2024-04-01")]) == ["Charlie"]
    assert company_names(client, [("created_at__year", "2024"), ("created_at__month", "3")]) == ["Bravo"]
    assert company_names(client, [("created_at__month", "4"), ("created_at__day", "1")]) == ["Charlie"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("created_at__gte", "0001-01-01T00:00:00+14:00"), ("created_at__lte", "9999-12-31T23:59:59-14:00")],
)
def test_a_datetime_outside_the_utc_calendar_is_a_422_not_a_500(
    app: FastAPI, shared_connection: None, name: str, value: str
) -> None:
    """In UTC these instants fall outside Python's datetime range (year 0 and 10000).

    SQLite's backend converts bounds to naive UTC and would raise OverflowError (a 500);
    the same instant written in UTC is the accepted control.
    """
    make_company("Acme")

    with TestClient(app, raise_server_exceptions=False) as client:
        refused = client.get("/companies", params={name: value}, headers=auth())
        in_range = client.get("/companies", params={name: value[:19] + "Z"}, headers=auth())

    assert single_error(refused)["loc"] == ["query", name]
    assert in_range.status_code == 200
    assert [item["name"] for item in in_range.json()["items"]] == ["Acme"]


# -- any of, relations, counts ------------------------------------------------------------------------------------


def test_repeated_choice_filter_means_any_of(client: TestClient, companies: Companies) -> None:
    assert company_names(client, [("status", "active"), ("status", "inactive")]) == VISIBLE
    assert company_names(client, [("status", "inactive"), ("status", "inactive")]) == ["Bravo"]


def test_repeated_foreign_key_filter_means_any_of(client: TestClient, staff: Staff) -> None:
    params = [("department_id", str(staff.sales.pk)), ("department_id", str(staff.support.pk))]

    assert employee_users(client, staff.company, params) == ["ann", "bob", "cid", "eve"]


def test_negated_any_of_excludes_every_value(client: TestClient, staff: Staff) -> None:
    params = [("!department_id", str(staff.sales.pk)), ("!department_id", str(staff.support.pk))]

    assert employee_users(client, staff.company, params) == ["dan"]
    assert employee_users(client, staff.company, [("!type", "MEMBER"), ("!type", "ADMIN")]) == ["ann"]


def test_repeated_type_filter_means_any_of(client: TestClient, staff: Staff) -> None:
    assert employee_users(client, staff.company, [("type", "OWNER"), ("type", "ADMIN")]) == ["ann", "bob"]


def test_filter_through_a_relation_lists_each_company_once(client: TestClient, companies: Companies) -> None:
    """Charlie has two owners; a join would list it twice, and count it twice."""
    response = client.get("/companies", params={"employees__type": "OWNER", "total": "true"}, headers=auth())

    assert [item["name"] for item in response.json()["items"]] == ["Alpha", "Charlie"]
    assert response.json()["total"] == 2


def test_filter_through_a_relation_repeats_as_any_of(client: TestClient, companies: Companies) -> None:
    params = [("employees__type", "OWNER"), ("employees__type", "ADMIN")]

    assert company_names(client, params) == ["Alpha", "Bravo", "Charlie"]


def test_negated_relation_filter_keeps_companies_without_such_employees(
    client: TestClient, companies: Companies
) -> None:
    """``!employees__type=OWNER``: no owner at all, including companies without employees."""
    assert company_names(client, [("!employees__type", "OWNER")]) == ["Bravo", "Delta"]


def test_count_filter_counts_missing_relations_as_zero(client: TestClient, companies: Companies) -> None:
    assert company_names(client, [("departments__count__lte", "0")]) == ["Charlie", "Delta"]
    assert company_names(client, [("departments__count__gte", "1"), ("departments__count__lte", "1")]) == ["Bravo"]
    assert company_names(client, [("departments__count__gte", "3")]) == []  # Echo has 3, but is deleted


# -- NULL and negation --------------------------------------------------------------------------------------------


def test_negated_comparison_includes_rows_whose_value_is_null(client: TestClient, staff: Staff) -> None:
    """``!X`` is the complement of ``X``: eve's salary is unknown, so she is not "at least 50000".

    The two lists always split the employees in two, as Django's ``exclude()`` does;
    a caller who wants only known salaries adds ``salary__isnull=false``.
    """
    assert employee_users(client, staff.company, [("!salary__gte", "50000")]) == ["cid", "dan", "eve"]
    assert employee_users(client, staff.company, [("!salary__gte", "50000"), ("salary__isnull", "false")]) == [
        "cid",
        "dan",
    ]


def test_negated_foreign_key_includes_rows_without_one(client: TestClient, staff: Staff) -> None:
    """Not in Sales: dan has no department, so he is not in Sales either."""
    assert employee_users(client, staff.company, [("!department_id", str(staff.sales.pk))]) == ["cid", "dan", "eve"]


def test_negated_status_keeps_the_other_statuses_but_never_deleted_rows(
    client: TestClient, companies: Companies
) -> None:
    assert company_names(client, [("!status", "inactive")]) == ["Alpha", "Charlie", "Delta"]
    assert company_names(client, [("!status", "active")]) == ["Bravo"]


# -- combining filters --------------------------------------------------------------------------------------------


def test_filters_combine_with_and(client: TestClient, companies: Companies) -> None:
    assert company_names(client, [("status", "active"), ("departments__count__gte", "1")]) == ["Alpha"]
    assert company_names(client, [("status", "active"), ("!employees__type", "OWNER")]) == ["Delta"]
    assert company_names(client, [("created_at__year", "2024"), ("!name", "Delta"), ("!status", "inactive")]) == [
        "Charlie"
    ]


def test_negated_and_plain_forms_of_one_filter_combine(client: TestClient, staff: Staff) -> None:
    params = [("salary__gte", "40000"), ("!salary__gte", "50000")]

    assert employee_users(client, staff.company, params) == ["cid"]


def test_employee_filters_stay_under_the_parent_company(client: TestClient, staff: Staff) -> None:
    """zed (of another company) matches these filters but is not an employee of Staffed."""
    assert employee_users(client, staff.company, [("hired_at", "2020-06-15")]) == ["bob"]
    assert employee_users(client, staff.company, [("type", "OWNER")]) == ["ann"]


@pytest.mark.parametrize(
    "params",
    [
        [("name", "Foxtrot")],
        [("id", "{foxtrot}")],
        [("status", "inactive")],
        [("!status", "active")],
        [("is_verified", "true")],
        [("employees__type", "OWNER")],
        [("departments__count__gte", "2")],
        [("created_at__date", "2024-03-31")],
        [("!name", "Alpha")],
    ],
)
def test_filters_never_reveal_another_tenants_rows(
    client: TestClient, companies: Companies, params: list[tuple[str, str]]
) -> None:
    filled = [(name, value.format(**companies.ids)) for name, value in params]

    assert "Foxtrot" not in company_names(client, filled)
    assert "Foxtrot" in company_names(client, filled, headers=auth(tenant=OTHER_TENANT))


def test_own_caller_filters_only_their_own_companies(client: TestClient, db: None) -> None:
    make_company("Mine", owners=[USER])
    make_company("Administered", status="inactive", admins=[USER])
    make_company("Theirs", owners=["someone-else"])
    make_company("Theirs too", status="inactive")
    own = auth(scopes=[READ_OWN])

    assert company_names(client, [("status", "active")], headers=own) == ["Mine"]
    assert company_names(client, [("!status", "active")], headers=own) == ["Administered"]
    assert company_names(client, [("!employees__type", "ADMIN")], headers=own) == ["Mine"]
    assert company_names(client, [("status", "active")], headers=auth(scopes=[READ_ANY])) == ["Mine", "Theirs"]


# -- 422: unknown parameters --------------------------------------------------------------------------------------


def test_unknown_parameter_is_a_422_suggesting_the_right_one(client: TestClient, companies: Companies) -> None:
    error = single_error(client.get("/companies", params={"nmae": "Alpha"}, headers=auth()))

    assert error["loc"] == ["query", "nmae"]
    assert error["type"] == "extra_forbidden"
    assert "did you mean 'name'?" in error["msg"]
    assert company_names(client, [("name", "Alpha")]) == ["Alpha"]


def test_unknown_negated_parameter_is_a_422_suggesting_the_right_one(client: TestClient, companies: Companies) -> None:
    error = single_error(client.get("/companies", params={"!nmae": "Alpha"}, headers=auth()))

    assert error["loc"] == ["query", "!nmae"]
    assert "did you mean 'name'?" in error["msg"]
    assert company_names(client, [("!name", "Alpha")]) == ["Bravo", "Charlie", "Delta"]


def test_unknown_parameter_without_a_close_match_is_still_named(client: TestClient, db: None) -> None:
    error = single_error(client.get("/companies", params={"zzzzzz": "1"}, headers=auth()))

    assert error["loc"] == ["query", "zzzzzz"]
    assert "did you mean" not in error["msg"]


@pytest.mark.parametrize("name", ["!limit", "!order_by", "!total", "salary__gte", "tenant_id", "employees__salary"])
def test_parameters_that_are_not_company_filters_are_refused(client: TestClient, db: None, name: str) -> None:
    error = single_error(client.get("/companies", params={name: "1"}, headers=auth()))

    assert error["loc"] == ["query", name]


@pytest.mark.parametrize(("name", "suggestion"), [("limt", "limit"), ("ofset", "offset"), ("totl", "total")])
def test_misspelled_list_parameter_suggests_the_list_parameter(
    client: TestClient, db: None, name: str, suggestion: str
) -> None:
    error = single_error(client.get("/companies", params={name: "1"}, headers=auth()))

    assert error["loc"] == ["query", name]
    assert f"did you mean {suggestion!r}?" in error["msg"]
    assert client.get("/companies", params={suggestion: "1"}, headers=auth()).status_code == 200


def test_every_unknown_parameter_is_reported_at_once(client: TestClient, db: None) -> None:
    response = client.get("/companies", params=[("nmae", "x"), ("statuss", "active")], headers=auth())

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "nmae"], ["query", "statuss"]]


def test_unknown_parameter_on_an_aggregate_route_is_a_422(client: TestClient, companies: Companies) -> None:
    refused = client.get("/companies/aggregate/count/id", params={"nmae": "Alpha"}, headers=auth())
    accepted = client.get("/companies/aggregate/count/id", params={"name": "Alpha"}, headers=auth())

    assert single_error(refused)["loc"] == ["query", "nmae"]
    assert "did you mean 'name'?" in single_error(refused)["msg"]
    assert accepted.json() == {"values": [{"value": 1}]}


@pytest.mark.parametrize("name", ["limit", "offset", "order_by", "total", "cursor"])
def test_list_parameters_are_unknown_on_aggregate_routes(client: TestClient, companies: Companies, name: str) -> None:
    response = client.get("/companies/aggregate/count/id", params={name: "1"}, headers=auth())

    assert single_error(response)["loc"] == ["query", name]


def test_unknown_parameter_on_a_child_aggregate_route_is_a_422(client: TestClient, staff: Staff) -> None:
    path = f"/companies/{staff.company.pk}/employees/aggregate/count/id"

    assert single_error(client.get(path, params={"salary__gt": "1"}, headers=auth()))["loc"] == ["query", "salary__gt"]
    assert client.get(path, params={"salary__gte": "50000"}, headers=auth()).json() == {"values": [{"value": 2}]}


# -- 422: malformed values ----------------------------------------------------------------------------------------

#: (parameter, a refused value, an accepted value)
COMPANY_VALUES = [
    ("created_at__year", "abc", "2024"),
    ("created_at__year", "10000", "9999"),
    ("created_at__month", "13", "12"),
    ("created_at__day", "0", "1"),
    ("created_at__date", "2024-02-30", "2024-02-29"),
    ("created_at__gte", "yesterday", "2024-01-01T00:00:00Z"),
    ("created_at", "2024-01-01T00:00:00+25:00", "2024-01-01T00:00:00+14:00"),
    ("departments__count__gte", "-1", "0"),
    ("departments__count__lte", "1.5", "1"),
    ("departments__count__gte", str(2**31), str(2**31 - 1)),
    ("id", "not-a-uuid", "{alpha}"),
    ("status", "bogus", "active"),
    ("status", "ACTIVE", "active"),
    ("employees__type", "owner", "OWNER"),
    ("is_verified", "maybe", "true"),
]

EMPLOYEE_VALUES = [
    ("salary__gte", "abc", "1"),
    ("salary__gte", "NaN", "1"),
    ("salary__lte", "Infinity", "1e3"),
    ("department_id", "sales", "{sales}"),
    ("hired_at", "2020-13-01", "2020-12-01"),
    ("hired_at__gte", "2020-01-01T12:00:00", "2020-01-01"),
    ("type", "owner", "OWNER"),
    ("salary__isnull", "perhaps", "true"),
]


@pytest.mark.parametrize(("name", "refused", "accepted"), COMPANY_VALUES)
def test_company_filter_of_the_wrong_type_is_a_422(
    client: TestClient, companies: Companies, name: str, refused: str, accepted: str
) -> None:
    error = single_error(client.get("/companies", params={name: refused}, headers=auth()))
    good = client.get("/companies", params={name: accepted.format(**companies.ids)}, headers=auth())

    assert error["loc"] == ["query", name]
    assert error["input"] == refused
    assert good.status_code == 200, good.text


@pytest.mark.parametrize(("name", "refused", "accepted"), EMPLOYEE_VALUES)
def test_employee_filter_of_the_wrong_type_is_a_422(
    client: TestClient, staff: Staff, name: str, refused: str, accepted: str
) -> None:
    path = f"/companies/{staff.company.pk}/employees"

    error = single_error(client.get(path, params={name: refused}, headers=auth()))
    good = client.get(path, params={name: accepted.format(**staff.ids)}, headers=auth())

    assert error["loc"] == ["query", name]
    assert good.status_code == 200, good.text


def test_negated_filter_of_the_wrong_type_names_the_negated_parameter(client: TestClient, db: None) -> None:
    error = single_error(client.get("/companies", params={"!created_at__year": "abc"}, headers=auth()))

    assert error["loc"] == ["query", "!created_at__year"]


def test_wrong_type_in_one_of_several_any_of_values_is_a_422(client: TestClient, db: None) -> None:
    response = client.get("/companies", params=[("status", "active"), ("status", "bogus")], headers=auth())

    assert single_error(response)["loc"] == ["query", "status"]
    assert single_error(response)["input"] == "bogus"


@pytest.mark.parametrize("name", ["name", "!name", "created_at__year", "is_verified", "departments__count__gte"])
def test_a_filter_that_is_not_any_of_may_not_repeat(client: TestClient, companies: Companies, name: str) -> None:
    value = {"name": "Alpha", "!name": "Alpha", "is_verified": "true"}.get(name, "1")

    refused = client.get("/companies", params=[(name, value), (name, value)], headers=auth())
    accepted = client.get("/companies", params=[(name, value)], headers=auth())

    assert single_error(refused)["loc"] == ["query", name]
    assert single_error(refused)["input"] == [value, value]
    assert accepted.status_code == 200


def test_plain_and_negated_forms_are_different_parameters(client: TestClient, companies: Companies) -> None:
    assert company_names(client, [("name__icontains", "r"), ("!name__icontains", "ph")]) == ["Bravo", "Charlie"]


@pytest.mark.parametrize("name", ["name", "name__icontains", "!name__icontains"])
def test_nul_byte_in_a_text_filter_is_a_422(client: TestClient, companies: Companies, name: str) -> None:
    refused = client.get(f"/companies?{name}=Al%00pha", headers=auth())
    accepted = client.get(f"/companies?{name}=Alpha", headers=auth())

    error = single_error(refused)
    assert error["loc"] == ["query", name]
    assert "NUL" in error["msg"]
    assert accepted.status_code == 200


def test_nul_byte_in_an_employee_text_filter_is_a_422(client: TestClient, staff: Staff) -> None:
    path = f"/companies/{staff.company.pk}/employees"

    assert single_error(client.get(f"{path}?user_id=a%00", headers=auth()))["loc"] == ["query", "user_id"]
    assert client.get(f"{path}?user_id=ann", headers=auth()).status_code == 200


def test_validation_errors_use_fastapis_format(client: TestClient, db: None) -> None:
    response = client.get("/companies", params=[("nmae", "x"), ("created_at__year", "abc")], headers=auth())

    assert response.status_code == 422
    body = response.json()
    assert list(body) == ["detail"]
    for error in body["detail"]:
        assert error["loc"][0] == "query"
        assert isinstance(error["msg"], str)
        assert isinstance(error["type"], str)
    assert [error["type"] for error in body["detail"]] == ["extra_forbidden", "int_parsing"]


def test_filters_are_validated_before_the_parent_is_looked_up(client: TestClient, db: None) -> None:
    """A malformed query is a 422 whether or not the company exists, so it reveals nothing."""
    path = f"/companies/{uuid.uuid4()}/employees"

    assert single_error(client.get(path, params={"nmae": "x"}, headers=auth()))["loc"] == ["query", "nmae"]
    assert client.get(path, headers=auth()).status_code == 404


# -- hidden fields: 403 -------------------------------------------------------------------------------------------


@pytest.fixture
def owned(db: None) -> Company:
    """A company whose owner is the test's USER; two employees with salaries."""
    company = make_company("Mine")
    make_employee(company, USER, role="OWNER", salary="100.00")
    make_employee(company, "worker", salary="200.00")
    return company


OWN_ONLY = {"scopes": [READ_OWN]}


@pytest.mark.parametrize(
    "params",
    [
        {"salary__gte": "1"},
        {"!salary__gte": "1"},
        {"salary__lte": "150"},
        {"salary": "100.00"},
        {"salary__isnull": "false"},
    ],
)
def test_filtering_on_a_hidden_field_is_a_403(client: TestClient, owned: Company, params: dict[str, str]) -> None:
    path = f"/companies/{owned.pk}/employees"

    refused = client.get(path, params=params, headers=auth(**OWN_ONLY))
    accepted = client.get(path, params=params, headers=auth(scopes=[READ_ANY]))

    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"]["code"] == "field_scope_missing"
    (name,) = params
    assert refused.json()["detail"]["detail"] == {"field": name.lstrip("!"), "scopes": [READ_ANY]}
    assert accepted.status_code == 200


def test_own_caller_still_filters_on_visible_fields(client: TestClient, owned: Company) -> None:
    assert employee_users(client, owned, [("type", "OWNER")], headers=auth(**OWN_ONLY)) == [USER]


def test_read_any_caller_filters_on_salary(client: TestClient, owned: Company) -> None:
    assert employee_users(client, owned, [("salary__gte", "150")], headers=auth(scopes=[READ_ANY])) == ["worker"]


@pytest.mark.parametrize("term", ["salary", "-salary"])
def test_ordering_on_a_hidden_field_is_a_403(client: TestClient, owned: Company, term: str) -> None:
    path = f"/companies/{owned.pk}/employees"

    refused = client.get(path, params={"order_by": term}, headers=auth(**OWN_ONLY))
    accepted = client.get(path, params={"order_by": term}, headers=auth(scopes=[READ_ANY]))

    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "field_scope_missing"
    assert accepted.status_code == 200
    salaries = [item["salary"] for item in accepted.json()["items"]]
    assert salaries == (["100.00", "200.00"] if term == "salary" else ["200.00", "100.00"])


def test_employee_order_by_enum_lists_salary_which_a_403_guards(app: FastAPI) -> None:
    """salary *is* orderable on employees (a plain column of the read schema); only callers
    who may read it may order by it (the test above)."""
    operation = app.openapi()["paths"]["/companies/{company_id}/employees"]["get"]
    order_by = next(p for p in operation["parameters"] if p["name"] == "order_by")

    assert order_by["schema"]["anyOf"][0]["items"]["enum"] == [
        "hired_at",
        "-hired_at",
        "id",
        "-id",
        "salary",
        "-salary",
        "type",
        "-type",
        "user_id",
        "-user_id",
    ]


@pytest.mark.parametrize("function", ["sum", "avg", "min", "max", "count"])
def test_aggregating_a_hidden_field_is_a_403(client: TestClient, owned: Company, function: str) -> None:
    path = f"/companies/{owned.pk}/employees/aggregate/{function}/salary"

    refused = client.get(path, headers=auth(**OWN_ONLY))
    accepted = client.get(path, headers=auth(scopes=[READ_ANY]))

    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "field_scope_missing"
    assert accepted.status_code == 200


def test_filtering_an_aggregate_on_a_hidden_field_is_a_403(client: TestClient, owned: Company) -> None:
    path = f"/companies/{owned.pk}/employees/aggregate/count/id"

    refused = client.get(path, params={"salary__gte": "150"}, headers=auth(**OWN_ONLY))
    accepted = client.get(path, params={"salary__gte": "150"}, headers=auth(scopes=[READ_ANY]))
    unfiltered = client.get(path, headers=auth(**OWN_ONLY))

    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "field_scope_missing"
    assert accepted.json() == {"values": [{"value": 1}]}
    assert unfiltered.json() == {"values": [{"value": 2}]}


# -- OpenAPI ------------------------------------------------------------------------------------------------------

LIST_PARAMETERS = {"limit", "offset", "order_by", "total", "fields"}
COMPANY_FILTER_NAMES = {
    "id",
    "name",
    "name__icontains",
    "status",
    "is_verified",
    "created_at",
    "created_at__gte",
    "created_at__lte",
    "created_at__date",
    "created_at__year",
    "created_at__month",
    "created_at__day",
    "departments__count__gte",
    "departments__count__lte",
    "employees__type",
}
EMPLOYEE_FILTER_NAMES = {
    "id",
    "user_id",
    "user_id__icontains",
    "type",
    "department_id",
    "department_id__isnull",
    "salary",
    "salary__gte",
    "salary__lte",
    "salary__isnull",
    "hired_at",
    "hired_at__gte",
    "hired_at__lte",
    "hired_at__year",
    "hired_at__month",
    "hired_at__day",
}


def query_parameters(app: FastAPI, path: str) -> list[str]:
    operation = app.openapi()["paths"][path]["get"]
    return [p["name"] for p in operation["parameters"] if p["in"] == "query"]


def test_companies_list_documents_15_filters(app: FastAPI) -> None:
    names = query_parameters(app, "/companies")

    assert len(names) == len(set(names))
    assert len(set(names) - LIST_PARAMETERS) == 15
    assert set(names) == COMPANY_FILTER_NAMES | LIST_PARAMETERS


def test_employees_list_documents_16_filters(app: FastAPI) -> None:
    names = query_parameters(app, "/companies/{company_id}/employees")

    assert len(names) == len(set(names))
    assert len(set(names) - LIST_PARAMETERS) == 16
    assert set(names) == EMPLOYEE_FILTER_NAMES | LIST_PARAMETERS


def test_aggregate_routes_document_the_same_filters(app: FastAPI) -> None:
    companies = query_parameters(app, "/companies/aggregate/{function}/{field}")
    employees = query_parameters(app, "/companies/{company_id}/employees/aggregate/{function}/{field}")

    assert set(companies) == COMPANY_FILTER_NAMES | {"group_by"}
    assert set(employees) == EMPLOYEE_FILTER_NAMES | {"group_by"}


def test_any_of_filters_are_documented_as_arrays(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/companies/{company_id}/employees"]["get"]
    schemas = {p["name"]: p["schema"] for p in operation["parameters"]}

    assert schemas["type"] == {"type": "array", "items": {"enum": ["OWNER", "ADMIN", "MEMBER"], "type": "string"}}
    assert schemas["department_id"] == {"type": "array", "items": {"type": "string", "format": "uuid"}}
    assert schemas["user_id"]["type"] == "string"

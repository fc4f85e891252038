"""The aggregate route, ``GET .../aggregate/{function}/{field}?group_by=...`` (SPEC §3, §5).

Every function on the demo's employee salaries and department budgets, with and without
grouping, against values computed here from the rows created; Decimal results as JSON
strings with the column's decimal places, the same on SQLite and PostgreSQL; filters,
tenancy, ``own`` and soft delete applied to what is counted; and 422s (never a database
error) for functions that make no sense for a field.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from django.db import connection
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import Company, CompanyDepartment, CompanyDepartmentTeam, Employee
from tests.helpers import OTHER_TENANT, TENANT, USER, auth
from tests.testapp.models import Ledger

READ_ANY = "business.companies.read.any"
READ_OWN = "business.companies.read.own"
CENT = Decimal("0.01")
FUNCTIONS = ["avg", "count", "max", "min", "sum"]

Params = Sequence[tuple[str, str]]

# -- helpers ------------------------------------------------------------------------------------------------------


def aggregate(
    client: TestClient, path: str, params: Params = (), headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    response = client.get(path, params=list(params), headers=auth() if headers is None else headers)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["values"]
    return response.json()["values"]


def money(value: Decimal | None) -> str | None:
    """How a Decimal(14, 2) result is rendered: a string with two decimal places."""
    return None if value is None else str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def expected_decimal(function: str, values: list[Decimal | None]) -> Any:
    """The aggregate of a nullable decimal column, as SQL computes it (NULLs ignored)."""
    known = [value for value in values if value is not None]
    if function == "count":
        return len(known)
    if not known:
        return None
    result = {
        "sum": lambda: sum(known, Decimal(0)),
        "avg": lambda: sum(known, Decimal(0)) / len(known),
        "min": lambda: min(known),
        "max": lambda: max(known),
    }[function]()
    return money(result)


def key_order(value: Any) -> Any:
    """Group order: ascending, NULLs last; UUIDs as the databases compare them."""
    if isinstance(value, uuid.UUID):
        value = value.hex
    return (value is None, value if value is not None else "")


def grouped(
    rows: Sequence[Any], keys: dict[str, Callable[[Any], Any]], value: Callable[[list[Any]], Any]
) -> list[dict[str, Any]]:
    """The expected ``values`` of a grouped aggregate: one entry per group, in group order."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        groups.setdefault(tuple(key(row) for key in keys.values()), []).append(row)
    ordered = sorted(groups, key=lambda group: [key_order(part) for part in group])
    return [
        {"value": value(groups[group]), **{name: _json(part) for name, part in zip(keys, group, strict=True)}}
        for group in ordered
    ]


def _json(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def single_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    return error


def assert_not_found(response: Any, code: str = "not_exist:company") -> None:
    assert response.status_code == 404, response.text
    assert response.json()["detail"]["code"] == code


# -- the demo's rows ----------------------------------------------------------------------------------------------


@dataclass
class Payroll:
    company: Company
    sales: CompanyDepartment
    support: CompanyDepartment
    research: CompanyDepartment
    employees: list[Employee]
    departments: list[CompanyDepartment]

    @property
    def employees_path(self) -> str:
        return f"/companies/{self.company.pk}/employees/aggregate"

    @property
    def departments_path(self) -> str:
        return f"/companies/{self.company.pk}/departments/aggregate"


def employee(
    company: Company,
    user_id: str,
    role: str,
    department: CompanyDepartment | None,
    salary: str | None,
    hired_at: datetime.date,
) -> Employee:
    return Employee.objects.create(
        company=company,
        user_id=user_id,
        type=role,
        department=department,
        salary=None if salary is None else Decimal(salary),
        hired_at=hired_at,
    )


def department(company: Company, name: str, budget: str, teams: int) -> CompanyDepartment:
    row = CompanyDepartment.objects.create(company=company, name=name, budget=Decimal(budget))
    for index in range(teams):
        CompanyDepartmentTeam.objects.create(department=row, name=f"{name} team {index}", size=index + 1)
    return row


@pytest.fixture
def payroll(db: None) -> Payroll:
    company = Company.objects.create(tenant_id=TENANT, name="Payroll")
    sales = department(company, "Sales", "1000.50", teams=2)
    support = department(company, "Support", "2500.25", teams=1)
    research = department(company, "Research", "0.10", teams=0)
    employees = [
        employee(company, "ann", "OWNER", sales, "52000.00", datetime.date(2019, 3, 1)),
        employee(company, "bob", "ADMIN", sales, "61000.50", datetime.date(2020, 6, 15)),
        employee(company, "cid", "MEMBER", support, "45000.25", datetime.date(2020, 1, 10)),
        employee(company, "dan", "MEMBER", None, "38000.10", datetime.date(2021, 9, 30)),
        employee(company, "eve", "MEMBER", support, None, datetime.date(2021, 2, 1)),
        employee(company, "fay", "MEMBER", research, "45000.26", datetime.date(2020, 11, 2)),
    ]
    # Rows that must never be counted: another company of the tenant, and another tenant's.
    for tenant in (TENANT, OTHER_TENANT):
        other = Company.objects.create(tenant_id=tenant, name=f"Other of {tenant}")
        other_department = department(other, "Sales", "77777.77", teams=3)
        employee(other, "zed", "MEMBER", other_department, "99999.99", datetime.date(2020, 1, 1))
    return Payroll(company, sales, support, research, employees, [sales, support, research])


# -- employees: salary --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_salary_without_grouping(client: TestClient, payroll: Payroll, function: str) -> None:
    values = aggregate(client, f"{payroll.employees_path}/{function}/salary")

    assert values == [{"value": expected_decimal(function, [e.salary for e in payroll.employees])}]


def test_salary_values_spelled_out(client: TestClient, payroll: Payroll) -> None:
    """The same numbers as above, written by hand: the expectations do not just mirror the code."""
    results = {f: aggregate(client, f"{payroll.employees_path}/{f}/salary")[0]["value"] for f in FUNCTIONS}

    assert results == {
        "sum": "241001.11",
        "avg": "48200.22",  # 241001.11 / 5 = 48200.222
        "min": "38000.10",
        "max": "61000.50",
        "count": 5,  # eve's salary is NULL
    }


GROUP_KEYS: dict[str, Callable[[Employee], Any]] = {
    "type": lambda e: e.type,
    "department_id": lambda e: e.department_id,
    "hired_at__year": lambda e: e.hired_at.year,
}


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("group_by", list(GROUP_KEYS))
def test_salary_grouped_by_one_key(client: TestClient, payroll: Payroll, function: str, group_by: str) -> None:
    values = aggregate(client, f"{payroll.employees_path}/{function}/salary", [("group_by", group_by)])

    assert values == grouped(
        payroll.employees,
        {group_by: GROUP_KEYS[group_by]},
        lambda rows: expected_decimal(function, [e.salary for e in rows]),
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_salary_grouped_by_two_keys(client: TestClient, payroll: Payroll, function: str) -> None:
    params = [("group_by", "type"), ("group_by", "hired_at__year")]

    values = aggregate(client, f"{payroll.employees_path}/{function}/salary", params)

    assert values == grouped(
        payroll.employees,
        {"type": GROUP_KEYS["type"], "hired_at__year": GROUP_KEYS["hired_at__year"]},
        lambda rows: expected_decimal(function, [e.salary for e in rows]),
    )


def test_grouped_sum_spelled_out(client: TestClient, payroll: Payroll) -> None:
    values = aggregate(client, f"{payroll.employees_path}/sum/salary", [("group_by", "type")])

    assert values == [
        {"value": "61000.50", "type": "ADMIN"},
        {"value": "128000.61", "type": "MEMBER"},
        {"value": "52000.00", "type": "OWNER"},
    ]


def test_group_by_department_puts_employees_without_one_last(client: TestClient, payroll: Payroll) -> None:
    values = aggregate(client, f"{payroll.employees_path}/count/id", [("group_by", "department_id")])

    assert values[-1] == {"value": 1, "department_id": None}
    assert sorted((v["department_id"], v["value"]) for v in values[:-1]) == sorted(
        [(str(payroll.sales.pk), 2), (str(payroll.support.pk), 2), (str(payroll.research.pk), 1)]
    )


def test_group_by_year_gives_integers(client: TestClient, payroll: Payroll) -> None:
    values = aggregate(client, f"{payroll.employees_path}/count/id", [("group_by", "hired_at__year")])

    assert values == [
        {"value": 1, "hired_at__year": 2019},
        {"value": 3, "hired_at__year": 2020},
        {"value": 2, "hired_at__year": 2021},
    ]


def test_group_by_order_of_keys_is_the_request_order(client: TestClient, payroll: Payroll) -> None:
    params = [("group_by", "hired_at__year"), ("group_by", "type")]

    values = aggregate(client, f"{payroll.employees_path}/count/id", params)

    assert [(v["hired_at__year"], v["type"]) for v in values] == [
        (2019, "OWNER"),
        (2020, "ADMIN"),
        (2020, "MEMBER"),
        (2021, "MEMBER"),
    ]
    assert list(values[0]) == ["value", "hired_at__year", "type"]


def test_repeated_group_by_key_groups_once(client: TestClient, payroll: Payroll) -> None:
    once = aggregate(client, f"{payroll.employees_path}/count/id", [("group_by", "type")])
    twice = aggregate(client, f"{payroll.employees_path}/count/id", [("group_by", "type"), ("group_by", "type")])

    assert twice == once


def test_count_of_id_counts_rows(client: TestClient, payroll: Payroll) -> None:
    assert aggregate(client, f"{payroll.employees_path}/count/id") == [{"value": 6}]
    assert aggregate(client, f"{payroll.employees_path}/count/id", [("group_by", "type")]) == [
        {"value": 1, "type": "ADMIN"},
        {"value": 4, "type": "MEMBER"},
        {"value": 1, "type": "OWNER"},
    ]


@pytest.mark.parametrize("function", ["sum", "avg", "min", "max"])
def test_id_only_counts(client: TestClient, payroll: Payroll, function: str) -> None:
    error = single_error(client.get(f"{payroll.employees_path}/{function}/id", headers=auth()))

    assert error["loc"] == ["path", "function"]
    assert aggregate(client, f"{payroll.employees_path}/count/id") == [{"value": 6}]


# -- Decimal rendering --------------------------------------------------------------------------------------------


def test_decimal_results_are_strings_with_the_columns_places(client: TestClient, db: None) -> None:
    company = Company.objects.create(tenant_id=TENANT, name="Round")
    for user, salary in (("a", "0.10"), ("b", "0.20"), ("c", "100.00")):
        employee(company, user, "MEMBER", None, salary, datetime.date(2020, 1, 1))
    path = f"/companies/{company.pk}/employees/aggregate"

    assert aggregate(client, f"{path}/sum/salary") == [{"value": "100.30"}]  # not 100.3, not 100.30000000000001
    assert aggregate(client, f"{path}/max/salary") == [{"value": "100.00"}]
    assert aggregate(client, f"{path}/min/salary") == [{"value": "0.10"}]
    assert aggregate(client, f"{path}/avg/salary") == [{"value": "33.43"}]  # 33.4333...


@pytest.mark.parametrize(
    ("salaries", "average"),
    [
        (["100.00", "100.00", "100.01"], "100.00"),  # 100.00333...
        (["0.01", "0.02", "0.02"], "0.02"),  # 0.01666...
        (["10.00", "10.01", "10.01"], "10.01"),  # 10.00666...
        (["0.01", "0.02"], "0.02"),  # 0.015: half, to the even cent
        (["1234567.89", "0.00", "0.00"], "411522.63"),
    ],
)
def test_average_is_rounded_to_the_columns_places(
    client: TestClient, db: None, salaries: list[str], average: str
) -> None:
    company = Company.objects.create(tenant_id=TENANT, name="Average")
    for index, salary in enumerate(salaries):
        employee(company, f"u{index}", "MEMBER", None, salary, datetime.date(2020, 1, 1))

    assert aggregate(client, f"/companies/{company.pk}/employees/aggregate/avg/salary") == [{"value": average}]


def test_large_sums_keep_every_cent(client: TestClient, db: None) -> None:
    """Eleven maximal salaries (14 digits each) add up to 16 significant digits.

    PostgreSQL's numeric keeps every cent. On SQLite a decimal column is a float and
    Django reads aggregates back with 15 significant digits, so the same request
    must not come back rounded to the next ten cents there.
    """
    company = Company.objects.create(tenant_id=TENANT, name="Rich")
    Employee.objects.bulk_create(
        Employee(
            company=company, user_id=f"u{n}", salary=Decimal("999999999999.99"), hired_at=datetime.date(2020, 1, 1)
        )
        for n in range(11)
    )

    assert aggregate(client, f"/companies/{company.pk}/employees/aggregate/sum/salary") == [
        {"value": "10999999999999.89"}
    ]


def test_a_group_of_only_null_salaries_sums_to_null(client: TestClient, db: None) -> None:
    company = Company.objects.create(tenant_id=TENANT, name="Unpaid")
    employee(company, "boss", "ADMIN", None, None, datetime.date(2020, 1, 1))
    employee(company, "worker", "MEMBER", None, "10.00", datetime.date(2020, 1, 1))
    path = f"/companies/{company.pk}/employees/aggregate"

    assert aggregate(client, f"{path}/sum/salary", [("group_by", "type")]) == [
        {"value": None, "type": "ADMIN"},
        {"value": "10.00", "type": "MEMBER"},
    ]
    assert aggregate(client, f"{path}/count/salary", [("group_by", "type")]) == [
        {"value": 0, "type": "ADMIN"},
        {"value": 1, "type": "MEMBER"},
    ]


def test_aggregate_of_no_rows_is_null_and_count_is_zero(client: TestClient, db: None) -> None:
    company = Company.objects.create(tenant_id=TENANT, name="Empty")
    path = f"/companies/{company.pk}/employees/aggregate"

    for function in ("sum", "avg", "min", "max"):
        assert aggregate(client, f"{path}/{function}/salary") == [{"value": None}]
    assert aggregate(client, f"{path}/count/salary") == [{"value": 0}]
    assert aggregate(client, f"{path}/count/id", [("group_by", "type")]) == []


# -- departments: budget and teams__count -------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_budget(client: TestClient, payroll: Payroll, function: str) -> None:
    values = aggregate(client, f"{payroll.departments_path}/{function}/budget")

    assert values == [{"value": expected_decimal(function, [d.budget for d in payroll.departments])}]


def test_budget_spelled_out(client: TestClient, payroll: Payroll) -> None:
    results = {f: aggregate(client, f"{payroll.departments_path}/{f}/budget")[0]["value"] for f in FUNCTIONS}

    assert results == {"sum": "3500.85", "avg": "1166.95", "min": "0.10", "max": "2500.25", "count": 3}


@pytest.mark.parametrize(
    ("function", "value"),
    [("sum", 3), ("count", 3), ("min", 0), ("max", 2), ("avg", 1.0)],
)
def test_teams_count(client: TestClient, payroll: Payroll, function: str, value: Any) -> None:
    """Sales has 2 teams, Support 1, Research none (a zero, not a NULL)."""
    assert aggregate(client, f"{payroll.departments_path}/{function}/teams__count") == [{"value": value}]


def test_teams_count_with_a_teams_count_filter(client: TestClient, payroll: Payroll) -> None:
    path = f"{payroll.departments_path}/sum/teams__count"

    assert aggregate(client, path, [("teams__count__gte", "1")]) == [{"value": 3}]
    assert aggregate(client, path, [("teams__count__lte", "1")]) == [{"value": 1}]


def test_budget_with_filters(client: TestClient, payroll: Payroll) -> None:
    path = f"{payroll.departments_path}/sum/budget"

    assert aggregate(client, path, [("budget__gte", "1000")]) == [{"value": "3500.75"}]
    assert aggregate(client, path, [("!name", "Support")]) == [{"value": "1000.60"}]
    assert aggregate(client, path, [("teams__count__lte", "0")]) == [{"value": "0.10"}]


def test_department_aggregate_has_no_grouping_and_refuses_one(client: TestClient, payroll: Payroll) -> None:
    """The departments route declares no ``aggregate_group_by``: a ``group_by`` must be a
    422 naming it, not silently ignored (which answers an ungrouped sum)."""
    path = f"{payroll.departments_path}/sum/budget"

    refused = client.get(path, params={"group_by": "name"}, headers=auth())

    assert single_error(refused)["loc"][:2] == ["query", "group_by"]
    assert aggregate(client, path) == [{"value": "3500.85"}]


# -- companies: count of id grouped by status ---------------------------------------------------------------------


@pytest.fixture
def statuses(db: None) -> None:
    created = datetime.datetime(2023, 6, 1, tzinfo=datetime.UTC)
    for name, status, year in [
        ("A", "active", 2023),
        ("B", "active", 2024),
        ("C", "active", 2024),
        ("D", "inactive", 2023),
        ("E", "deleted", 2024),
        ("F", "deleted", 2024),
    ]:
        Company.objects.create(tenant_id=TENANT, name=name, status=status, created_at=created.replace(year=year))
    Company.objects.create(tenant_id=OTHER_TENANT, name="X", status="active", created_at=created)
    Company.objects.create(tenant_id=OTHER_TENANT, name="Y", status="inactive", created_at=created)


def test_company_count_grouped_by_status(client: TestClient, statuses: None) -> None:
    values = aggregate(client, "/companies/aggregate/count/id", [("group_by", "status")])

    assert values == [{"value": 3, "status": "active"}, {"value": 1, "status": "inactive"}]


def test_company_count_grouped_by_status_and_year(client: TestClient, statuses: None) -> None:
    params = [("group_by", "status"), ("group_by", "created_at__year")]

    assert aggregate(client, "/companies/aggregate/count/id", params) == [
        {"value": 1, "status": "active", "created_at__year": 2023},
        {"value": 2, "status": "active", "created_at__year": 2024},
        {"value": 1, "status": "inactive", "created_at__year": 2023},
    ]


def test_soft_deleted_companies_count_only_when_asked_for(client: TestClient, statuses: None) -> None:
    path = "/companies/aggregate/count/id"

    assert aggregate(client, path) == [{"value": 4}]
    assert aggregate(client, path, [("status", "deleted")]) == [{"value": 2}]
    assert aggregate(client, path, [("status", "active"), ("status", "deleted"), ("group_by", "status")]) == [
        {"value": 3, "status": "active"},
        {"value": 2, "status": "deleted"},
    ]
    assert aggregate(client, path, [("!status", "active")]) == [{"value": 1}]


def test_another_tenants_companies_never_count(client: TestClient, statuses: None) -> None:
    mine = aggregate(client, "/companies/aggregate/count/id", [("group_by", "status")])
    theirs = aggregate(client, "/companies/aggregate/count/id", [("group_by", "status")], auth(tenant=OTHER_TENANT))

    assert mine == [{"value": 3, "status": "active"}, {"value": 1, "status": "inactive"}]
    assert theirs == [{"value": 1, "status": "active"}, {"value": 1, "status": "inactive"}]


def test_companies_departments_count(client: TestClient, payroll: Payroll) -> None:
    """Payroll has 3 departments, each "Other" company 1; the other tenant's is not counted."""
    assert aggregate(client, "/companies/aggregate/sum/departments__count") == [{"value": 4}]
    assert aggregate(client, "/companies/aggregate/max/departments__count") == [{"value": 3}]
    assert aggregate(client, "/companies/aggregate/count/id", [("departments__count__gte", "2")]) == [{"value": 1}]


def test_companies_departments_count_grouped_by_status(client: TestClient, db: None) -> None:
    for name, status, count in [("a", "active", 2), ("b", "active", 1), ("c", "inactive", 0), ("d", "inactive", 3)]:
        company = Company.objects.create(tenant_id=TENANT, name=name, status=status)
        for index in range(count):
            CompanyDepartment.objects.create(company=company, name=f"d{index}")
    path = "/companies/aggregate/{}/departments__count"

    assert aggregate(client, path.format("sum"), [("group_by", "status")]) == [
        {"value": 3, "status": "active"},
        {"value": 3, "status": "inactive"},
    ]
    assert aggregate(client, path.format("avg"), [("group_by", "status")]) == [
        {"value": 1.5, "status": "active"},
        {"value": 1.5, "status": "inactive"},
    ]
    assert aggregate(client, path.format("min"), [("group_by", "status"), ("departments__count__gte", "1")]) == [
        {"value": 1, "status": "active"},
        {"value": 3, "status": "inactive"},
    ]


def test_company_aggregate_filters_apply(client: TestClient, statuses: None) -> None:
    path = "/companies/aggregate/count/id"

    assert aggregate(client, path, [("created_at__year", "2024")]) == [{"value": 2}]
    assert aggregate(client, path, [("name__icontains", "a"), ("group_by", "status")]) == [
        {"value": 1, "status": "active"}
    ]


def test_own_caller_aggregates_only_their_companies(client: TestClient, db: None) -> None:
    mine = Company.objects.create(tenant_id=TENANT, name="Mine")
    administered = Company.objects.create(tenant_id=TENANT, name="Administered", status="inactive")
    theirs = Company.objects.create(tenant_id=TENANT, name="Theirs")
    employee(mine, USER, "OWNER", None, "1.00", datetime.date(2020, 1, 1))
    employee(administered, USER, "ADMIN", None, "1.00", datetime.date(2020, 1, 1))
    employee(theirs, USER, "MEMBER", None, "1.00", datetime.date(2020, 1, 1))
    path = "/companies/aggregate/count/id"

    own = aggregate(client, path, [("group_by", "status")], auth(scopes=[READ_OWN]))
    anyone = aggregate(client, path, [("group_by", "status")], auth(scopes=[READ_ANY]))

    assert own == [{"value": 1, "status": "active"}, {"value": 1, "status": "inactive"}]
    assert anyone == [{"value": 2, "status": "active"}, {"value": 1, "status": "inactive"}]


def test_own_caller_aggregates_employees_of_their_company_only(client: TestClient, payroll: Payroll) -> None:
    Employee.objects.filter(user_id="ann", company=payroll.company).update(user_id=USER)
    own = auth(scopes=[READ_OWN])
    path = f"{payroll.employees_path}/count/id"
    other = Company.objects.get(tenant_id=TENANT, name__startswith="Other")

    assert aggregate(client, path, [("group_by", "type")], own) == [
        {"value": 1, "type": "ADMIN"},
        {"value": 4, "type": "MEMBER"},
        {"value": 1, "type": "OWNER"},
    ]
    assert_not_found(client.get(f"/companies/{other.pk}/employees/aggregate/count/id", headers=own))
    assert aggregate(client, f"/companies/{other.pk}/employees/aggregate/count/id") == [{"value": 1}]


def test_employee_filters_apply_to_aggregates(client: TestClient, payroll: Payroll) -> None:
    path = f"{payroll.employees_path}/sum/salary"

    assert aggregate(client, path, [("type", "MEMBER")]) == [{"value": "128000.61"}]
    assert aggregate(client, path, [("department_id__isnull", "true")]) == [{"value": "38000.10"}]
    assert aggregate(client, path, [("department_id", str(payroll.sales.pk)), ("group_by", "type")]) == [
        {"value": "61000.50", "type": "ADMIN"},
        {"value": "52000.00", "type": "OWNER"},
    ]
    assert aggregate(client, path, [("hired_at__year", "2020"), ("!type", "ADMIN")]) == [{"value": "90000.51"}]


# -- 422: functions, fields, group_by -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        ("/companies/aggregate/median/id", ["path", "function"]),
        ("/companies/aggregate/SUM/id", ["path", "function"]),
        ("/companies/aggregate/count/name", ["path", "field"]),
        ("/companies/aggregate/count/tenant_id", ["path", "field"]),
        ("/companies/aggregate/sum/id", ["path", "function"]),
    ],
)
def test_unknown_function_or_field_is_a_422(client: TestClient, statuses: None, path: str, loc: list[str]) -> None:
    assert single_error(client.get(path, headers=auth()))["loc"] == loc
    assert aggregate(client, "/companies/aggregate/count/id") == [{"value": 4}]


@pytest.mark.parametrize("group_by", ["name", "salary", "created_at__month", "status__year", ""])
def test_unknown_group_by_is_a_422(client: TestClient, statuses: None, group_by: str) -> None:
    error = single_error(client.get("/companies/aggregate/count/id", params={"group_by": group_by}, headers=auth()))

    assert error["loc"][:2] == ["query", "group_by"]


def test_openapi_documents_functions_fields_and_group_by(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/companies/{company_id}/employees/aggregate/{function}/{field}"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    schemas = app.openapi()["components"]["schemas"]

    function_schema = parameters["function"]["schema"]
    if "$ref" in function_schema:
        function_schema = schemas[function_schema["$ref"].rsplit("/", 1)[-1]]
    function_enum = function_schema["enum"]
    assert function_enum == FUNCTIONS
    assert parameters["field"]["schema"]["enum"] == ["salary", "id"]
    assert parameters["group_by"]["schema"]["anyOf"][0]["items"]["enum"] == ["type", "department_id", "hired_at__year"]


# -- functions that make no sense for a field (a tree of our own) -------------------------------------------------


class StaffRow(BaseModel):
    id: uuid.UUID
    user_id: str
    type: str
    salary: Decimal | None
    hired_at: datetime.date


def staff_client() -> TestClient:
    tree = DjangoRouterSchema(
        name="staff",
        model=Employee,
        get=StaffRow,
        aggregate_fields=["salary", "hired_at", "type", "user_id", "id"],
        aggregate_group_by=["type"],
    )
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


class LedgerRow(BaseModel):
    id: int
    amount: Decimal


def test_decimals_wider_than_a_float_add_up_to_what_the_rows_read(shared_connection: None) -> None:
    """19-digit amounts: no float holds them, so the aggregate adds the rows as decimals.

    PostgreSQL keeps every digit and sums them exactly. SQLite stores such a decimal as a
    float (about 15 significant digits); the route then adds the values exactly as the
    ORM reads them back, so a sum always equals the sum of what the list shows. (Columns
    of up to 15 digits, like the demo's, are summed in SQL as exact scaled integers; the
    other tests of this module cover those.)
    """
    amounts = ["123456789012345.6789", "0.0001", "987654321098765.4321"]
    Ledger.objects.bulk_create(Ledger(tenant_id=TENANT, amount=Decimal(amount)) for amount in amounts)
    stored = list(Ledger.objects.values_list("amount", flat=True))
    tree = DjangoRouterSchema(name="ledger", model=Ledger, get=LedgerRow, aggregate_fields=["amount"])
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)

    with TestClient(app) as client:
        (total,) = aggregate(client, "/ledger/aggregate/sum/amount")
        (largest,) = aggregate(client, "/ledger/aggregate/max/amount")

    assert Decimal(total["value"]) == sum(stored, Decimal(0))
    assert Decimal(largest["value"]) == max(stored)
    if connection.vendor == "postgresql":
        assert total["value"] == "1111111110111111.1111"


#: (function, field): what the route must refuse, each with a 422 and never a database error
SENSELESS = [
    ("sum", "hired_at"),
    ("avg", "hired_at"),
    ("sum", "type"),
    ("avg", "type"),
    ("min", "type"),
    ("max", "type"),
    ("sum", "user_id"),
    ("avg", "user_id"),
    ("avg", "id"),
]


@pytest.mark.parametrize(("function", "field"), SENSELESS)
def test_a_function_that_makes_no_sense_for_the_field_is_a_422(
    payroll: Payroll, shared_connection: None, function: str, field: str
) -> None:
    client = staff_client()

    error = single_error(client.get(f"/staff/aggregate/{function}/{field}"))

    assert error["loc"] == ["path", "function"]
    assert function in error["msg"]
    assert field in error["msg"]


def test_the_functions_that_make_sense_for_a_date(payroll: Payroll, shared_connection: None) -> None:
    client = staff_client()
    hired = [e.hired_at for e in Employee.objects.all()]

    assert aggregate(client, "/staff/aggregate/min/hired_at", headers={}) == [{"value": str(min(hired))}]
    assert aggregate(client, "/staff/aggregate/max/hired_at", headers={}) == [{"value": str(max(hired))}]
    assert aggregate(client, "/staff/aggregate/count/hired_at", headers={}) == [{"value": len(hired)}]


def test_a_choice_field_can_be_counted_per_group(payroll: Payroll, shared_connection: None) -> None:
    client = staff_client()

    values = aggregate(client, "/staff/aggregate/count/type", [("group_by", "type")], headers={})

    # Payroll's four members, and one employee in each of the two other companies: no tenant filter here.
    assert values == [{"value": 1, "type": "ADMIN"}, {"value": 6, "type": "MEMBER"}, {"value": 1, "type": "OWNER"}]


# -- parents: missing, foreign, soft-deleted ----------------------------------------------------------------------


@pytest.mark.parametrize("route", ["employees/aggregate/sum/salary", "departments/aggregate/sum/budget"])
def test_aggregate_under_a_missing_or_hidden_parent_is_a_404(client: TestClient, payroll: Payroll, route: str) -> None:
    foreign = Company.objects.get(tenant_id=OTHER_TENANT)
    deleted = Company.objects.create(tenant_id=TENANT, name="Gone", status="deleted")

    for parent in (uuid.uuid4(), foreign.pk, deleted.pk):
        assert_not_found(client.get(f"/companies/{parent}/{route}", headers=auth()))
    assert client.get(f"/companies/{payroll.company.pk}/{route}", headers=auth()).status_code == 200
    assert client.get(f"/companies/{foreign.pk}/{route}", headers=auth(tenant=OTHER_TENANT)).status_code == 200


def test_aggregate_under_a_malformed_parent_id_is_a_422(client: TestClient, payroll: Payroll) -> None:
    response = client.get("/companies/not-a-uuid/employees/aggregate/count/id", headers=auth())

    assert single_error(response)["loc"] == ["path", "company_id"]

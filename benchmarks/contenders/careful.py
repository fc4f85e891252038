"""The careful engineer's database work, shared by the baseline and the django-bolt contender.

What someone who knows the Django ORM well writes by hand for these routes: rows read
with ``values()`` (no model instances), one query for the page and one per nested
list, grouped by the parent key in Python; a child list that proves its parent only
when the page comes back empty; a PATCH that is one ``UPDATE`` of the columns sent,
with the tenant check in its ``WHERE``; a create that answers from what it wrote. The
functions return JSON-ready plain dicts (ids and decimals as strings, times in ISO
8601 with ``Z``) — the testproject's response shapes, item order included: the
primary key breaks every tie, as djfapi's plans do — and raise ``NotFound`` for a 404.
The web layer (FastAPI in ``baseline``, django-bolt in ``bolt.api``) verifies the
token, parses the request, calls one of these in a worker thread and renders the
result, so two contenders built on them differ in their framework only.

Statements per request: W1 and W2 three (page, departments, cost centres), W3 two
(the page and its employees' skill ids; one more when the page is empty), W4 four in
a transaction (parent check, department, teams, and the change feed's outbox row: the
demo's ``djfapi.live`` records every ``save()`` of a department, in every contender's
process), W5 three without one (the
``UPDATE`` — which, like ``bulk_create``, sends no signal and so writes no outbox
row — then the department and its teams read back after it committed), W6 one.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import QuerySet, Sum

from benchmarks.contenders.common import Caller, visible_companies
from testproject.business.models import (
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
    EmployeeSkill,
)

MAX_LIMIT = 1000
SALARY_SCOPE = "business.companies.read.any"
EMPLOYEE_ORDER = frozenset({"user_id", "type", "hired_at", "salary", "id"})
EMPLOYEE_TYPES = frozenset(Employee.Type.values)
CENTS = Decimal("0.01")

_COMPANY_COLUMNS = ("id", "tenant_id", "name", "status", "is_verified", "created_at")
_EMPLOYEE_COLUMNS = ("id", "company_id", "user_id", "type", "department_id", "hired_at")


class NotFound(Exception):
    """The resource does not exist for this caller (a 404); the message says which."""


class Invalid(ValueError):
    """A request the route refuses (a 422); the message says why."""


def iso(value: datetime.datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def cents(value: Decimal) -> str:
    return str(value.quantize(CENTS))


def check_budget(value: Decimal) -> Decimal:
    """The column's limits (``ge=0, max_digits=14, decimal_places=2``), for layers without pydantic."""
    sign, digits, exponent = value.as_tuple()
    if not value.is_finite() or sign or not isinstance(exponent, int) or exponent < -2 or len(digits) > 14:
        raise Invalid("budget: a number of at most 14 digits, 2 after the point, not negative")
    return value


# -- companies -----------------------------------------------------------------------


def list_companies(caller: Caller, limit: int, offset: int) -> dict[str, Any]:
    rows = visible_companies(caller).order_by("name", "pk").values_list(*_COMPANY_COLUMNS)
    return {"items": _companies(rows[offset : offset + limit])}


def get_company(caller: Caller, company_id: UUID) -> dict[str, Any]:
    items = _companies(visible_companies(caller).filter(pk=company_id).values_list(*_COMPANY_COLUMNS))
    if not items:
        raise NotFound("company does not exist")
    return items[0]


def _companies(rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The companies of ``rows`` with their departments and cost centres: two more queries."""
    rows = list(rows)
    if not rows:
        return []
    ids = [row[0] for row in rows]
    departments: defaultdict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for company_id, pk, name, budget in (
        CompanyDepartment.objects.filter(company_id__in=ids)
        .order_by("pk")
        .values_list("company_id", "id", "name", "budget")
    ):
        departments[company_id].append({"id": str(pk), "name": name, "budget": str(budget)})
    costcenters: defaultdict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for company_id, pk, code, name in (
        CompanyCostcenter.objects.filter(company_id__in=ids)
        .order_by("pk")
        .values_list("company_id", "id", "code", "name")
    ):
        costcenters[company_id].append({"id": pk, "code": code, "name": name})
    return [
        {
            "id": str(pk),
            "tenant_id": tenant_id,
            "name": name,
            "status": status,
            "is_verified": is_verified,
            "created_at": iso(created_at),
            "departments": departments.get(pk, []),
            "costcenters": costcenters.get(pk, []),
        }
        for pk, tenant_id, name, status, is_verified, created_at in rows
    ]


def budget_sums(caller: Caller, group_by: Sequence[str]) -> dict[str, Any]:
    if list(group_by) != ["id"]:
        raise Invalid("only group_by=id is implemented")
    rows = visible_companies(caller).values("id").annotate(value=Sum("departments__budget")).order_by("id")
    return {
        "values": [
            {"value": cents(row["value"]) if row["value"] is not None else None, "id": str(row["id"])} for row in rows
        ]
    }


def _company(caller: Caller, company_id: UUID) -> QuerySet[Any]:
    """The company ``company_id`` if ``caller`` may see it (or change it, for a write scope)."""
    return visible_companies(caller).filter(pk=company_id)


# -- employees -----------------------------------------------------------------------


def list_employees(
    caller: Caller,
    company_id: UUID,
    types: Sequence[str],
    order_by: Sequence[str],
    limit: int,
    offset: int,
) -> dict[str, Any]:
    if any(term.lstrip("-") not in EMPLOYEE_ORDER for term in order_by):
        raise Invalid("order_by: unknown field")
    if any(kind not in EMPLOYEE_TYPES for kind in types):
        raise Invalid("type: unknown value")
    salary = caller.has(SALARY_SCOPE)
    columns = (*_EMPLOYEE_COLUMNS, "salary") if salary else _EMPLOYEE_COLUMNS
    rows = Employee.objects.filter(company_id=company_id, company_id__in=_company(caller, company_id).values("pk"))
    if types:
        rows = rows.filter(type__in=types)
    items = []
    page = list(rows.order_by(*order_by, "pk").values_list(*columns)[offset : offset + limit])
    skills = _skill_ids([row[0] for row in page])
    for row in page:
        pk, company, user_id, kind, department_id, hired_at = row[:6]
        item = {
            "id": str(pk),
            "company_id": str(company),
            "user_id": user_id,
            "type": kind,
            "department_id": str(department_id) if department_id is not None else None,
            "hired_at": hired_at.isoformat(),
            "skill_ids": skills.get(pk, []),
        }
        if salary:
            item["salary"] = str(row[6]) if row[6] is not None else None
        items.append(item)
    # An empty page: is the company missing (404) or are there no such employees?
    if not items and not _company(caller, company_id).exists():
        raise NotFound("company does not exist")
    return {"items": items}


def _skill_ids(employee_ids: Sequence[UUID]) -> dict[UUID, list[str]]:
    """The skills of each employee (many-to-many), from the through table alone: one query."""
    skills: defaultdict[UUID, list[str]] = defaultdict(list)
    if employee_ids:
        links = EmployeeSkill.objects.filter(employee_id__in=employee_ids).order_by("skill_id", "pk")
        for employee_id, skill_id in links.values_list("employee_id", "skill_id"):
            skills[employee_id].append(str(skill_id))
    return skills


# -- departments ---------------------------------------------------------------------


def create_department(
    caller: Caller, company_id: UUID, name: str, budget: Decimal, teams: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    with transaction.atomic():
        if not _company(caller, company_id).exists():
            raise NotFound("company does not exist")
        department = CompanyDepartment.objects.create(company_id=company_id, name=name, budget=budget)
        created = (
            CompanyDepartmentTeam.objects.bulk_create(
                CompanyDepartmentTeam(department=department, name=team, size=size) for team, size in teams
            )
            if teams
            else []
        )
    return {
        "id": str(department.pk),
        "company_id": str(company_id),
        "name": name,
        "budget": cents(budget),
        "teams": [
            {"id": str(team.pk), "name": team.name, "size": team.size} for team in sorted(created, key=_primary_key)
        ],
    }


def _primary_key(team: CompanyDepartmentTeam) -> UUID:
    return team.pk


def patch_department(caller: Caller, company_id: UUID, department_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Write the columns in ``changes`` (none: write nothing), then read the department back."""
    if any(value is None for value in changes.values()):
        raise Invalid("name and budget cannot be null")
    rows = CompanyDepartment.objects.filter(pk=department_id, company_id=company_id)
    if changes:
        updated = rows.filter(company_id__in=_company(caller, company_id).values("pk")).update(**changes)
        found = rows.values_list("name", "budget").first() if updated else None
    else:
        found = (
            rows.filter(company_id__in=_company(caller, company_id).values("pk")).values_list("name", "budget").first()
        )
    if found is None:
        raise NotFound("department does not exist")
    name, budget = found
    teams = CompanyDepartmentTeam.objects.filter(department_id=department_id).order_by("pk")
    return {
        "id": str(department_id),
        "company_id": str(company_id),
        "name": name,
        "budget": cents(budget),
        "teams": [
            {"id": str(pk), "name": team, "size": size} for pk, team, size in teams.values_list("id", "name", "size")
        ],
    }

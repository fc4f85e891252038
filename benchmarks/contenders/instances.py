"""The old baseline: the same API by hand on FastAPI and the Django ORM, with model instances.

Kept for comparison only (contender ``instances``, not in a default run): it reads
model instances with ``prefetch_related`` where the careful ``baseline`` reads
``values()``, and so it measures what building instances costs. Sync endpoints
wrapped in ``request_signalling``, plain dicts rendered in the worker thread, the
token verified with PyJWT in the event loop as djfapi does. It serves what the
testproject's schemas show — same keys, same values, same item order (the primary
key breaks every tie, as djfapi's plans do) — but only for the operations the
workloads use.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import pydantic
from django.db import connection, transaction
from django.db.models import Prefetch, QuerySet, Sum
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from benchmarks.contenders.common import READ, WRITE, Caller, InvalidToken, admit, verify, visible_companies
from djfapi.utils.fastapi_django import request_signalling
from testproject.business.models import CompanyCostcenter, CompanyDepartment, CompanyDepartmentTeam, Employee

MAX_LIMIT = 1000
SALARY_SCOPE = "business.companies.read.any"
EMPLOYEE_ORDER = frozenset({"user_id", "type", "hired_at", "salary", "id"})
CENTS = Decimal("0.01")


def _caller(accepted: tuple[str, ...]) -> Callable[[Request], Coroutine[Any, Any, Caller]]:
    async def dependency(request: Request) -> Caller:
        try:
            claims = verify(request.headers.get("authorization"))
        except InvalidToken:
            raise HTTPException(401, "invalid token") from None
        caller = admit(claims, accepted)
        if caller is None:
            raise HTTPException(403, "required scope missing")
        return caller

    return dependency


Reader = Annotated[Caller, Depends(_caller(READ))]
Writer = Annotated[Caller, Depends(_caller(WRITE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]

app = FastAPI(title="baseline with model instances")


def create() -> FastAPI:
    return app


# -- rendering -----------------------------------------------------------------------


def _iso(value: datetime.datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _company(company: Any) -> dict[str, Any]:
    return {
        "id": str(company.id),
        "tenant_id": company.tenant_id,
        "name": company.name,
        "status": company.status,
        "is_verified": company.is_verified,
        "created_at": _iso(company.created_at),
        "departments": [{"id": str(d.id), "name": d.name, "budget": str(d.budget)} for d in company.departments.all()],
        "costcenters": [{"id": c.id, "code": c.code, "name": c.name} for c in company.costcenters.all()],
    }


def _department(department: CompanyDepartment, teams: Any) -> dict[str, Any]:
    return {
        "id": str(department.id),
        "company_id": str(department.company_id),
        "name": department.name,
        "budget": str(Decimal(department.budget).quantize(CENTS)),
        "teams": [{"id": str(t.id), "name": t.name, "size": t.size} for t in teams],
    }


def _employee(employee: Employee, salary: bool) -> dict[str, Any]:
    item = {
        "id": str(employee.id),
        "company_id": str(employee.company_id),
        "user_id": employee.user_id,
        "type": employee.type,
        "department_id": str(employee.department_id) if employee.department_id is not None else None,
        "hired_at": employee.hired_at.isoformat(),
        "skill_ids": [str(skill.pk) for skill in employee.skills.all()],
    }
    if salary:
        item["salary"] = str(employee.salary) if employee.salary is not None else None
    return item


def _companies(caller: Caller) -> QuerySet[Any]:
    return visible_companies(caller).prefetch_related(
        Prefetch("departments", queryset=CompanyDepartment.objects.order_by("pk")),
        Prefetch("costcenters", queryset=CompanyCostcenter.objects.order_by("pk")),
    )


def _require_company(caller: Caller, company_id: UUID) -> None:
    if not visible_companies(caller).filter(pk=company_id).exists():
        raise HTTPException(404, "company does not exist")


# -- companies -----------------------------------------------------------------------


@app.get("/companies")
@request_signalling
def list_companies(caller: Reader, limit: Limit = 100, offset: Offset = 0) -> JSONResponse:
    rows = _companies(caller).order_by("name", "pk")[offset : offset + limit]
    return JSONResponse({"items": [_company(company) for company in rows]})


@app.get("/companies/aggregate/sum/departments__budget")
@request_signalling
def sum_budgets(caller: Reader, group_by: Annotated[list[str], Query()]) -> JSONResponse:
    if group_by != ["id"]:
        raise HTTPException(422, "only group_by=id is implemented")
    rows = visible_companies(caller).values("id").annotate(value=Sum("departments__budget")).order_by("id")
    values = [
        {"value": str(row["value"].quantize(CENTS)) if row["value"] is not None else None, "id": str(row["id"])}
        for row in rows
    ]
    return JSONResponse({"values": values})


@app.get("/companies/{company_id}")
@request_signalling
def get_company(caller: Reader, company_id: UUID) -> JSONResponse:
    company = _companies(caller).filter(pk=company_id).first()
    if company is None:
        raise HTTPException(404, "company does not exist")
    return JSONResponse(_company(company))


# -- employees -----------------------------------------------------------------------


@app.get("/companies/{company_id}/employees")
@request_signalling
def list_employees(
    caller: Reader,
    company_id: UUID,
    type: Annotated[list[Employee.Type] | None, Query()] = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    terms = order_by or []
    if any(term.lstrip("-") not in EMPLOYEE_ORDER for term in terms):
        raise HTTPException(422, "order_by: unknown field")
    _require_company(caller, company_id)
    rows = Employee.objects.filter(company_id=company_id).prefetch_related("skills")
    if type:
        rows = rows.filter(type__in=type)
    rows = rows.order_by(*terms, "pk")[offset : offset + limit]
    salary = caller.has(SALARY_SCOPE)
    return JSONResponse({"items": [_employee(employee, salary) for employee in rows]})


# -- departments ---------------------------------------------------------------------


class TeamIn(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=1, max_length=200)
    size: int = pydantic.Field(0, ge=0, le=100_000)


class DepartmentIn(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=1, max_length=200)
    budget: Decimal = pydantic.Field(Decimal("0"), ge=0, max_digits=14, decimal_places=2)
    teams: list[TeamIn] = pydantic.Field(default_factory=list)


class DepartmentPatch(pydantic.BaseModel):
    name: str | None = pydantic.Field(None, min_length=1, max_length=200)
    budget: Decimal | None = pydantic.Field(None, ge=0, max_digits=14, decimal_places=2)


@app.post("/companies/{company_id}/departments", status_code=201)
@request_signalling
def create_department(caller: Writer, company_id: UUID, body: DepartmentIn) -> JSONResponse:
    with transaction.atomic():
        _require_company(caller, company_id)
        department = CompanyDepartment.objects.create(company_id=company_id, name=body.name, budget=body.budget)
        teams = CompanyDepartmentTeam.objects.bulk_create(
            CompanyDepartmentTeam(department=department, name=team.name, size=team.size) for team in body.teams
        )
    return JSONResponse(_department(department, sorted(teams, key=lambda team: team.pk)), status_code=201)


@app.patch("/companies/{company_id}/departments/{department_id}")
@request_signalling
def patch_department(caller: Writer, company_id: UUID, department_id: UUID, body: DepartmentPatch) -> JSONResponse:
    changes = body.model_dump(exclude_unset=True)
    if any(value is None for value in changes.values()):
        raise HTTPException(422, "name and budget cannot be null")
    with transaction.atomic():
        rows = CompanyDepartment.objects.filter(
            pk=department_id, company__in=visible_companies(caller).filter(pk=company_id)
        )
        if connection.features.has_select_for_update:
            rows = rows.select_for_update(of=("self",))
        department = rows.first()
        if department is None:
            raise HTTPException(404, "department does not exist")
        for name, value in changes.items():
            setattr(department, name, value)
        if changes:
            department.save(update_fields=list(changes))
    teams = CompanyDepartmentTeam.objects.filter(department=department).order_by("pk")
    return JSONResponse(_department(department, teams))

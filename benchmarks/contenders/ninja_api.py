"""The django-ninja contender, written the way a ninja user writes an API.

A ``NinjaAPI`` with ``ModelSchema``s (a company nests its departments and cost
centres), sync views returning ORM objects, the user's own ``prefetch_related``, a
pagination class answering ``{"items": [...]}`` without a COUNT (djfapi's shape and
work), ``PatchDict`` for partial updates, and an ``HttpBearer`` checking the same JWT
as djfapi. It runs in Django's ASGI handler under uvicorn (URL conf
``benchmarks.contenders.ninja_api``). Every benchmark token holds ``read.any``, so
salaries are always shown here (djfapi and DRF hide them from ``own`` readers).

Unlike the rest of the suite this module does not postpone annotations
(``from __future__ import annotations``): ninja resolves the annotations of views
wrapped by ``@paginate``, and of ``PatchDict`` schemas, in its own modules' namespaces,
where ``UUID`` or ``Decimal`` are not defined, and fails on the first request.
"""

import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import Prefetch, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.urls import path
from ninja import Field, ModelSchema, NinjaAPI, PatchDict, Query, Schema
from ninja.errors import HttpError
from ninja.pagination import PaginationBase, paginate
from ninja.responses import Status
from ninja.security import HttpBearer

from benchmarks.contenders.common import READ, WRITE, Caller, InvalidToken, admit, decode, visible_companies
from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)

EMPLOYEE_ORDER = frozenset({"user_id", "type", "hired_at", "salary", "id"})
CENTS = Decimal("0.01")


def _cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENTS)


class JWTBearer(HttpBearer):
    def authenticate(self, request: Any, token: str) -> dict[str, Any] | None:
        try:
            return decode(token)
        except InvalidToken:
            return None


def _caller(request: Any, accepted: tuple[str, ...]) -> Caller:
    caller = admit(request.auth, accepted)
    if caller is None:
        raise HttpError(403, "required scope missing")
    return caller


class ItemsPagination(PaginationBase):
    class Input(Schema):
        limit: int = Field(100, ge=1, le=1000)
        offset: int = Field(0, ge=0)

    class Output(Schema):
        items: list[Any]

    def paginate_queryset(self, queryset: QuerySet[Any], pagination: Input, request: Any, **params: Any) -> Any:
        return {"items": queryset[pagination.offset : pagination.offset + pagination.limit]}


# -- schemas ---------------------------------------------------------------------------


class TeamOut(ModelSchema):
    class Meta:
        model = CompanyDepartmentTeam
        fields = ["id", "name", "size"]


class DepartmentSummaryOut(ModelSchema):
    class Meta:
        model = CompanyDepartment
        fields = ["id", "name", "budget"]


class CostcenterOut(ModelSchema):
    class Meta:
        model = CompanyCostcenter
        fields = ["id", "code", "name"]


class CompanyOut(ModelSchema):
    departments: list[DepartmentSummaryOut]
    costcenters: list[CostcenterOut]

    class Meta:
        model = Company
        fields = ["id", "tenant_id", "name", "status", "is_verified", "created_at"]


class DepartmentOut(Schema):
    id: UUID
    company_id: UUID
    name: str
    budget: Decimal
    teams: list[TeamOut]

    @staticmethod
    def resolve_teams(department: CompanyDepartment) -> Any:
        return department.teams.order_by("pk")


class EmployeeOut(Schema):
    id: UUID
    company_id: UUID
    user_id: str
    type: str
    department_id: UUID | None
    salary: Decimal | None
    hired_at: datetime.date
    skill_ids: list[UUID]

    @staticmethod
    def resolve_skill_ids(employee: Employee) -> list[UUID]:
        return [skill.pk for skill in employee.skills.all()]


class TeamIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    size: int = Field(0, ge=0, le=100_000)


class DepartmentIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    budget: Decimal = Field(Decimal("0"), ge=0, max_digits=14, decimal_places=2)
    teams: list[TeamIn] = []


class DepartmentChange(Schema):
    name: str = Field(min_length=1, max_length=200)
    budget: Decimal = Field(ge=0, max_digits=14, decimal_places=2)


class BudgetSum(Schema):
    value: Decimal | None
    id: UUID


class BudgetSums(Schema):
    values: list[BudgetSum]


# -- routes ----------------------------------------------------------------------------

api = NinjaAPI(title="ninja contender", auth=JWTBearer(), urls_namespace="bench-ninja")


def _companies(caller: Caller) -> QuerySet[Company]:
    return visible_companies(caller).prefetch_related(
        Prefetch("departments", queryset=CompanyDepartment.objects.order_by("pk")),
        Prefetch("costcenters", queryset=CompanyCostcenter.objects.order_by("pk")),
    )


@api.get("/companies", response=list[CompanyOut])
@paginate(ItemsPagination)
def list_companies(request: Any) -> QuerySet[Company]:
    return _companies(_caller(request, READ)).order_by("name", "pk")


@api.get("/companies/aggregate/sum/departments__budget", response=BudgetSums)
def budget_sums(request: Any, group_by: Query[list[str]]) -> dict[str, Any]:
    if group_by != ["id"]:
        raise HttpError(422, "only group_by=id is supported")
    rows = visible_companies(_caller(request, READ)).values("id").annotate(value=Sum("departments__budget"))
    # two decimal places, like the column (SQLite's sums come back without them)
    return {"values": [{**row, "value": _cents(row["value"])} for row in rows.order_by("id")]}


@api.get("/companies/{uuid:company_id}", response=CompanyOut)
def get_company(request: Any, company_id: UUID) -> Company:
    return get_object_or_404(_companies(_caller(request, READ)), pk=company_id)


@api.get("/companies/{uuid:company_id}/employees", response=list[EmployeeOut])
@paginate(ItemsPagination)
def list_employees(
    request: Any,
    company_id: UUID,
    type: Query[list[Employee.Type] | None] = None,
    order_by: Query[list[str] | None] = None,
) -> QuerySet[Employee]:
    terms = order_by or []
    if any(term.lstrip("-") not in EMPLOYEE_ORDER for term in terms):
        raise HttpError(422, "order_by: unknown field")
    company = get_object_or_404(visible_companies(_caller(request, READ)), pk=company_id)
    rows = Employee.objects.filter(company=company).prefetch_related("skills")
    if type:
        rows = rows.filter(type__in=type)
    return rows.order_by(*terms, "pk")


@api.post("/companies/{uuid:company_id}/departments", response={201: DepartmentOut})
def create_department(request: Any, company_id: UUID, payload: DepartmentIn) -> Status[CompanyDepartment]:
    company = get_object_or_404(visible_companies(_caller(request, WRITE)), pk=company_id)
    with transaction.atomic():
        department = CompanyDepartment.objects.create(company=company, name=payload.name, budget=payload.budget)
        CompanyDepartmentTeam.objects.bulk_create(
            CompanyDepartmentTeam(department=department, name=team.name, size=team.size) for team in payload.teams
        )
    return Status(201, department)


@api.patch("/companies/{uuid:company_id}/departments/{uuid:department_id}", response=DepartmentOut)
def patch_department(
    request: Any, company_id: UUID, department_id: UUID, payload: PatchDict[DepartmentChange]
) -> CompanyDepartment:
    changes = dict(payload)  # only the fields sent
    company = get_object_or_404(visible_companies(_caller(request, WRITE)), pk=company_id)
    department = get_object_or_404(CompanyDepartment, pk=department_id, company=company)
    for name, value in changes.items():
        setattr(department, name, value)
    if changes:
        department.save(update_fields=list(changes))
    return department


urlpatterns = [path("", api.urls)]


def create() -> Any:
    """Django's ASGI application (Django is set up by the caller)."""
    from django.core.asgi import get_asgi_application

    return get_asgi_application()

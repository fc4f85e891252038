"""The django-bolt contender's API: the workloads' routes as ``BoltAPI`` handlers.

Imported only by bolt's ``runbolt`` in the contender's own virtualenv (Python ≥ 3.12).
Written as bolt's documentation advises: ``async def`` handlers, typed path and query
parameters, request bodies as ``msgspec.Struct``s with the testproject's limits,
plain dicts returned for bolt to encode with msgspec, and the JWT checked by bolt's
own ``JWTAuthentication`` in Rust before Python runs (same key, algorithm, issuer,
``exp`` and no leeway; the handler then requires ``sub`` as djfapi does and admits
the caller by scope). The database work is ``benchmarks.contenders.careful``, the
baseline's own, called in one hop through ``sync_to_async``: bolt sends that to its
bounded ORM thread pool (one thread on SQLite, four otherwise), whose threads keep
their connections and age and health-check them as ``CONN_MAX_AGE`` and
``CONN_HEALTH_CHECKS`` say.

With ``BENCH_COUNT_QUERIES`` set (the untimed checks) each response carries the SQL
statements its database work ran, in the suite's headers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
from asgiref.sync import sync_to_async
from django.conf import settings
from django_bolt import BoltAPI
from django_bolt.auth import IsAuthenticated, JWTAuthentication
from django_bolt.exceptions import HTTPException
from django_bolt.param_functions import Query
from django_bolt.responses import JSON

from benchmarks.contenders import careful
from benchmarks.contenders.common import READ, WRITE, Caller, admit

COUNTING = os.environ.get("BENCH_COUNT_QUERIES", "").strip().lower() not in {"", "0", "false", "no"}

if COUNTING:
    from benchmarks.instrument import counted, install, statement_headers

    install()

_config = settings.DJFAPI
AUTH = [
    JWTAuthentication(
        secret=_config["JWT_KEY"],
        algorithms=list(_config["JWT_ALGORITHMS"]),
        issuer=_config.get("JWT_ISSUER"),
        leeway=int(_config.get("JWT_LEEWAY", 0)),
    )
]
GUARDS = [IsAuthenticated()]

api = BoltAPI()

Limit = Annotated[int, Query(ge=1, le=careful.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


def _caller(request: Any, accepted: tuple[str, ...]) -> Caller:
    claims = request.context.get("auth_claims") or {}
    if "sub" not in claims:
        raise HTTPException(401, "invalid token")
    caller = admit(claims, accepted)
    if caller is None:
        raise HTTPException(403, "required scope missing")
    return caller


async def _answer(work: Callable[..., Any], *args: Any, status: int = 200) -> Any:
    """Run ``work(*args)`` on bolt's ORM pool, its errors as HTTP errors."""
    try:
        if COUNTING:
            content, counts = await sync_to_async(counted)(work, *args)
            return JSON(content, status_code=status, headers=statement_headers(counts))
        content = await sync_to_async(work)(*args)
    except careful.NotFound as error:
        raise HTTPException(404, str(error)) from None
    except careful.Invalid as error:
        raise HTTPException(422, str(error)) from None
    return content if status == 200 else JSON(content, status_code=status)


@api.get("/companies", auth=AUTH, guards=GUARDS)
async def list_companies(request: Any, limit: Limit = 100, offset: Offset = 0) -> Any:
    return await _answer(careful.list_companies, _caller(request, READ), limit, offset)


@api.get("/companies/aggregate/sum/departments__budget", auth=AUTH, guards=GUARDS)
async def sum_budgets(request: Any, group_by: Annotated[list[str], Query()]) -> Any:
    return await _answer(careful.budget_sums, _caller(request, READ), group_by)


@api.get("/companies/{company_id}", auth=AUTH, guards=GUARDS)
async def get_company(request: Any, company_id: UUID) -> Any:
    return await _answer(careful.get_company, _caller(request, READ), company_id)


@api.get("/companies/{company_id}/employees", auth=AUTH, guards=GUARDS)
async def list_employees(
    request: Any,
    company_id: UUID,
    type: Annotated[list[str] | None, Query()] = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    caller = _caller(request, READ)
    return await _answer(careful.list_employees, caller, company_id, type or [], order_by or [], limit, offset)


class TeamIn(msgspec.Struct):
    name: Name
    size: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0


class DepartmentIn(msgspec.Struct):
    name: Name
    budget: Decimal = Decimal("0")
    teams: list[TeamIn] = []


class DepartmentPatch(msgspec.Struct):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    budget: Decimal | msgspec.UnsetType = msgspec.UNSET


@api.post("/companies/{company_id}/departments", auth=AUTH, guards=GUARDS, status_code=201)
async def create_department(request: Any, company_id: UUID, body: DepartmentIn) -> Any:
    caller = _caller(request, WRITE)
    try:
        budget = careful.check_budget(body.budget)
    except careful.Invalid as error:
        raise HTTPException(422, str(error)) from None
    teams = [(team.name, team.size) for team in body.teams]
    return await _answer(careful.create_department, caller, company_id, body.name, budget, teams, status=201)


@api.patch("/companies/{company_id}/departments/{department_id}", auth=AUTH, guards=GUARDS)
async def patch_department(request: Any, company_id: UUID, department_id: UUID, body: DepartmentPatch) -> Any:
    caller = _caller(request, WRITE)
    changes = {name: getattr(body, name) for name in body.__struct_fields__ if getattr(body, name) is not msgspec.UNSET}
    try:
        if "budget" in changes:
            careful.check_budget(changes["budget"])
    except careful.Invalid as error:
        raise HTTPException(422, str(error)) from None
    return await _answer(careful.patch_department, caller, company_id, department_id, changes)

"""The baseline: the same API written by hand, carefully, on FastAPI and the Django ORM.

The practical limit a generator is measured against, and the reference of every
ratio. Sync endpoints (FastAPI runs them in its thread pool) between Django's
request signals, so that persistent connections are aged and health-checked as in
any Django deployment; the database work of ``benchmarks.contenders.careful``
(``values()`` rows, one query per nested list, a one-statement PATCH, plain dicts);
request bodies validated by pydantic models with the testproject's limits; the token
verified with PyJWT in the event loop, as djfapi does; JSON rendered by Starlette's
``JSONResponse``. Only the operations the workloads use are served.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any, ParamSpec, TypeVar
from uuid import UUID

import pydantic
from django.core.signals import request_finished, request_started
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from benchmarks.contenders import careful
from benchmarks.contenders.common import READ, WRITE, Caller, InvalidToken, admit, verify

P = ParamSpec("P")
R = TypeVar("R")


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


def _django_request(func: Callable[P, R]) -> Callable[P, R]:
    """Run a sync endpoint between Django's request signals, with ``careful``'s errors as HTTP errors."""

    @functools.wraps(func)
    def endpoint(*args: P.args, **kwargs: P.kwargs) -> R:
        request_started.send(sender=endpoint)
        try:
            return func(*args, **kwargs)
        except careful.NotFound as error:
            raise HTTPException(404, str(error)) from None
        except careful.Invalid as error:
            raise HTTPException(422, str(error)) from None
        finally:
            request_finished.send(sender=endpoint)

    return endpoint


Reader = Annotated[Caller, Depends(_caller(READ))]
Writer = Annotated[Caller, Depends(_caller(WRITE))]
Limit = Annotated[int, Query(ge=1, le=careful.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]

app = FastAPI(title="baseline")


def create() -> FastAPI:
    return app


@app.get("/companies")
@_django_request
def list_companies(caller: Reader, limit: Limit = 100, offset: Offset = 0) -> JSONResponse:
    return JSONResponse(careful.list_companies(caller, limit, offset))


@app.get("/companies/aggregate/sum/departments__budget")
@_django_request
def sum_budgets(caller: Reader, group_by: Annotated[list[str], Query()]) -> JSONResponse:
    return JSONResponse(careful.budget_sums(caller, group_by))


@app.get("/companies/{company_id}")
@_django_request
def get_company(caller: Reader, company_id: UUID) -> JSONResponse:
    return JSONResponse(careful.get_company(caller, company_id))


@app.get("/companies/{company_id}/employees")
@_django_request
def list_employees(
    caller: Reader,
    company_id: UUID,
    type: Annotated[list[str] | None, Query()] = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    return JSONResponse(careful.list_employees(caller, company_id, type or [], order_by or [], limit, offset))


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
@_django_request
def create_department(caller: Writer, company_id: UUID, body: DepartmentIn) -> JSONResponse:
    teams = [(team.name, team.size) for team in body.teams]
    content = careful.create_department(caller, company_id, body.name, body.budget, teams)
    return JSONResponse(content, status_code=201)


@app.patch("/companies/{company_id}/departments/{department_id}")
@_django_request
def patch_department(caller: Writer, company_id: UUID, department_id: UUID, body: DepartmentPatch) -> JSONResponse:
    changes = body.model_dump(exclude_unset=True)
    return JSONResponse(careful.patch_department(caller, company_id, department_id, changes))

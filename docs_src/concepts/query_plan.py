from uuid import UUID

from fastapi import FastAPI

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.orm.plan import QueryPlan
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken
from testproject.business import models


def team_count(department: models.CompanyDepartment) -> int:
    return len(department.teams.all())  # served by the prefetch added below: no query per row


class Department(BaseModel):
    id: UUID
    name: str
    team_count: int = Field(orm_method=team_count)  # djfapi cannot see what a function reads


class Company(BaseModel):
    id: UUID
    name: str


def with_teams(derived: QueryPlan) -> QueryPlan:
    return derived.merged(QueryPlan(prefetch_related=("teams",)))


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    delete=False,
    security=JWTToken(),
    security_scopes=SecurityScopes(get=["business.companies.read.any"]),
    children=[
        DjangoRouterSchema(
            name="departments", model=models.CompanyDepartment, get=Department, delete=False, query_plan=with_teams
        ),
    ],
)

app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

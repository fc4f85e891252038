import datetime
from decimal import Decimal
from uuid import UUID

from django.db.models import Exists, OuterRef, Q
from fastapi import FastAPI

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from testproject.business import models


class Team(BaseModel):
    id: UUID
    name: str
    size: int


class Department(BaseModel):
    id: UUID
    name: str
    budget: Decimal  # a JSON string: no precision lost
    teams: list[Team]  # a reverse relation, read through one prefetch per page


class Company(BaseModel):
    id: UUID
    name: str
    status: models.Company.Status
    is_verified: bool
    departments: list[Department]


class CompanyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    is_verified: bool = Field(False, is_critical=True)  # only with `crt: true` in the token


class CompanyUpdate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class DepartmentWrite(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    budget: Decimal = Field(Decimal("0"), ge=0, max_digits=14, decimal_places=2)


class TeamWrite(BaseModel):
    name: str
    size: int = Field(0, ge=0)


class Employee(BaseModel):
    id: UUID
    user_id: str
    type: models.Employee.Type
    salary: Decimal | None = Field(None, scopes=["business.companies.read.any"])  # hidden from `own` readers
    hired_at: datetime.date


def company_objects_filter(access: Access | None) -> Q:
    q = Q(tenant_id=access.tenant_id)
    if access.scope is None or access.scope.selector != "any":
        owners = models.Employee.objects.filter(
            company=OuterRef("pk"), user_id=access.user_id, type__in=["OWNER", "ADMIN"]
        )
        q &= Q(Exists(owners))
    return q


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    create=CompanyCreate,
    update=CompanyUpdate,
    delete_status=models.Company.Status.DELETED,
    security=JWTToken(),  # key, algorithms and issuer from settings.DJFAPI
    security_scopes=SecurityScopes(
        get=["business.companies.read.any", "business.companies.read.own"],
        post=["business.companies.create"],
        patch=["business.companies.update.any", "business.companies.update.own"],
        delete=["business.companies.delete.any", "business.companies.delete.own"],
    ),
    objects_filter=company_objects_filter,
    pagination_options={"default_limit": 100, "max_limit": 1000, "default_order_by": ["name"]},
    children=[
        DjangoRouterSchema(
            name="departments",
            model=models.CompanyDepartment,
            get=Department,
            create=DepartmentWrite,
            update=DepartmentWrite,
            children=[
                DjangoRouterSchema(
                    name="teams", model=models.CompanyDepartmentTeam, get=Team, create=TeamWrite, update=TeamWrite
                ),
            ],
        ),
        DjangoRouterSchema(name="employees", model=models.Employee, get=Employee, delete=False),
    ],
)

app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

from decimal import Decimal
from uuid import UUID

import djfapi
from djfapi import BaseModel, Field
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken
from testproject.business import models


class Department(BaseModel):
    id: UUID
    name: str
    budget: Decimal  # a JSON string: no precision lost


class Company(BaseModel):
    id: UUID
    name: str
    departments: list[Department]  # a reverse relation, read through one prefetch per page


class CompanyWrite(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class DepartmentWrite(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    budget: Decimal = Field(Decimal("0"), ge=0, max_digits=14, decimal_places=2)


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,  # it has a tenant_id: every route filters on the token's tenant
    get=Company,
    create=CompanyWrite,
    update=CompanyWrite,
    security=JWTToken(),  # key, algorithms and issuer from settings.DJFAPI
    security_scopes=SecurityScopes(
        get=["business.companies.read.any"],
        post=["business.companies.create"],
        patch=["business.companies.update.any"],
        delete=["business.companies.delete.any"],
    ),
    children=[
        DjangoRouterSchema(name="departments", model=models.CompanyDepartment, get=Department, create=DepartmentWrite),
    ],
)

# Django set up (if it is not yet), error bodies, /health, request ids, offline /docs:
app = djfapi.create_app(companies)

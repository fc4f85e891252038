from decimal import Decimal
from uuid import UUID

from fastapi import FastAPI

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken
from testproject.business import models


class Company(BaseModel):
    id: UUID
    name: str


class Department(BaseModel):
    id: UUID
    name: str
    budget: Decimal


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    delete=False,
    security=JWTToken(),
    security_scopes=SecurityScopes(get=["business.companies.read.any"]),
    # Offsets up to 1,000: deeper pages are a 422 pointing to filters or a cursor.
    pagination_options={"default_order_by": ["name"], "max_offset": 1000},
    children=[
        DjangoRouterSchema(
            name="departments",
            model=models.CompanyDepartment,
            get=Department,
            delete=False,
            pagination_options={"default_order_by": ["-budget"]},
            # A company has a handful of departments: sorting them needs no index.
            silenced_checks=["djfapi.W110"],
        ),
    ],
)

app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

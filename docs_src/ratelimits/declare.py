from uuid import UUID

from fastapi import FastAPI

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.ratelimit import RateLimit
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken
from testproject.business import models


class Company(BaseModel):
    id: UUID
    name: str


class CompanyWrite(BaseModel):
    name: str


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    create=CompanyWrite,
    delete=False,
    security=JWTToken(),
    security_scopes=SecurityScopes(get=["business.companies.read.any"], post=["business.companies.create"]),
    rate_limits={
        "get": "100/minute",  # list, get and aggregate: one budget per token subject
        "post": [RateLimit("10/minute", key="tenant"), RateLimit("200/day", key="tenant")],
    },
)

app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

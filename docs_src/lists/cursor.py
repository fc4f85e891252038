import datetime
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
    created_at: datetime.datetime


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    delete=False,
    security=JWTToken(),
    security_scopes=SecurityScopes(get=["business.companies.read.any"]),
    pagination_options={"cursor": True, "default_limit": 20, "default_order_by": ["-created_at"]},
)

app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

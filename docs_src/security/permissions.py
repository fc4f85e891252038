from uuid import UUID

from fastapi import FastAPI

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTTokenDjangoPermissions
from testproject.business import models


class Company(BaseModel):
    id: UUID
    name: str


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    delete=False,
    # `sub` is the primary key of a Django user; their permissions are the granted scopes.
    security=JWTTokenDjangoPermissions(),
    security_scopes=SecurityScopes(get=["business.companies.read.any"]),
)

app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

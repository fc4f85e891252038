from uuid import UUID

from django.db.models import Q
from fastapi import FastAPI

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from testproject.business import models


class Company(BaseModel):
    id: UUID
    name: str


class CompanyWrite(BaseModel):
    name: str


def listed(access: Access | None) -> Q:
    """Anonymous callers (access is None): verified companies; token holders: their tenant's."""
    if access is None:
        return Q(is_verified=True)
    return Q(tenant_id=access.tenant_id)


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    update=CompanyWrite,
    delete=False,
    # The `rls` claim grants scopes too: a token with "rls": ["editor"] may update.
    security=JWTToken(role_scopes={"editor": ["business.companies.update.any"]}),
    security_scopes=SecurityScopes(get=["business.companies.read.any"], patch=["business.companies.update.any"]),
    public=["get"],  # list and get need no token; PATCH and PUT still need their scopes
    objects_filter=listed,
)

app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

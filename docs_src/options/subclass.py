"""A node that hides inactive companies from every route, by overriding objects_filter."""

from uuid import UUID

from django.db.models import Q

from djfapi import BaseModel
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from testproject.business import models


class Company(BaseModel):
    id: UUID
    name: str
    status: str


class ActiveCompanies(DjangoRouterSchema):
    def objects_filter(self, access: Access | None) -> Q:
        # super(): the tenant (and, with an owner_field and an `own` scope, the caller's rows)
        return super().objects_filter(access) & Q(status="active")


companies = ActiveCompanies(
    name="companies",
    model=models.Company,
    get=Company,
    delete=False,
    security=JWTToken(),
    security_scopes=SecurityScopes(get=["business.companies.read.any"]),
)

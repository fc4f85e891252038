from uuid import UUID

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
    is_verified: bool


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    delete=False,
    security=JWTToken(),
    security_scopes=SecurityScopes(get=["business.companies.read.any"]),
)


@companies.endpoint("/verify", methods=["POST"], scopes=["business.companies.update.any"], response_model=Company)
def verify(obj: models.Company, access: Access) -> models.Company:
    obj.is_verified = True
    obj.save(update_fields=["is_verified"])
    return obj


@companies.endpoint("/names", methods=["GET"], detail=False)
def names(access: Access, prefix: str = "") -> list[str]:
    rows = models.Company.objects.filter(tenant_id=access.tenant_id, name__startswith=prefix)
    return list(rows.order_by("name").values_list("name", flat=True))


app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

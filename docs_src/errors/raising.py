from typing import Annotated

from fastapi import FastAPI, Security

from djfapi.errors import Conflict, NotFound, install_error_handlers
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from djfapi.utils.fastapi_django import request_signalling
from testproject.business.models import Company

app = FastAPI()
install_error_handlers(app)  # once per app: every error gets the same body
Writer = Annotated[Access, Security(JWTToken(), scopes=["business.companies.update.any"])]


@app.post("/claims/{name}")
@request_signalling
def claim(name: str, access: Writer) -> dict[str, str]:
    company = Company.objects.filter(tenant_id=access.tenant_id, name=name).first()
    if company is None:
        raise NotFound(f"No company is called {name!r}.", code="not_exist:company")
    if company.is_verified:
        raise Conflict("This company is verified and cannot be claimed.", code="company_verified")
    return {"claimed": str(company.pk)}

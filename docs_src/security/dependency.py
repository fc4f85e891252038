from typing import Annotated

from fastapi import FastAPI, Security

from djfapi.errors import install_error_handlers
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken

app = FastAPI()
install_error_handlers(app)

Reader = Annotated[Access, Security(JWTToken(), scopes=["business.companies.read.any", "business.companies.read.own"])]


@app.get("/whoami")
def whoami(access: Reader) -> dict[str, str | bool | None]:
    return {
        "user": access.user_id,
        "tenant": access.tenant_id,
        "selector": access.scope.selector if access.scope else None,  # of the first scope above the caller holds
        "may_create": access.has_scope("business.companies.create"),
    }

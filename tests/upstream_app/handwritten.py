# Hand-written routes as a real upstream project wrote them next to its router tree.
from typing import List

from fastapi import APIRouter, Body, Depends, Security

from djfapi.exceptions import AccessError
from djfapi.schemas import Access, Error, Pagination  # was: from djdantic.schemas import Access, Error
from djfapi.security.jwt import JWTToken
from djfapi.utils.fastapi import depends_pagination
from djfapi.utils.fastapi_django import request_signalling
from djfapi.utils.pydantic_django import TransferAction, transfer_from_orm, transfer_to_orm  # was: djdantic.utils...

from . import models
from .schemas import request, response

router = APIRouter()

service_token = JWTToken(name="Authorization", scheme_name="Service Token", auto_error=True, algorithm="ES512")
optional_token = JWTToken(scheme_name="Optional Token", auto_error=False)


def _get_companies_filtered(access: Access, pagination: Pagination) -> List[models.Company]:  # noqa: UP006
    objects = models.Company.objects.filter(tenant_id=access.tenant_id)
    return list(pagination.query(objects))


def _get_company(access: Access, company_id: str) -> models.Company:
    return models.Company.objects.get(id=company_id, tenant_id=access.tenant_id)


@router.get("", response_model=response.CompaniesList)
@request_signalling
def get_companies(
    access: Access = Security(service_token, scopes=["business.companies.read.any"]),
    pagination: Pagination = Depends(depends_pagination(max_limit=50, default_order_by=["name"])),
):
    companies = _get_companies_filtered(access, pagination)
    return response.CompaniesList(
        companies=[transfer_from_orm(response.Company, company) for company in companies],
    )


@router.patch("/{company_id}/name", response_model=response.Company)
@request_signalling
def rename_company(
    company_id: str,
    access: Access = Security(service_token, scopes=["business.companies.update.any"]),
    body: request.CompanyRename = Body(...),
):
    company = _get_company(access, company_id)
    if company.name == "Locked":
        raise AccessError(detail=Error(code="company_locked", message="This company cannot be renamed."))

    transfer_to_orm(body, company, action=TransferAction.SYNC, exclude_unset=True, access=access)
    return response.Company.from_orm(company)


@router.get("/whoami")
def whoami(access: Access = Security(optional_token)):
    return {"user_id": access.user_id if access else None}

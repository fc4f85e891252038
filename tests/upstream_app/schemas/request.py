from decimal import Decimal
from typing import List, Optional
from uuid import UUID

from djfapi import BaseModel, Field  # was: from djdantic import BaseModel, Field

from .. import models


class CompanyCostcenterCreate(BaseModel):
    code: str = Field(orm_field=models.CompanyCostcenter.code, max_length=32)
    name: str = Field(orm_field=models.CompanyCostcenter.name, max_length=200)


class CompanyCostcenterUpdate(CompanyCostcenterCreate):
    pass


class CompanyCostcenterItem(CompanyCostcenterCreate):
    id: Optional[int] = Field(None, orm_field=models.CompanyCostcenter.id)  # noqa: UP045


class CompanyCreate(BaseModel):
    name: str = Field(orm_field=models.Company.name, max_length=200)
    costcenters: List[CompanyCostcenterItem] = Field([], orm_field=models.Company.costcenters)  # noqa: UP006


class CompanyUpdate(BaseModel):
    name: str = Field(orm_field=models.Company.name, max_length=200)
    status: str = Field("active", orm_field=models.Company.status, max_length=16)
    costcenters: List[CompanyCostcenterItem] = Field([], orm_field=models.Company.costcenters)  # noqa: UP006


class CompanyDepartmentTeamCreate(BaseModel):
    name: str = Field(orm_field=models.CompanyDepartmentTeam.name, max_length=200)
    size: int = Field(0, orm_field=models.CompanyDepartmentTeam.size, ge=0)


class CompanyDepartmentTeamUpdate(CompanyDepartmentTeamCreate):
    pass


class CompanyDepartmentCreate(BaseModel):
    name: str = Field(orm_field=models.CompanyDepartment.name, max_length=200)
    budget: Decimal = Field(Decimal("0"), orm_field=models.CompanyDepartment.budget, max_digits=14, decimal_places=2)


class CompanyDepartmentUpdate(CompanyDepartmentCreate):
    pass


class CompanyRename(BaseModel):
    name: str = Field(orm_field=models.Company.name, max_length=200)


class CompanyVerify(BaseModel):
    company_id: UUID

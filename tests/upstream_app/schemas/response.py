from datetime import datetime
from decimal import Decimal
from typing import List
from uuid import UUID

from djfapi import BaseModel, Field  # was: from djdantic import BaseModel, Field

from .. import models


class CompanyDepartmentTeam(BaseModel):
    id: UUID = Field(orm_field=models.CompanyDepartmentTeam.id)
    name: str = Field(orm_field=models.CompanyDepartmentTeam.name)
    size: int = Field(orm_field=models.CompanyDepartmentTeam.size)


class CompanyDepartment(BaseModel):
    id: UUID = Field(orm_field=models.CompanyDepartment.id)
    name: str = Field(orm_field=models.CompanyDepartment.name)
    budget: Decimal = Field(orm_field=models.CompanyDepartment.budget)
    teams: List[CompanyDepartmentTeam] = Field(orm_field=models.CompanyDepartment.teams)  # noqa: UP006


class CompanyCostcenter(BaseModel):
    id: int = Field(orm_field=models.CompanyCostcenter.id)
    code: str = Field(orm_field=models.CompanyCostcenter.code)
    name: str = Field(orm_field=models.CompanyCostcenter.name)


class Company(BaseModel):
    id: UUID = Field(orm_field=models.Company.id)
    name: str = Field(orm_field=models.Company.name)
    status: str = Field(orm_field=models.Company.status)
    created_at: datetime = Field(orm_field=models.Company.created_at)
    costcenters: List[CompanyCostcenter] = Field(orm_field=models.Company.costcenters)  # noqa: UP006


class CompaniesList(BaseModel):
    companies: List[Company]  # noqa: UP006

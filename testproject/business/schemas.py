"""The demo's API schemas: what callers read (``response``) and send (``request``).

Read schemas nest related rows (a company with its departments and cost centres);
djfapi derives the joins and prefetches from them. Field options carry the security
rules: an employee's salary is readable only with ``read.any`` and writable only with
``update.any``; a company's ``is_verified`` only with a critical token.
"""

from __future__ import annotations

import datetime
import enum
from decimal import Decimal
from uuid import UUID

from djfapi import BaseModel, Field
from testproject.business.models import Company as CompanyModel
from testproject.business.models import Employee as EmployeeModel

READ_ANY = "business.companies.read.any"
UPDATE_ANY = "business.companies.update.any"

Money = Decimal


# -- responses -----------------------------------------------------------------------


class Team(BaseModel):
    id: UUID
    name: str
    size: int


class Department(BaseModel):
    id: UUID
    company_id: UUID
    name: str
    budget: Money
    teams: list[Team]


class DepartmentSummary(BaseModel):
    id: UUID
    name: str
    budget: Money


class Costcenter(BaseModel):
    id: int
    code: str
    name: str


class Skill(BaseModel):
    id: UUID
    name: str


class Employee(BaseModel):
    id: UUID
    company_id: UUID
    user_id: str
    type: EmployeeModel.Type
    department_id: UUID | None
    salary: Money | None = Field(None, scopes=[READ_ANY])
    hired_at: datetime.date
    skill_ids: list[UUID] = Field(orm_field="skills", description="The employee's skills (many-to-many)")


class Company(BaseModel):
    id: UUID
    tenant_id: str
    name: str
    status: CompanyModel.Status
    is_verified: bool
    created_at: datetime.datetime
    departments: list[DepartmentSummary]
    costcenters: list[Costcenter]


class CompanyListing(BaseModel):
    """A company as the public directory shows it (no token needed)."""

    id: UUID
    name: str


# -- requests ------------------------------------------------------------------------


class WritableStatus(enum.StrEnum):
    """Statuses a client may set; ``deleted`` is reached only through DELETE."""

    active = "active"
    inactive = "inactive"


class CostcenterWrite(BaseModel):
    id: int | None = Field(None, description="Set to update that cost centre; omit to create one")
    code: str = Field(min_length=1, max_length=32, is_sync_matching_field=True)
    name: str = Field(min_length=1, max_length=200)


class CompanyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    status: WritableStatus = WritableStatus.active
    is_verified: bool = Field(False, is_critical=True)
    costcenters: list[CostcenterWrite] = Field(default_factory=list, max_length=100)


class CompanyUpdate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    status: WritableStatus
    is_verified: bool = Field(False, is_critical=True)
    costcenters: list[CostcenterWrite] = Field(default_factory=list, max_length=100)


class TeamWrite(BaseModel):
    id: UUID | None = Field(None, description="Set to update that team; omit to create one")
    name: str = Field(min_length=1, max_length=200)
    size: int = Field(0, ge=0, le=100_000)


class DepartmentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    budget: Money = Field(Decimal("0"), ge=0, max_digits=14, decimal_places=2)
    teams: list[TeamWrite] = Field(default_factory=list, max_length=100)


class DepartmentUpdate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    budget: Money = Field(ge=0, max_digits=14, decimal_places=2)
    teams: list[TeamWrite] = Field(default_factory=list, max_length=100)


class TeamCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    size: int = Field(0, ge=0, le=100_000)


class CostcenterCreate(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)


class SkillCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)


SKILL_IDS = "Skills of the employee's company; sent, the list is the new set (left out: unchanged)"


class EmployeeCreate(BaseModel):
    user_id: str = Field(min_length=1, max_length=64)
    type: EmployeeModel.Type = EmployeeModel.Type.MEMBER
    department_id: UUID | None = None
    salary: Money | None = Field(None, ge=0, max_digits=14, decimal_places=2, scopes=[UPDATE_ANY])
    hired_at: datetime.date
    skill_ids: list[UUID] = Field(default_factory=list, orm_field="skills", max_length=100, description=SKILL_IDS)


class EmployeeUpdate(BaseModel):
    type: EmployeeModel.Type
    department_id: UUID | None = None
    salary: Money | None = Field(None, ge=0, max_digits=14, decimal_places=2, scopes=[UPDATE_ANY])
    hired_at: datetime.date
    skill_ids: list[UUID] = Field(default_factory=list, orm_field="skills", max_length=100, description=SKILL_IDS)

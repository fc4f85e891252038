"""Rows of the demo domain, created straight through the ORM for the API tests.

Every helper takes the few values a test cares about and fills in the rest, so a test
reads as "a company of tenant A with a department" rather than a list of columns.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)
from tests.helpers import TENANT, USER


def make_company(tenant: str = TENANT, name: str = "Acme", **fields: object) -> Company:
    return Company.objects.create(tenant_id=tenant, name=name, **fields)


def make_department(company: Company, name: str = "Research", budget: str = "1000.00") -> CompanyDepartment:
    return CompanyDepartment.objects.create(company=company, name=name, budget=Decimal(budget))


def make_team(department: CompanyDepartment, name: str = "Platform", size: int = 3) -> CompanyDepartmentTeam:
    return CompanyDepartmentTeam.objects.create(department=department, name=name, size=size)


def make_costcenter(company: Company, code: str = "CC-1", name: str = "Operations") -> CompanyCostcenter:
    return CompanyCostcenter.objects.create(company=company, code=code, name=name)


def make_employee(
    company: Company,
    user_id: str = USER,
    role: str = Employee.Type.MEMBER,
    salary: str | None = "50000.00",
    department: CompanyDepartment | None = None,
) -> Employee:
    return Employee.objects.create(
        company=company,
        user_id=user_id,
        type=role,
        salary=None if salary is None else Decimal(salary),
        department=department,
        hired_at=datetime.date(2020, 1, 15),
    )

from decimal import Decimal

from djfapi import BaseModel, Field
from testproject.business import models


def display_name(employee: models.Employee) -> str:
    return f"{employee.user_id} ({employee.get_type_display()})"


class Team(BaseModel):
    name: str
    size: int


class Department(BaseModel):
    title: str = Field(orm_field=models.CompanyDepartment.name)  # a descriptor
    budget: Decimal
    teams: list[Team]  # a reverse relation: the department's teams


class EmployeeCard(BaseModel):
    user_id: str
    company_name: str = Field(orm_field="company.name")  # through a foreign key
    department: Department | None  # a foreign key, read as a nested object
    display_name: str = Field(orm_method=display_name)  # a function of the instance
    salary: Decimal | None = Field(None, scopes=["business.companies.read.any"])


def employee_card(employee: models.Employee) -> EmployeeCard:
    return EmployeeCard.model_validate(employee)

"""The README's ``models`` module: the demo's models under the names the README uses."""

from types import SimpleNamespace

from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment, CompanyDepartmentTeam
from testproject.business.models import Employee as _Employee

Employee = SimpleNamespace(EmployeeType=_Employee.Type, objects=_Employee.objects)

__all__ = ["Company", "CompanyCostcenter", "CompanyDepartment", "CompanyDepartmentTeam", "Employee"]

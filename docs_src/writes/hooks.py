import datetime
from uuid import UUID

from fastapi import FastAPI

from djfapi import BaseModel
from djfapi.errors import ValidationFailed, install_error_handlers
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.routing.hooks import WriteEvent
from djfapi.security.jwt import JWTToken
from testproject.business import models


class Employee(BaseModel):
    id: UUID
    user_id: str
    type: models.Employee.Type
    hired_at: datetime.date


class EmployeeCreate(BaseModel):
    user_id: str
    type: models.Employee.Type = models.Employee.Type.MEMBER
    hired_at: datetime.date


class EmployeeUpdate(BaseModel):
    type: models.Employee.Type
    hired_at: datetime.date


class Company(BaseModel):
    id: UUID
    name: str


employees = DjangoRouterSchema(
    name="employees", model=models.Employee, get=Employee, create=EmployeeCreate, update=EmployeeUpdate
)

companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    delete=False,
    security=JWTToken(),
    security_scopes=SecurityScopes(get=["business.companies.read.any"], patch=["business.companies.update.any"]),
    children=[employees],
)


@employees.hook("before_update")
def no_demotion_of_the_last_owner(event: WriteEvent) -> None:
    employee = event.instance
    if event.previous["type"] == "OWNER" and employee.type != "OWNER":
        owners = models.Employee.objects.filter(company_id=employee.company_id, type="OWNER")
        if not owners.exclude(pk=employee.pk).exists():
            raise ValidationFailed("a company keeps at least one owner", loc=("body", "type"))


app = FastAPI()
install_error_handlers(app)
app.include_router(companies.router)

import datetime
from uuid import UUID

from djfapi import BaseModel
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.index_advice import advise
from testproject.business import models


class Company(BaseModel):
    id: UUID
    name: str
    status: str
    created_at: datetime.datetime


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=Company,
    pagination_options={"cursor": True, "default_order_by": ["-created_at"]},
    filter_fields=["status"],
)

# What `manage.py check` says about this node, one line per index it lacks:
for advice in advise(companies):
    print(advice.check_id, advice.index)

import datetime
from uuid import UUID

from django.db import models
from django.db.models import F
from django.db.models.functions import Upper

from djfapi import BaseModel
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.index_advice import advise
from testproject.business import models as demo


class Company(BaseModel):
    id: UUID
    name: str
    created_at: datetime.datetime


companies = DjangoRouterSchema(
    name="companies",
    model=demo.Company,
    get=Company,
    filter_fields=["name"],  # a text column: ?name__icontains=... is offered
    pagination_options={"default_order_by": ["-created_at"]},  # newest first
)

# What `manage.py check` says about it on PostgreSQL (the advice is PostgreSQL's only):
for advice in advise(companies, vendor="postgresql"):
    if advice.check_id == "djfapi.W116":
        print(advice.check_id, advice.index)


# What to declare, in place of the default order's index (W110's):
class SubstringIndexed(models.Model):
    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField()

    class Meta:
        abstract = True  # here only to show the Meta; in your app, your model's own Meta
        indexes = [
            models.Index(
                F("tenant_id"), F("created_at").desc(), F("id"), Upper("name"), name="company_tenant_id_c_50caeb_idx"
            ),
        ]

import datetime
from uuid import UUID

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models
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
    filter_fields=["name"],  # so ?name__icontains=... is offered
)

# What `manage.py check` says about it on PostgreSQL (the advice is PostgreSQL's only):
for advice in advise(companies, vendor="postgresql"):
    if advice.check_id == "djfapi.W115":
        print(advice.check_id, advice.index)


# What to add: the index in the model's Meta (INSTALLED_APPS needs "django.contrib.postgres") ...
class TrigramIndexed(models.Model):
    name = models.CharField(max_length=200)

    class Meta:
        abstract = True  # here only to show the Meta; in your app, your model's own Meta
        indexes = [GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="company_name_trgm_idx")]


# ... and, in the migration `makemigrations` writes for it, the extension before the index,
# and after it the statistics the planner needs to judge a pattern (see "Give the planner the statistics").
class Migration(migrations.Migration):
    dependencies = [("business", "0004_skill_index")]
    operations = [
        TrigramExtension(),  # CREATE EXTENSION IF NOT EXISTS pg_trgm
        migrations.AddIndex(
            model_name="company",
            index=GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="company_name_trgm_idx"),
        ),
        migrations.RunSQL(
            "ALTER INDEX company_name_trgm_idx ALTER COLUMN 1 SET STATISTICS 1000",
            reverse_sql=migrations.RunSQL.noop,  # dropping the index takes its statistics along
        ),
    ]

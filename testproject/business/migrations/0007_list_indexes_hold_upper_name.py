"""The list indexes hold UPPER(name) after their columns (the index advisor's djfapi.W116).

On PostgreSQL, ``?name__icontains=`` is ``UPPER("name") LIKE UPPER('%...%')``; a page of a
common substring walks the list's index and tests each name it passes. With UPPER(name)
in the index, the test reads it from the index entry instead of computing it. Each new
index is added before the one it replaces is dropped, so a list is never without one.
"""

from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Upper


class Migration(migrations.Migration):
    dependencies = [
        ("business", "0006_list_indexes_hold_status"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="company",
            index=models.Index(
                F("tenant_id"), F("name"), F("id"), F("status"), Upper("name"), name="company_tenant_id_n_169624_idx"
            ),
        ),
        migrations.RemoveIndex(model_name="company", name="company_tenant_id_n_a74c79_idx"),
        migrations.AddIndex(
            model_name="company",
            index=models.Index(
                F("is_verified"), F("status"), F("name"), F("id"), Upper("name"), name="company_is_verified_7157b7_idx"
            ),
        ),
        migrations.RemoveIndex(model_name="company", name="company_is_verified_efba83_idx"),
    ]

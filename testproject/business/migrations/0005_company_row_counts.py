"""Companies counted per tenant and status: ?total=true and the count-by-status aggregate
add up a few counter rows instead of reading every company of the tenant (docs/scaling.md)."""

from django.db import migrations

import djfapi.counts


class Migration(migrations.Migration):
    dependencies = [
        ("business", "0004_skill_index"),
    ]

    operations = [
        djfapi.counts.CreateRowCount(model_name="company", fields=["tenant_id", "status"]),
    ]

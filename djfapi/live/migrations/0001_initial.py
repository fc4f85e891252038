from __future__ import annotations

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="ChangeEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "model",
                    models.CharField(
                        help_text="The changed model's label_lower, e.g. business.company", max_length=100
                    ),
                ),
                ("object_id", models.CharField(max_length=255)),
                (
                    "action",
                    models.CharField(
                        choices=[("INSERT", "Insert"), ("UPDATE", "Update"), ("DELETE", "Delete")], max_length=6
                    ),
                ),
                ("tenant_id", models.CharField(blank=True, max_length=255, null=True)),
                ("refs", models.JSONField(blank=True, default=dict)),
            ],
            options={
                "verbose_name": "change event",
                "indexes": [models.Index(fields=["model", "id"], name="djfapi_live_model_id")],
            },
        ),
        migrations.CreateModel(
            name="PruneMark",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("pruned_through", models.BigIntegerField(default=0)),
            ],
            options={"verbose_name": "prune mark"},
        ),
    ]

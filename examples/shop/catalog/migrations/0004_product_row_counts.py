"""Products counted per shop and stock state: /shops/{shop_id}/products?total=true (and
?in_stock=...&total=true) add up a few counter rows instead of reading every product of
the shop (djfapi.counts; docs/scaling.md)."""

from django.db import migrations

import djfapi.counts


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_tag_index"),
    ]

    operations = [
        djfapi.counts.CreateRowCount(model_name="product", fields=["shop", "in_stock"]),
    ]

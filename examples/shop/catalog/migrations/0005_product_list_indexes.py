"""The indexes the advisor asks for the products list once it declares its filters: the
order's index holding UPPER(name) (djfapi.W116, in place of (shop, id)), and one per filter
(W111). The new order index is added before the one it replaces is dropped."""

from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Upper


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_product_row_counts"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="product",
            index=models.Index(F("shop"), F("id"), Upper("name"), name="product_shop_id_uname_idx"),
        ),
        migrations.RemoveIndex(model_name="product", name="product_shop_id_idx"),
        migrations.AddIndex(
            model_name="product", index=models.Index(fields=["shop", "name"], name="product_shop_name_idx")
        ),
        migrations.AddIndex(
            model_name="product", index=models.Index(fields=["shop", "price"], name="product_shop_price_idx")
        ),
        migrations.AddIndex(
            model_name="product", index=models.Index(fields=["shop", "in_stock"], name="product_shop_in_stock_idx")
        ),
    ]

"""Shops sell products; customers review them. Three levels, one tenant column."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper


class Shop(models.Model):
    # The API fills both from the caller's token: `ten` and `sub`. No body can set them.
    tenant_id = models.CharField(max_length=64, db_index=True)
    owner_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)

    class Meta:
        # What djfapi's index advisor (manage.py check) asks for: a list reads one
        # tenant's (one parent's) rows in its order, so the index leads with that column.
        indexes = [models.Index(fields=["tenant_id", "id"], name="shop_tenant_id_id_idx")]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A label a shop puts on its products ("organic", "vegan"): many products, many tags."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)

    class Meta:
        indexes = [models.Index(fields=["shop", "id"], name="tag_shop_id_idx")]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    in_stock = models.BooleanField(default=True)
    tags = models.ManyToManyField(Tag, related_name="products", blank=True)

    class Meta:
        # What the index advisor asks for the products list (catalog/api.py): its order (the shop's
        # products by id) holding UPPER(name), which ?name__icontains= tests on PostgreSQL (W116), and the
        # shop's products by each declared filter (W111).
        indexes = [
            models.Index(F("shop"), F("id"), Upper("name"), name="product_shop_id_uname_idx"),
            models.Index(fields=["shop", "name"], name="product_shop_name_idx"),
            models.Index(fields=["shop", "price"], name="product_shop_price_idx"),
            models.Index(fields=["shop", "in_stock"], name="product_shop_in_stock_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    author_id = models.CharField(max_length=64, db_index=True)  # the token's `sub`, like Shop.owner_id
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    text = models.TextField(blank=True, default="")

    class Meta:
        # Reviews list best first (order_by=-rating, then id): the index reads a page in that order.
        indexes = [models.Index(fields=["product", "-rating", "id"], name="review_product_rating_id_idx")]

    def __str__(self) -> str:
        return f"{self.rating}/5 by {self.author_id}"

"""Shops sell products; customers review them. Three levels, one tenant column."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Shop(models.Model):
    # The API fills both from the caller's token: `ten` and `sub`. No body can set them.
    tenant_id = models.CharField(max_length=64, db_index=True)
    owner_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A label a shop puts on its products ("organic", "vegan"): many products, many tags."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    in_stock = models.BooleanField(default=True)
    tags = models.ManyToManyField(Tag, related_name="products", blank=True)

    def __str__(self) -> str:
        return self.name


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    author_id = models.CharField(max_length=64, db_index=True)  # the token's `sub`, like Shop.owner_id
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    text = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"{self.rating}/5 by {self.author_id}"

"""What the API shows (read schemas) and what it accepts (write schemas).

Read schemas name the model's fields; a `list[...]` of a nested schema reads a reverse
relation (a shop's `products`). Write schemas list exactly what a client may send: a
field they do not declare is a 422, and `tenant_id`, `owner_id`, `author_id` and the
parent's foreign key are never among them (they come from the token and the URL).
"""

from decimal import Decimal

from djfapi import BaseModel, Field

# -- read ----------------------------------------------------------------------------


class Review(BaseModel):
    id: int
    author_id: str
    rating: int
    text: str


class Tag(BaseModel):
    id: int
    name: str


class Product(BaseModel):
    id: int
    name: str
    price: Decimal  # a JSON string ("4.50"): no precision lost
    in_stock: bool
    tag_ids: list[int] = Field(orm_field="tags")  # many-to-many, read as the tags' ids


class Shop(BaseModel):
    id: int
    owner_id: str
    name: str
    products: list[Product]  # the shop's products, read with one prefetch per page


# -- write ---------------------------------------------------------------------------


class ProductWrite(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    price: Decimal = Field(ge=0, max_digits=10, decimal_places=2)
    in_stock: bool = True
    # the shop's tags; sent, the list is the new set; left out of a PUT or PATCH, unchanged
    tag_ids: list[int] = Field([], orm_field="tags", max_length=20)


class TagWrite(BaseModel):
    name: str = Field(min_length=1, max_length=50)


class ProductItem(ProductWrite):
    """A product inside a shop's body: with an id it updates that product, without one it is new."""

    id: int | None = None


class ShopWrite(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    products: list[ProductItem] = []  # created with the shop; synced by PUT and PATCH when sent


class ReviewWrite(BaseModel):
    rating: int = Field(ge=1, le=5)
    text: str = Field("", max_length=2000)

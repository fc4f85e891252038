"""The API: a tree of router schemas, shops > products > reviews."""

from catalog import models, schemas
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken

router = DjangoRouterSchema(
    name="shops",  # /shops, /shops/{shop_id}
    model=models.Shop,
    get=schemas.Shop,
    create=schemas.ShopWrite,
    update=schemas.ShopWrite,
    security=JWTToken(),  # key, algorithms and issuer from settings.DJFAPI
    security_scopes=SecurityScopes(  # any one of a list suffices; `.own` means "my shops"
        get=["shop.shops.read.any", "shop.shops.read.own"],
        post=["shop.shops.create"],
        patch=["shop.shops.update.any", "shop.shops.update.own"],
        delete=["shop.shops.delete.any", "shop.shops.delete.own"],
    ),
    owner_field="owner_id",  # the creator, from the token's `sub`; no body can set it; what `.own` means
    children=[
        DjangoRouterSchema(
            name="tags",  # /shops/{shop_id}/tags: a product may carry only its own shop's tags
            model=models.Tag,
            get=schemas.Tag,
            create=schemas.TagWrite,
            update=schemas.TagWrite,
        ),
        DjangoRouterSchema(
            name="products",  # /shops/{shop_id}/products/{product_id}
            model=models.Product,
            get=schemas.Product,
            create=schemas.ProductWrite,
            update=schemas.ProductWrite,
            # No scopes of its own: read with the shop's `get` scopes, written with its
            # `patch` scopes (changing a product is changing the shop).
            subscribe=True,  # GET /shops/{shop_id}/products/subscribe: the change feed
            # Offsets up to 500; deeper is a 422 pointing to filters or a cursor.
            pagination_options={"max_offset": 500},
            children=[
                DjangoRouterSchema(
                    name="reviews",  # /shops/{shop_id}/products/{product_id}/reviews/{review_id}
                    model=models.Review,
                    get=schemas.Review,
                    create=schemas.ReviewWrite,
                    update=schemas.ReviewWrite,
                    owner_field="author_id",  # the reviewer, from the token's `sub`
                    # Best reviews first, paged by cursor: a deep page costs what the first
                    # costs (Review.Meta.indexes holds the index the advisor asked for).
                    pagination_options={"cursor": True, "default_order_by": ["-rating"]},
                    security_scopes=SecurityScopes(  # customers write reviews, not shops
                        post=["shop.reviews.create"],
                        patch=["shop.reviews.update.any", "shop.reviews.update.own"],
                        delete=["shop.reviews.delete.any", "shop.reviews.delete.own"],
                    ),
                ),
            ],
        ),
    ],
)

"""The API: a tree of router schemas, shops > products > reviews; and a public catalogue."""

from catalog import models, schemas
from djfapi.ratelimit import RateLimit
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken

token = JWTToken()  # key, algorithms and issuer from settings.DJFAPI

router = DjangoRouterSchema(
    name="shops",  # /shops, /shops/{shop_id}
    model=models.Shop,
    get=schemas.Shop,
    create=schemas.ShopWrite,
    update=schemas.ShopWrite,
    security=token,
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
            # ?name=, ?name__icontains=, ?price__gte=, ?in_stock=...; Product.Meta.indexes holds what the
            # index advisor asks for them. The trigram index it asks for on PostgreSQL (W115) needs a GIN index,
            # which SQLite, where this example also runs, does not have: create it in a PostgreSQL-only
            # migration when you deploy there (docs/scaling.md).
            filter_fields=["name", "price", "in_stock"],
            silenced_checks=["djfapi.W115"],
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
                    rate_limits={"post": "30/hour"},  # per customer (the token's `sub`): 429 beyond
                ),
            ],
        ),
    ],
)

# Every product of every marketplace, for anyone: GET /catalog and /catalog/{product_id} need
# no token (Product has no tenant_id, so the default filter shows them all); 60 a minute
# per client address.
catalog = DjangoRouterSchema(
    name="catalog",
    model=models.Product,
    get=schemas.Product,
    delete=False,
    security=token,
    public=["get"],
    rate_limits={"get": RateLimit("60/minute", key="address")},
)

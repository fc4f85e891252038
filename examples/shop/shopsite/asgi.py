"""The ASGI app: `uvicorn shopsite.asgi:app`.

`create_app` sets Django up with these settings (unless DJANGO_SETTINGS_MODULE names
others), runs djfapi's system checks, then imports the router tree named as
"module:attribute", so `catalog/api.py` may import models at its top.
"""

import djfapi

app = djfapi.create_app(
    "catalog.api:router",  # the tree: catalog/api.py, attribute `router`
    "catalog.api:catalog",  # the public catalogue
    "catalog.auth:router",  # POST /auth/token, /auth/refresh, /auth/logout, /auth/revoke; /auth/jwks.json
    settings="shopsite.settings",
    admin=True,  # the Django admin at /admin, next to the API
    metrics=True,  # GET /metrics for Prometheus
    title="Shop API",
)

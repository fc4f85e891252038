"""myproject/asgi.py: `gunicorn myproject.asgi:app -k uvicorn.workers.UvicornWorker -w 4`."""

import djfapi
from djfapi.ops.sentry import init_sentry

init_sentry()  # reads DJFAPI["SENTRY_DSN"]; does nothing without one

# Sets Django up with these settings (unless DJANGO_SETTINGS_MODULE names others), then
# imports the router tree: error bodies, X-Request-ID and access logs, /health and
# /health/ready, Swagger UI and ReDoc from local files, the Django admin under /admin.
app = djfapi.create_app(
    "testproject.api:router",  # "your_app.api:router": the module and attribute of your tree
    settings="myproject.settings",
    admin=True,
    title="My API",
)

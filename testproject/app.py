"""The demo application: the generated API, djfapi's error handlers and the Django admin."""

from __future__ import annotations

import os
from pathlib import Path

import django.contrib.admin
from django.core.asgi import get_asgi_application
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from djfapi.errors import install_error_handlers
from djfapi.ops.health import health_router
from djfapi.ops.requests import RequestContextMiddleware
from djfapi.ops.sentry import init_sentry

DESCRIPTION = """\
The djfapi demo: companies with departments (and their teams), cost centres and
employees, generated from Django models. Get a token with
`python -m testproject token --tenant demo --user demo-user --scope business.companies.read.any`
and send it as `Authorization: Bearer <token>`. The Django admin is at `/admin`; health checks
at `/health` and `/health/ready`.
"""


def create_app() -> FastAPI:
    """A fresh app (Django must be set up first: see ``testproject.asgi``)."""
    from testproject.api import router

    init_sentry(os.environ.get("SENTRY_DSN"))  # Sentry only when a DSN is configured
    app = FastAPI(title="djfapi testproject", version="1.0", description=DESCRIPTION)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router())
    app.include_router(router)
    admin_static = Path(django.contrib.admin.__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=admin_static), name="static")
    app.mount("/admin", get_asgi_application(), name="admin")
    return app

"""The demo application: the generated API with everything ``djfapi.create_app`` adds.

That is djfapi's error bodies, health checks, request ids, offline API docs and the
Django admin at ``/admin`` — the same call a new project makes (see ``docs/tutorial.md``).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

import djfapi
from djfapi.ops.sentry import init_sentry

DESCRIPTION = """\
The djfapi demo: companies with departments (and their teams), cost centres and
employees, generated from Django models. Get a token with
`python -m testproject token --tenant demo --user demo-user --scope business.companies.read.any`
and send it as `Authorization: Bearer <token>`. `GET /directory` (verified companies) is public.
The Django admin is at `/admin`; health checks at `/health` and `/health/ready`.
"""


def create_app() -> FastAPI:
    """A fresh demo app; sets Django up with the demo's settings unless it already is."""
    # Sentry reads its DSN from the settings too, so name them before it starts
    # (``uvicorn testproject.asgi:app`` in a shell that never set the variable).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    init_sentry(os.environ.get("SENTRY_DSN"))  # Sentry only when a DSN is configured
    return djfapi.create_app(
        "testproject.api:router",
        "testproject.api:directory",
        "testproject.api:auth",
        settings="testproject.settings",
        admin=True,
        metrics=True,  # GET /metrics for Prometheus
        title="djfapi testproject",
        version="1.0",
        description=DESCRIPTION,
    )

"""ASGI entry point: ``uvicorn testproject.asgi:app``.

Django must be configured and its app registry loaded before the API modules import
models, hence ``django.setup()`` ahead of the ``create_app`` import.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
django.setup()

from testproject.app import create_app  # noqa: E402  (needs the app registry loaded)

app = create_app()

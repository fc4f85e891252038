"""ASGI entry point: ``uvicorn testproject.asgi:app``.

``create_app`` sets Django up (with ``testproject.settings`` unless
``DJANGO_SETTINGS_MODULE`` says otherwise) before it imports the API's models.
"""

from __future__ import annotations

from testproject.app import create_app

app = create_app()

"""The Django REST framework contender, written the way a DRF user writes an API.

``ModelViewSet`` subclasses with nested ``ModelSerializer``s, ``LimitOffsetPagination``,
their own ``prefetch_related`` in ``get_queryset``, and a small JWT authentication
class checking the same token as djfapi. It runs in Django's ASGI handler under
uvicorn (settings ``benchmarks.settings``, URL conf ``benchmarks.contenders.drf.urls``).
"""

from __future__ import annotations

from typing import Any


def create() -> Any:
    """Django's ASGI application (Django is set up by the caller)."""
    from django.core.asgi import get_asgi_application

    return get_asgi_application()

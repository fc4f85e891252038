"""URL conf of the demo project: only the Django admin, at the root.

The FastAPI app mounts the whole Django ASGI application under ``/admin``, so Django
receives ``root_path="/admin"`` and the admin must live at the root of this URL conf
(``/admin/login/`` outside is ``/login/`` here).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("", admin.site.urls),
]

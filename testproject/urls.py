"""URL conf of the demo project: the Django admin, where ``startproject`` puts it.

``djfapi.create_app(admin=True)`` mounts Django under ``/admin`` and hands it the full
path, so the admin is routed here exactly as in any Django project.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]

"""URL conf: the Django admin, where startproject puts it.

The API is not routed here: `shopsite/asgi.py` builds it with `djfapi.create_app`, which
mounts Django under /admin and hands it the full path, so this stays as generated.
"""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]

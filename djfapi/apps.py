"""The Django app of djfapi itself: add ``"djfapi"`` to ``INSTALLED_APPS``.

It holds no models. Installing it gives a project the ``djfapi_token`` management
command and djfapi's system checks (``manage.py check``), which ``create_app`` also runs
at start-up.
"""

from __future__ import annotations

from django.apps import AppConfig


class DjfapiConfig(AppConfig):
    name = "djfapi"
    label = "djfapi"
    verbose_name = "djfapi"

    def ready(self) -> None:
        from djfapi import checks  # noqa: F401  (registers the system checks)

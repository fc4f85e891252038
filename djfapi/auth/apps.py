"""The Django app of djfapi's token lifecycle: add ``"djfapi.auth"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig


class AuthConfig(AppConfig):
    """Holds the token families, refresh tokens and revocations (``djfapi_auth_*`` tables)."""

    name = "djfapi.auth"
    label = "djfapi_auth"
    verbose_name = "djfapi tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from djfapi.auth.signals import connect

        connect()

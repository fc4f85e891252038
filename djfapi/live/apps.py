"""The Django app of djfapi's change feed: add ``"djfapi.live"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Holds the outbox table (``djfapi_live_changeevent``) and the prune command."""

    name = "djfapi.live"
    label = "djfapi_live"
    verbose_name = "djfapi live data"
    default_auto_field = "django.db.models.BigAutoField"

"""App config; the label ``business`` is the service part of the API scope strings."""

from __future__ import annotations

from django.apps import AppConfig


class BusinessConfig(AppConfig):
    """Label ``business`` turns permission codename ``companies.read.any`` into the
    scope ``business.companies.read.any`` (see ``Company.Meta.permissions``)."""

    name = "testproject.business"
    label = "business"
    verbose_name = "Business"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Declaring the router tree registers its subscribed models with djfapi.live, so
        # that processes which never serve the API (the seed and other management
        # commands, the shell) publish their ORM writes to the change feeds too.
        import testproject.api  # noqa: F401

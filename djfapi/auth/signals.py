"""Off-boarding: a user made inactive loses every token family at once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save


def _user_saved(sender: Any, instance: Any, created: bool, **_: Any) -> None:
    if created or getattr(instance, "is_active", True):
        return
    from djfapi.auth.tokens import revoke_user

    revoke_user(instance, "user_inactive")


def connect() -> None:
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="djfapi.auth.user_saved")

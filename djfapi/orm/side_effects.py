"""Whether saving a model's rows can write anything djfapi does not know of.

A create answers with the rows it wrote. Its nested lists hold exactly the rows the
request created in them — the parent is new, so nothing else belongs to it yet — unless
code outside djfapi adds rows when one is saved: an overridden ``save()``, or a
``pre_save``/``post_save`` receiver. djfapi's own receivers (the change feed's outbox)
add no row to a nested list. Database triggers are beyond what Python can see.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.signals import post_save, pre_save

_SIGNALS = (pre_save, post_save)
_OWN_PREFIX = "djfapi."


def saves_only_themselves(model: type[models.Model]) -> bool:
    """Saving a ``model`` row writes that row and djfapi's bookkeeping, nothing else we could miss."""
    if model.save is not models.Model.save:
        return False
    return all(_is_own(receiver) for signal in _SIGNALS for receiver in _receivers(signal, model))


def _receivers(signal: Any, model: type[models.Model]) -> list[Any]:
    live = getattr(signal, "_live_receivers", None)
    if live is None:  # a Django whose signal internals differ: assume the worst
        return [object()]
    sync, asynchronous = live(model)
    return [*sync, *asynchronous]


def _is_own(receiver: Any) -> bool:
    return str(getattr(receiver, "__module__", "")).startswith(_OWN_PREFIX)

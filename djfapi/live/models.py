"""The outbox: one row per published change, written in the changing transaction.

The table is the feed's only source of truth. Wake-ups between processes carry no
data; a stream always reads these rows, in ``id`` order, after its own position, so a
lost wake-up delays an event but never loses it.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone


class ChangeEvent(models.Model):
    """A committed INSERT, UPDATE or DELETE of a row of a subscribed model."""

    class Action(models.TextChoices):
        INSERT = "INSERT"
        UPDATE = "UPDATE"
        DELETE = "DELETE"

    id: models.BigAutoField[int, int] = models.BigAutoField(primary_key=True)
    created_at: models.DateTimeField[Any, Any] = models.DateTimeField(default=timezone.now, db_index=True)
    model: models.CharField[str, str] = models.CharField(
        max_length=100, help_text="The changed model's label_lower, e.g. business.company"
    )
    object_id: models.CharField[str, str] = models.CharField(max_length=255)
    action: models.CharField[str, str] = models.CharField(max_length=6, choices=Action.choices)
    tenant_id: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True, blank=True)
    # attname -> value (as a string) of every foreign key, so that a deleted row's parents are still known.
    refs: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "change event"
        indexes = [models.Index(fields=["model", "id"], name="djfapi_live_model_id")]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} {self.model} {self.object_id}"


class PruneMark(models.Model):
    """How far the outbox has been pruned (one row): resuming from before it is a reset.

    Event ids have gaps (a rolled-back transaction burns its id), so "older than the
    oldest row" cannot tell a pruned event from one that never existed; this mark can.
    """

    id: models.PositiveSmallIntegerField[int, int] = models.PositiveSmallIntegerField(primary_key=True, default=1)
    pruned_through: models.BigIntegerField[int, int] = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "prune mark"

"""Capture: every ORM save or delete of a subscribed model writes a ``ChangeEvent``.

The receivers run inside the writer's transaction (Django sends ``post_save`` and
``post_delete`` before the enclosing ``atomic`` block commits), so the event commits
with the change or not at all. Anything that goes through ``Model.save()`` or
``Model.delete()`` (and ``QuerySet.delete()``, which sends the signals per row) is
published: the API, the admin, management commands, the shell. ``QuerySet.update()``,
``bulk_create()``, ``bulk_update()`` and raw SQL send no signals; publish those with
``publish()``.

A save that moves a soft-deleting node's ``status`` to its ``delete_status`` is a
``DELETE``; one that moves it back out is an ``INSERT`` (the row reappears).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models, router, transaction
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save
from django.utils import timezone

from djfapi.conf import TENANT_FIELD
from djfapi.live import wakeups
from djfapi.live.registry import Watched, watched

logger = logging.getLogger("djfapi.live")

INSERT, UPDATE, DELETE = "INSERT", "UPDATE", "DELETE"
ACTIONS = (INSERT, UPDATE, DELETE)
_STATUS = "_djfapi_live_status"  # the status an instance had when loaded or last saved
_MISSING = object()
_RECORDED = "_djfapi_live_recorded_in"  # the transaction an instance's change was last recorded in


@dataclass(frozen=True)
class Change:
    """One committed change, as an ``on_change`` reaction sees it: unfiltered, privileged.

    ``instance`` is the object as it was saved (or deleted), or None when the change
    was published by hand without an instance.
    """

    id: int
    action: str
    model: type[models.Model]
    object_id: str
    tenant_id: str | None
    refs: Mapping[str, str | None]
    instance: models.Model | None = None


def object_key(model: type[models.Model], pk: Any) -> str:
    """The string form of a primary key, the same whether it came from a row or a URL."""
    return str(model._meta.pk.to_python(pk))


def _refs(instance: models.Model) -> dict[str, str | None]:
    refs: dict[str, str | None] = {}
    for field in instance._meta.concrete_fields:
        if isinstance(field, models.ForeignKey):
            value = getattr(instance, field.attname)
            refs[field.attname] = None if value is None else str(field.target_field.to_python(value))
    return refs


def _tenant(instance: models.Model) -> str | None:
    if not any(f.name == TENANT_FIELD for f in instance._meta.concrete_fields):
        return None
    value = getattr(instance, TENANT_FIELD)
    return None if value is None else str(value)


def record(
    entry: Watched,
    action: str,
    object_id: str,
    *,
    tenant_id: str | None,
    refs: Mapping[str, str | None],
    using: str,
    instance: models.Model | None = None,
) -> int:
    """Write the event in the current transaction of ``using``; wake streams when it commits."""
    connection = connections[using]
    if not connection.in_atomic_block:
        # An autocommitted write (outside ``atomic``): give the event a transaction of its own.
        with transaction.atomic(using=using, savepoint=False):
            assign_xid(connection)
            return record(entry, action, object_id, tenant_id=tenant_id, refs=refs, using=using, instance=instance)
    label = entry.model._meta.label_lower
    if connection.vendor == "postgresql":
        event_id = _insert_postgresql(connection, label, object_id, action, tenant_id, refs)
    elif connection.features.can_return_columns_from_insert:
        event_id = _insert_returning(connection, label, object_id, action, tenant_id, refs)
    else:
        from djfapi.live.models import ChangeEvent

        event = ChangeEvent.objects.using(using).create(
            model=label, object_id=object_id, action=action, tenant_id=tenant_id, refs=dict(refs)
        )
        event_id = event.id
    transaction.on_commit(functools.partial(wakeups.committed, event_id), using=using)
    if entry.reactions:
        change = Change(event_id, action, entry.model, object_id, tenant_id, dict(refs), instance)

        def react() -> None:  # a named function: robust on_commit logs failures by __qualname__
            for _, reaction in entry.reactions:
                reaction(change)

        transaction.on_commit(react, using=using, robust=True)
    return event_id


def assign_xid(connection: Any) -> None:
    """Make sure the current PostgreSQL transaction has its xid before an event id is drawn.

    The feed's horizon (``djfapi.live.hub``) relies on it: a transaction that holds an
    unseen event id is then always in the snapshot of whoever sees a later id. A
    receiver runs after the row's own write, which already assigned it; a transaction
    that only publishes has to ask.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")


def _insert_returning(
    connection: Any, label: str, object_id: str, action: str, tenant_id: str | None, refs: Mapping[str, Any]
) -> int:
    # One statement, as on PostgreSQL, instead of a ChangeEvent instance saved through the
    # ORM (its compilation and signals cost about as much as the row it records).
    from djfapi.live.models import ChangeEvent

    table = connection.ops.quote_name(ChangeEvent._meta.db_table)
    sql = (
        f"INSERT INTO {table} (created_at, model, object_id, action, tenant_id, refs) "
        f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {connection.ops.quote_name('id')}"
    )
    created_at = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [created_at, label, object_id, action, tenant_id, json.dumps(dict(refs))])
        return int(cursor.fetchone()[0])


def _insert_postgresql(
    connection: Any, label: str, object_id: str, action: str, tenant_id: str | None, refs: Mapping[str, Any]
) -> int:
    # One round trip: the row and, unless Redis carries the wake-ups, the NOTIFY that
    # PostgreSQL delivers at commit (and drops on rollback).
    from djfapi.live.models import ChangeEvent

    table = connection.ops.quote_name(ChangeEvent._meta.db_table)
    channel = wakeups.channel() if wakeups.notify_in_transaction() else None
    notify = ", pg_notify(%s, id::text)" if channel else ""
    sql = (
        f"WITH e AS (INSERT INTO {table} (created_at, model, object_id, action, tenant_id, refs) "
        f"VALUES (%s, %s, %s, %s, %s, %s::jsonb) RETURNING id) SELECT id{notify} FROM e"
    )
    params: list[Any] = [timezone.now(), label, object_id, action, tenant_id, json.dumps(dict(refs))]
    if channel:
        params.append(channel)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


# -- signal receivers -------------------------------------------------------------------


def _on_init(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    instance.__dict__[_STATUS] = instance.__dict__.get("status", _MISSING)


def _on_save(sender: type[models.Model], instance: models.Model, created: bool, using: str, **_: Any) -> None:
    entry = watched(sender)
    if entry is None:
        return
    action = INSERT if created else UPDATE
    deleted = entry.delete_status
    if deleted is not None:
        before = instance.__dict__.get(_STATUS, _MISSING)
        now = getattr(instance, "status", None)
        if not created and now == deleted and before != deleted:
            action = DELETE
        elif not created and now != deleted and before == deleted:
            action = INSERT  # restored: it reappears for readers
        instance.__dict__[_STATUS] = now
    _record_instance(entry, action, instance, using)


def _on_delete(sender: type[models.Model], instance: models.Model, using: str, **_: Any) -> None:
    entry = watched(sender)
    if entry is None:
        return
    _record_instance(entry, DELETE, instance, using)


def _on_m2m_changed(
    sender: type[models.Model], instance: models.Model, action: str, reverse: bool, using: str, **_: Any
) -> None:
    """A many-to-many set of a watched row changed: the row reads differently, an ``UPDATE``.

    Once per row and transaction (``set()`` removes, then adds; a write may also have
    saved the row's columns): the event says the row changed, not how often. Changes
    made from the other side of the relation (``skill.employees.add(...)``) are not
    captured; publish those with ``publish()``.
    """
    if reverse or action not in ("post_add", "post_remove", "post_clear"):
        return
    entry = watched(type(instance))
    if entry is None:
        return
    marker = _transaction_marker(using)
    if marker is not None and instance.__dict__.get(_RECORDED) is marker:
        return
    _record_instance(entry, UPDATE, instance, using)


def _transaction_marker(using: str) -> object | None:
    """An object that stands for the current outermost transaction (held, so never reused)."""
    blocks = connections[using].atomic_blocks
    if not blocks:
        return None
    return vars(blocks[0]).setdefault("_djfapi_live_marker", object())


def _record_instance(entry: Watched, action: str, instance: models.Model, using: str) -> None:
    instance.__dict__[_RECORDED] = _transaction_marker(using)
    key = object_key(entry.model, instance.pk)
    record(entry, action, key, tenant_id=_tenant(instance), refs=_refs(instance), using=using, instance=instance)


_connected = False


def connect() -> None:
    """Connect the save, delete and many-to-many receivers (once; they ignore models nobody watches).

    They listen to every sender, so that a proxy model's save (the admin may use one)
    is captured as its concrete model's.
    """
    global _connected
    if _connected:
        return
    post_save.connect(_on_save, dispatch_uid="djfapi.live.save", weak=False)
    post_delete.connect(_on_delete, dispatch_uid="djfapi.live.delete", weak=False)
    m2m_changed.connect(_on_m2m_changed, dispatch_uid="djfapi.live.m2m", weak=False)
    _connected = True


def track_status(model: type[models.Model]) -> None:
    """Remember each loaded instance's ``status``, to tell a soft delete from another update."""
    post_init.connect(_on_init, sender=model, dispatch_uid=f"djfapi.live.init.{model._meta.label_lower}", weak=False)


# -- publishing by hand -----------------------------------------------------------------


def publish(
    target: models.Model | type[models.Model], object_id: Any = None, action: str = UPDATE, *, using: str | None = None
) -> int:
    """Publish a change the ORM's signals did not report (``QuerySet.update()``, ``bulk_create()``).

    ``publish(instance)`` or ``publish(instance, action="INSERT")`` publishes a row you
    hold; ``publish(Model, pk, "UPDATE")`` looks the row up (for its tenant and parents)
    first. Call it inside the transaction that made the change, so that both commit
    together. Returns the event id.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    if isinstance(target, models.Model):
        model: type[models.Model] = type(target)
        instance: models.Model | None = target
        pk = target.pk if object_id is None else object_id
    else:
        model, instance, pk = target, None, object_id
    entry = watched(model)
    if entry is None:
        raise ImproperlyConfigured(
            f"No router schema subscribes to {model.__name__}: declare one with subscribe=True (or an on_change "
            f"reaction) before publishing its changes"
        )
    if pk is None:
        raise ValueError("publish() needs the object's primary key")
    alias = using or router.db_for_write(model)
    with transaction.atomic(using=alias, savepoint=False):
        assign_xid(connections[alias])
        if instance is None:
            instance = model._default_manager.using(alias).filter(pk=pk).first()
        return record(
            entry,
            action,
            object_key(entry.model, pk),
            tenant_id=_tenant(instance) if instance is not None else None,
            refs=_refs(instance) if instance is not None else {},
            using=alias,
            instance=instance,
        )

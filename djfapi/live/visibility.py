"""Which events a subscriber may receive, rendered as that subscriber would read them.

Runs in a worker thread, one call per page of events (up to 100) and per group of
identical subscribers. The rules:

* INSERT and UPDATE: delivered when the object is visible to the subscriber *now*,
  exactly as ``GET`` would find it — the node's row filter (tenant, ``own``), not
  soft-deleted, under the path's parent, every ancestor through its own filter — and
  rendered through the read schema with the subscriber's field scopes (one query for
  the page, plus the read plan's prefetches).
* DELETE of a row that still exists (a soft delete): delivered when the row is visible
  to the subscriber with soft-deleted rows included.
* DELETE of a row that is gone (a hard delete): the row can no longer be queried, so
  the event's recorded tenant must be the subscriber's (for models with a tenant), its
  parent in the path must still be visible, and, when the node filters by more than
  the tenant (an ``objects_filter``, an override, an ``owner_field``), the stream
  must have shown the subscriber that object before (``Verdict.if_shown``), since the
  filter can no longer be asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from djfapi.conf import TENANT_FIELD
from djfapi.live.capture import DELETE, object_key
from djfapi.live.outbox import Event
from djfapi.routing import queries
from djfapi.routing.responses import object_body
from djfapi.schemas.access import Access

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema


@dataclass(frozen=True)
class Verdict:
    """What to send for one event: ``frame`` (the event's JSON), or nothing."""

    frame: bytes | None
    if_shown: bool = False  # send only if this stream showed the subscriber the object before


NOTHING = Verdict(None)


def event_json(event: Event, data: bytes | None) -> bytes:
    """``{"id", "event", "object_id"[, "data"]}`` as one line of JSON; ``data`` is already JSON."""
    head = f'{{"id":{event.id},"event":"{event.action}","object_id":{json.dumps(event.object_id)}'.encode()
    return head + (b',"data":' + data if data is not None else b"") + b"}"


def chain_rows(
    node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any], *, include_deleted: bool = False
) -> QuerySet[Any]:
    """The node's rows under the path's parent, as ``rows_in_chain`` (optionally with soft-deleted ones)."""
    rows = queries.visible_rows(node, access, include_deleted=include_deleted)
    if node.parent is None:
        return rows
    parent = queries.rows_in_chain(node.parent, access, ids).filter(pk=ids[node.parent.id_name])
    return rows.filter(**{f"{node.parent_field.name}__in": parent.values("pk")})


def _keys(node: DjangoRouterSchema, rows: Iterable[Any]) -> set[str]:
    return {object_key(node.model, pk) for pk in rows}


def evaluate(
    node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any], events: list[Event]
) -> dict[int, Verdict]:
    """A verdict for each of ``events`` (all of ``node``'s model, all under the path's parent)."""
    verdicts: dict[int, Verdict] = {}
    upserts = [event for event in events if event.action != DELETE]
    deletes = [event for event in events if event.action == DELETE]
    if upserts:
        wanted = {event.object_id for event in upserts}
        rows = node.get_plan.apply(chain_rows(node, access, ids).filter(pk__in=wanted))
        bodies = {object_key(node.model, row.pk): object_body(node.get_mapping, row, access) for row in rows}
        for event in upserts:
            body = bodies.get(event.object_id)
            verdicts[event.id] = Verdict(event_json(event, body)) if body is not None else NOTHING
    if deletes:
        wanted = {event.object_id for event in deletes}
        visible = _keys(
            node,
            chain_rows(node, access, ids, include_deleted=True).filter(pk__in=wanted).values_list("pk", flat=True),
        )
        remaining = wanted - visible
        existing = (
            _keys(node, node.model._default_manager.filter(pk__in=remaining).values_list("pk", flat=True))
            if remaining
            else set()
        )
        parent_visible: bool | None = None
        for event in deletes:
            if event.object_id in visible:
                verdicts[event.id] = Verdict(event_json(event, None))
                continue
            if event.object_id in existing or not _tenant_matches(node, access, event):
                verdicts[event.id] = NOTHING
                continue
            if parent_visible is None:
                parent_visible = _parent_visible(node, access, ids)
            if not parent_visible:
                verdicts[event.id] = NOTHING
                continue
            verdicts[event.id] = Verdict(event_json(event, None), if_shown=node.has_custom_filter)
    return verdicts


def _tenant_matches(node: DjangoRouterSchema, access: Access | None, event: Event) -> bool:
    if access is None or not any(f.name == TENANT_FIELD for f in node.model._meta.concrete_fields):
        return True
    return event.tenant_id is not None and event.tenant_id == access.tenant_id


def _parent_visible(node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any]) -> bool:
    if node.parent is None:
        return True
    return queries.rows_in_chain(node.parent, access, ids).filter(pk=ids[node.parent.id_name]).exists()

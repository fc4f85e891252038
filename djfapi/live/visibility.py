"""Which events subscribers may receive, rendered as each would read them: many groups at once.

Runs in one of the feed's worker threads (``djfapi.live.workers``), one call per page of
events for every group of subscribers that needs it (``Request``: one group of
identical callers, ``sharing.group_key``). Groups whose row filters answer alike share
one visibility class (``sharing.visibility_key``); all classes are answered together
(``_Sight``: one statement for the page, plus one per ``FLAGS_PER_QUERY`` classes whose
filters need a subquery), and each object is rendered once per set of granted field
scopes (``sharing.render_key``). The rules, per class:

* INSERT and UPDATE: delivered when the object is visible to the subscriber *now*,
  exactly as ``GET`` would find it — the node's row filter (tenant, ``own``), not
  soft-deleted, under the path's parent, every ancestor through its own filter — and
  rendered through the read schema with the subscriber's field scopes. A class's
  verdict and the data it is shown come from the same statement.
* DELETE of a row that still exists (a soft delete): delivered when the row is visible
  to the subscriber with soft-deleted rows included.
* DELETE of a row that is gone (a hard delete): the row can no longer be queried, so
  the event's recorded tenant must be the subscriber's (for models with a tenant), its
  parent in the path must still be visible, and, when the node filters by more than
  the tenant (an ``objects_filter``, an override, an ``owner_field``), the stream
  must have shown the subscriber that object before (``Verdict.if_shown``), since the
  filter can no longer be asked.

A row filter that raises fails only the groups that asked it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP

from djfapi.conf import TENANT_FIELD
from djfapi.live import sharing
from djfapi.live.capture import DELETE, object_key
from djfapi.live.outbox import Event
from djfapi.orm.reading import read
from djfapi.orm.rows import PK
from djfapi.routing.responses import data_body
from djfapi.schemas.access import Access

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

FLAGS_PER_QUERY = 32  # classes needing a subquery answered by one statement
_FLAG = "_djfapi_live_{}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to send for one event: ``frame`` (the event's JSON), or nothing."""

    frame: bytes | None
    if_shown: bool = False  # send only if this stream showed the subscriber the object before


NOTHING = Verdict(None)


@dataclass(frozen=True, slots=True)
class Request:
    """The events one group of identical subscribers needs verdicts for."""

    key: Hashable
    access: Access | None
    ids: Mapping[str, Any]
    events: Sequence[Event]


Outcome = dict[int, Verdict] | Exception


def event_json(event: Event, data: bytes | None) -> bytes:
    """``{"id", "event", "object_id"[, "data"]}`` as one line of JSON; ``data`` is already JSON."""
    head = f'{{"id":{event.id},"event":"{event.action}","object_id":{json.dumps(event.object_id)}'.encode()
    return head + (b',"data":' + data if data is not None else b"") + b"}"


def chain_rows(
    node: DjangoRouterSchema, filters: Mapping[DjangoRouterSchema, Q], ids: Mapping[str, Any], *, deleted: bool = False
) -> QuerySet[Any]:
    """The node's rows under the path's parent, as ``routing.queries.rows_in_chain`` finds them for
    the caller whose row filters answered ``filters`` (with soft-deleted rows of the node when ``deleted``)."""
    rows = node.model._default_manager.filter(filters[node])
    if node.delete_status is not None and not deleted:
        rows = rows.exclude(status=node.delete_status)
    if node.parent is None:
        return rows
    parent = chain_rows(node.parent, filters, ids).filter(pk=ids[node.parent.id_name])
    return rows.filter(**{f"{node.parent_field.name}__in": parent.values("pk")})


@dataclass(eq=False, slots=True)
class _Class:
    """Groups whose row filters answered alike: one visibility verdict per event for all of them."""

    filters: Mapping[DjangoRouterSchema, Q]
    access: Access | None
    ids: Mapping[str, Any]
    requests: list[Request] = field(default_factory=list)
    upserts: dict[int, Event] = field(default_factory=dict)
    deletes: dict[int, Event] = field(default_factory=dict)


def evaluate(node: DjangoRouterSchema, requests: Sequence[Request]) -> dict[Hashable, Outcome]:
    """Each request's verdicts (events all of ``node``'s model and under the request's path)."""
    outcomes: dict[Hashable, Outcome] = {}
    classes: dict[Hashable, _Class] = {}
    for request in requests:
        try:
            filters = sharing.row_filters(node, request.access)
        except Exception as error:  # the user's filter failed for this caller: only its streams fail
            outcomes[request.key] = error
            continue
        key = sharing.visibility_key(filters, request.access, request.ids)
        found = classes.get(key) if key is not None else None
        if found is None:
            found = _Class(filters, request.access, request.ids)
            classes[key if key is not None else ("alone", request.key)] = found
        found.requests.append(request)
        for event in request.events:
            (found.deletes if event.action == DELETE else found.upserts)[event.id] = event
    upserting = [found for found in classes.values() if found.upserts]
    wanted = {event.object_id for found in upserting for event in found.upserts.values()}
    seen = _Sight(node, upserting, wanted, deleted=False, read_data=True)
    deleting = [found for found in classes.values() if found.deletes]
    wanted = {event.object_id for found in deleting for event in found.deletes.values()}
    gone = _Sight(node, deleting, wanted, deleted=True, read_data=False)
    bodies = _Bodies(node)
    for found in classes.values():
        deleted = _delete_verdicts(node, found, gone) if found.deletes else {}
        for request in found.requests:
            render = sharing.render_key(node, request.access)
            verdicts = dict(deleted)
            for event in request.events:
                if event.action != DELETE:
                    data = seen.data(found, event.object_id)
                    verdicts[event.id] = (
                        NOTHING if data is None else bodies.verdict(event, data, render, request.access)
                    )
            outcomes[request.key] = {event.id: verdicts[event.id] for event in request.events}
    return outcomes


class _Bodies:
    """Each object rendered once per set of granted field scopes (and statement); each frame made once."""

    def __init__(self, node: DjangoRouterSchema) -> None:
        self.node = node
        self.frames: dict[tuple[int, int, frozenset[str]], Verdict] = {}

    def verdict(self, event: Event, data: dict[str, Any], render: frozenset[str], access: Access | None) -> Verdict:
        key = (event.id, id(data), render)
        verdict = self.frames.get(key)
        if verdict is None:
            verdict = self.frames[key] = Verdict(event_json(event, data_body(self.node.get_mapping, data, access)))
        return verdict


Row = tuple[Any, dict[str, bool]]  # a row as read (values, or an instance) and its flag columns


class _Sight:
    """Which of ``wanted`` each class sees (and, with ``read_data``, the objects as ``GET`` reads them).

    A first statement reads every wanted row with one yes/no column per distinct condition
    that can be written on the row itself: a class whose filters are plain and local (no
    relation crossed, see ``sharing``) is answered right there; the others get their
    filter's plain local conjuncts (typically the tenant) as a sieve. Only the rows a
    sieve let through are read again, with an ``EXISTS`` of the class's full chain (as
    ``GET`` filters), up to ``FLAGS_PER_QUERY`` classes per statement. A class's verdict
    and the data it is shown always come from one and the same statement.
    """

    def __init__(
        self, node: DjangoRouterSchema, classes: Sequence[_Class], wanted: set[str], *, deleted: bool, read_data: bool
    ) -> None:
        self.node = node
        self.deleted = deleted
        self.read_data = read_data
        self.seen: dict[_Class, dict[str, dict[str, Any] | None]] = {}
        self.existing: set[str] = set()
        if not classes:
            return
        columns: dict[Hashable, tuple[str, Q]] = {}
        sieves: dict[_Class, str | None] = {}
        final: set[_Class] = set()
        for found in classes:
            condition, whole = self._condition(found)
            if condition is None:
                sieves[found] = None
                continue
            key, q = condition
            sieves[found] = columns.setdefault(key, (_FLAG.format(len(columns)), q))[0]
            if whole:
                final.add(found)
        first = self._read(
            wanted, {name: ExpressionWrapper(q, output_field=BooleanField()) for name, q in columns.values()}
        )
        self.existing = set(first)
        passed = {
            found: {key for key, (_, flags) in first.items() if name is None or flags[name]}
            for found, name in sieves.items()
        }
        self._assign(first, {found: passed[found] for found in final})
        candidates = {found: keys for found, keys in passed.items() if found not in final}
        for found in candidates:
            self.seen[found] = {}
        pending = [found for found, keys in candidates.items() if keys]
        for start in range(0, len(pending), FLAGS_PER_QUERY):
            chunk = pending[start : start + FLAGS_PER_QUERY]
            flags = {
                _FLAG.format(index): Exists(
                    chain_rows(node, found.filters, found.ids, deleted=deleted).filter(pk=OuterRef("pk"))
                )
                for index, found in enumerate(chunk)
            }
            rows = self._read(set().union(*(candidates[found] for found in chunk)), flags)
            names = {found: _FLAG.format(index) for index, found in enumerate(chunk)}
            self._assign(
                rows, {found: {key for key, (_, seen) in rows.items() if seen[names[found]]} for found in chunk}
            )

    def data(self, found: _Class, object_id: str) -> dict[str, Any] | None:
        """The object as ``found`` reads it, or None when it does not see it."""
        return self.seen[found].get(object_id)

    def sees(self, found: _Class, object_id: str) -> bool:
        return object_id in self.seen[found]

    def _condition(self, found: _Class) -> tuple[tuple[Hashable, Q] | None, bool]:
        """The first statement's column for ``found`` (a key and a condition on the row), and whether it is all
        of the class's filter (else a sieve)."""
        node = self.node
        local, whole = local_part(node.model, found.filters[node])
        if local is None:
            return None, False
        if node.delete_status is not None and not self.deleted:
            local &= ~Q(status=node.delete_status)
        if whole and node.parent is None:
            return (sharing.q_key(local), local), True
        if whole and all(sharing.is_plain(found.filters[level]) for level in node.ancestors):
            assert node.parent is not None
            parent = chain_rows(node.parent, found.filters, found.ids).filter(pk=found.ids[node.parent.id_name])
            levels = tuple(sharing.q_key(found.filters[level]) for level in node.ancestors)
            key = ("chain", sharing.q_key(local), sharing.path_key(found.ids), levels)
            return (key, local & Q(**{f"{node.parent_field.name}__in": parent.values("pk")})), True
        return (sharing.q_key(local), local), False

    def _read(self, wanted: set[str], flags: Mapping[str, Any]) -> dict[str, Row]:
        """object key -> (the row, its flags) for the rows of ``wanted`` that exist: one statement."""
        node = self.node
        rows = node.model._default_manager.filter(pk__in=wanted).annotate(**flags)
        found: dict[str, Row] = {}
        reader = node.get_reader
        if not self.read_data or reader is not None:
            columns = [lookup for _, lookup in reader.columns] if self.read_data and reader is not None else []
            for value in rows.values(PK, *columns, *flags):
                found[object_key(node.model, value[PK])] = (value, {name: bool(value[name]) for name in flags})
            return found
        for instance in node.get_plan.apply(rows):
            found[object_key(node.model, instance.pk)] = (
                instance,
                {name: bool(getattr(instance, name)) for name in flags},
            )
        return found

    def _assign(self, rows: Mapping[str, Row], visible: Mapping[_Class, set[str]]) -> None:
        """What each class sees among ``rows`` (read in one statement), each object shaped once for all."""
        shaped = self._shaped(rows, set().union(*visible.values()) if visible else set())
        for found, keys in visible.items():
            self.seen[found] = {key: shaped[key] for key in keys}

    def _shaped(self, rows: Mapping[str, Row], keys: set[str]) -> dict[str, dict[str, Any] | None]:
        """The read schema's data of ``keys`` among ``rows`` (None when data is not read)."""
        if not self.read_data:
            return dict.fromkeys(keys)
        chosen = [key for key in rows if key in keys]
        reader = self.node.get_reader
        if reader is not None:
            # The reader's own shaping (the nested lists, read for these rows only); our flags are extra keys.
            return dict(zip(chosen, reader._shape([rows[key][0] for key in chosen], None), strict=True))
        return {key: read(self.node.get_mapping, rows[key][0]) for key in chosen}


def local_part(model: type[models.Model], q: Q) -> tuple[Q | None, bool]:
    """The part of ``q`` that is plain and reads only the row's own columns, and whether that is all of ``q``.

    For a ``Q`` that is not plain throughout, its plain local conjuncts (when it is an AND).
    """
    if sharing.is_plain(q) and _is_local(model, q):
        return q, True
    if type(q) is not Q or q.connector != Q.AND or q.negated:
        return None, False
    parts = [
        child
        for child in q.children
        if (single := child if isinstance(child, Q) else Q(child) if isinstance(child, tuple) else None) is not None
        and sharing.is_plain(single)
        and _is_local(model, single)
    ]
    return (Q(*parts) if parts else None), False


def _is_local(model: type[models.Model], q: Q) -> bool:
    """Whether a plain ``q`` compares only the row's own columns (no join that could repeat a row)."""
    for child in q.children:
        if isinstance(child, Q):
            if not _is_local(model, child):
                return False
            continue
        lookup, value = child  # type: ignore[misc]  # a plain Q's leaves are (lookup, value) pairs
        if not _local_path(model, lookup) or not _local_value(model, value):
            return False
    return True


def _local_value(model: type[models.Model], value: Any) -> bool:
    if isinstance(value, F):
        return _local_path(model, str(value.name))  # type: ignore[attr-defined]
    if isinstance(value, list | tuple | set | frozenset):
        return all(_local_value(model, item) for item in value)
    return True


@functools.cache
def _local_path(model: type[models.Model], path: str) -> bool:
    name, *rest = path.split(LOOKUP_SEP)
    try:
        found = model._meta.pk if name == "pk" else model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    if not getattr(found, "concrete", False) or found.many_to_many or found.one_to_many:
        return False
    if found.is_relation:  # a foreign key compared as such (company, company__in), not crossed (company__name)
        return all(found.get_lookup(part) is not None for part in rest)
    return True


def _delete_verdicts(node: DjangoRouterSchema, found: _Class, gone: _Sight) -> dict[int, Verdict]:
    verdicts: dict[int, Verdict] = {}
    parent_visible: bool | None = None
    for event in found.deletes.values():
        if gone.sees(found, event.object_id):
            verdicts[event.id] = Verdict(event_json(event, None))
            continue
        if event.object_id in gone.existing or not _tenant_matches(node, found.access, event):
            verdicts[event.id] = NOTHING
            continue
        if parent_visible is None:
            parent_visible = _parent_visible(node, found)
        if not parent_visible:
            verdicts[event.id] = NOTHING
            continue
        verdicts[event.id] = Verdict(event_json(event, None), if_shown=node.has_custom_filter)
    return verdicts


def _tenant_matches(node: DjangoRouterSchema, access: Access | None, event: Event) -> bool:
    if access is None or not any(f.name == TENANT_FIELD for f in node.model._meta.concrete_fields):
        return True
    return event.tenant_id is not None and event.tenant_id == access.tenant_id


def _parent_visible(node: DjangoRouterSchema, found: _Class) -> bool:
    if node.parent is None:
        return True
    return chain_rows(node.parent, found.filters, found.ids).filter(pk=found.ids[node.parent.id_name]).exists()

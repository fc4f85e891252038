"""Which subscribers may share the work of an event: the sharing rule.

Evaluating an event for a subscriber has two parts, and each depends on less than the
whole caller:

* **whether the object is visible** depends only on the row filters of the node and
  its ancestors (``objects_filter``: the tenant, ``own``, your own ``Q``), on the path
  (the parent ids) and, for a hard delete, on the caller's tenant;
* **how the object is rendered** depends only on which of the read schema's field
  scopes the caller was granted (``djfapi.orm.visibility.hidden_fields``).

So subscribers are grouped three ways:

1. ``group_key``: identical callers (same node, path, token claims except validity
   times and id, matched scope and grants). They share everything, as always.
2. ``visibility_key``, computed afresh for every evaluation: the node asks every row
   filter of the chain what it returns for this caller. When each answer is a *plain*
   ``Q`` — a tree of ``Q`` objects whose leaves are lookups with plain values (``str``,
   numbers, ``bool``, ``None``, ``Decimal``, ``UUID``, dates and times, enum members,
   ``F("column")``, model instances (by class and every loaded column), and lists, tuples or sets
   of these) — callers whose answers are equal value for value, *type included*, and
   who have the same tenant and path share one visibility verdict, even when their
   users differ: the default tenant filter, or an ``any`` scope that filters by tenant
   alone. A ``Q`` holding anything else — a subquery (``Exists``, a ``QuerySet``), an
   expression, a ``Q`` subclass, an object of your own — is never compared: those
   callers are shared only among identical callers (1.). A filter is never trusted to
   say what it depends on; what it returns is compared, and it is asked again at every
   evaluation, so a filter that reads the database or the clock gives its current
   answer, and that very ``Q`` is what the query uses.
3. ``render_key``: the granted field scopes the read schema mentions; one rendering of
   an object per distinct set, whoever the callers are.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import F, Q

from djfapi.orm.visibility import scopes_in_schema
from djfapi.schemas.access import Access

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

_PER_TOKEN = {"exp", "iat", "nbf", "jti"}
# Values compared as they are: equal values of these types reach the database as the same parameter.
_EXACT_TYPES = frozenset({str, int, bool, type(None), bytes, uuid.UUID})
# Values compared by their repr as well: Decimal("1.0") == Decimal("1") and 0.0 == -0.0, but a text
# column compares them as different strings; two datetimes of one instant may carry different zones.
_REPR_TYPES = frozenset({float, decimal.Decimal, datetime.date, datetime.datetime, datetime.time, datetime.timedelta})


class _Opaque(Exception):
    """A part of a ``Q`` that cannot be compared safely."""


def group_key(node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any]) -> Hashable:
    """Subscribers with equal keys are the same caller: they see exactly the same events and bodies.

    The token's claims count except its validity times and id; so does what the caller
    was granted (which ``JWTTokenDjangoPermissions`` reads from the database).
    """
    path = path_key(ids)
    if access is None:
        return (id(node), path, None)
    claims = json.dumps(access.token.model_dump(exclude=_PER_TOKEN), sort_keys=True, default=str)
    return (id(node), path, claims, str(access.scope), tuple(sorted(access.granted_scopes)))


def path_key(ids: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, str(value)) for name, value in ids.items()))


def chain(node: DjangoRouterSchema) -> tuple[DjangoRouterSchema, ...]:
    """The node and its ancestors: every row filter that decides what it shows."""
    return (node, *node.ancestors)


def row_filters(node: DjangoRouterSchema, access: Access | None) -> dict[DjangoRouterSchema, Q]:
    """What each row filter of the chain returns for ``access``, asked now."""
    return {level: level.objects_filter(access) for level in chain(node)}


def visibility_key(
    filters: Mapping[DjangoRouterSchema, Q], access: Access | None, ids: Mapping[str, Any]
) -> Hashable | None:
    """Equal keys see the same rows (see the module docstring); None: compare with nobody."""
    try:
        answers = tuple(q_key(filters[level]) for level in filters)
    except _Opaque:
        return None
    return (path_key(ids), access.tenant_id if access is not None else None, answers)


def q_key(q: Q) -> Hashable:
    """A hashable form of a plain ``Q`` in which equal means "selects the same rows"; raises ``_Opaque``."""
    if type(q) is not Q:
        raise _Opaque(q)
    children: list[Hashable] = []
    for child in q.children:
        if isinstance(child, Q):
            children.append(q_key(child))
        elif isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str):
            children.append((child[0], _value_key(child[1])))
        else:
            raise _Opaque(child)
    return (q.connector, q.negated, tuple(children))


def is_plain(q: Q) -> bool:
    """Whether ``q`` is plain (see the module docstring): comparable by ``q_key``."""
    try:
        q_key(q)
    except _Opaque:
        return False
    return True


def _value_key(value: Any) -> Hashable:
    kind = type(value)
    if kind in _EXACT_TYPES:
        return (kind, value)
    if kind in _REPR_TYPES:
        return (kind, repr(value))
    if isinstance(value, enum.Enum):
        return (kind, _value_key(value.value))
    if kind is F:
        return (kind, value.name)
    if kind in (list, tuple):
        return (kind, tuple(_value_key(item) for item in value))
    if kind in (set, frozenset):
        return (kind, frozenset(_value_key(item) for item in value))
    if isinstance(value, models.Model) and value.pk is not None:
        # By every loaded column, not the primary key alone: a foreign key with ``to_field``
        # compares another column of the instance. A deferred column is not read here.
        loaded = value.__dict__
        if any(f.attname not in loaded for f in value._meta.concrete_fields):
            raise _Opaque(value)
        return (kind, tuple((f.attname, _value_key(loaded[f.attname])) for f in value._meta.concrete_fields))
    raise _Opaque(value)


def render_key(node: DjangoRouterSchema, access: Access | None) -> frozenset[str]:
    """The caller's grants that change how the node's read schema renders."""
    relevant = scopes_in_schema(node.get_mapping.schema)
    return frozenset() if access is None or not relevant else relevant & access.granted_scopes

"""Row-chain queries built once per shape, then filled with each request's ids.

Every item request, every create and every child list asks for the same nested query:
the node's row filter, its primary key, and its parent ``IN (SELECT pk FROM parent
WHERE <parent's filter> AND pk = ...)`` up to the root. Turning those ``Q`` objects into
Django's query tree (resolving names, joins and lookups at every level) costs more CPU
than the database spends answering it: a fifth of a PATCH. The tree's shape depends on
the row filters — their structure and their values, such as the caller's tenant — and
not on the ids in the path. So once a shape has been asked for twice, it is built one
more time with *probe* ids of the right type, the spots where the probes landed are
recorded, and from then on each request clones that query and puts its own ids there
(through the lookup's own constructor, so they are prepared exactly as ``filter()``
prepares them). The SQL, the number of statements and the rows are the same.

Only what is safe to key is kept:

* a row filter counts by value: two tenants never share a query, and a filter whose
  values are not plain literals (an ``F()``, a subquery, ``Exists``) is built anew
  every time, as before;
* a default manager must add nothing of its own (no filter, annotation, ordering or
  ``select_related``); one that filters by the date or a context variable would be
  frozen into the query, so its chains are built anew every time;
* a shape whose values churn (a filter holding ``now()``) is never seen twice and
  costs nothing beyond its key.
"""

from __future__ import annotations

import copy
import datetime
import enum
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Union

from django.db import models
from django.db.models import Q, QuerySet
from django.db.models.lookups import Exact, Lookup
from django.db.models.sql.query import Query
from django.db.models.sql.where import WhereNode

MAX_SHAPES = 1024  # templates kept per process; the cache starts again when full
_PLAIN_TYPES = (str, int, float, Decimal, uuid.UUID, datetime.date, datetime.time, datetime.timedelta)


class _Unkeyable(Exception):
    pass


def filter_key(q: Q) -> tuple[Any, ...] | None:
    """A hashable key naming ``q`` by structure, lookups, value types and values; None if not plain."""
    try:
        return _q_key(q)
    except _Unkeyable:
        return None


def _q_key(q: Q) -> tuple[Any, ...]:
    return (type(q), q.connector, q.negated, tuple(_child_key(child) for child in q.children))


def _child_key(child: Any) -> Any:
    if isinstance(child, Q):
        return _q_key(child)
    if isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str):
        return (child[0], _value_key(child[1]))
    raise _Unkeyable  # an expression (Exists, RawSQL ...) standing in the Q


def _value_key(value: Any) -> Any:
    # The type is part of the key: 1 == 1.0 == True, but a CharField stores "1" and "1.0".
    if value is None or isinstance(value, bool):
        return (type(value), value)
    if isinstance(value, enum.Enum):
        if not isinstance(value.value, _PLAIN_TYPES):
            raise _Unkeyable
        return (type(value), value.value)
    if isinstance(value, (Decimal, float, datetime.datetime, datetime.time)):
        # Equal but written differently (1.0 and 1, the same instant in two time zones):
        # the text a CharField would store differs, so the spelling is part of the key.
        return (type(value), value, repr(value))
    if isinstance(value, _PLAIN_TYPES):
        return (type(value), value)
    if type(value) in (list, tuple):
        return (type(value), tuple(_value_key(item) for item in value))
    raise _Unkeyable


def plain_manager_rows(model: type[models.Model]) -> QuerySet[Any] | None:
    """``model``'s default manager queryset, if it adds nothing to a bare query; else None."""
    rows = model._default_manager.get_queryset()
    query = rows.query
    plain = (
        type(query) is Query
        and not query.where.children
        and not query.annotations
        and not query.extra
        and not query.order_by
        and not query.extra_order_by
        and query.select_related is False
        and not query.distinct
        and query.deferred_loading == (frozenset(), True)
        and query.low_mark == 0
        and query.high_mark is None
        and not query.values_select
        and not query.combinator
    )
    return rows if plain else None


# Where the probes landed: for each child index of a WhereNode, what to put there.
@dataclass(frozen=True)
class _Value:
    """An ``Exact`` lookup whose value is the id at ``position``."""

    position: int


@dataclass(frozen=True)
class _Node:
    """A nested WhereNode holding probes (it is cloned along with the query)."""

    children: dict[int, _Entry]


@dataclass(frozen=True)
class _Subquery:
    """A lookup whose right-hand side is a subquery holding probes (cloned per request)."""

    children: dict[int, _Entry]


_Entry = Union[_Value, _Node, _Subquery]  # noqa: UP007 - a runtime alias


@dataclass(frozen=True, eq=False)
class ChainTemplate:
    """A built chain query and where each id goes (``fields``/``probes``: the key column of each id)."""

    query: Query
    children: dict[int, _Entry]
    fields: tuple[models.Field[Any, Any], ...]
    probes: tuple[Any, ...]

    def fill(self, values: Sequence[Any]) -> Query:
        query = self.query.clone()  # clones the WhereNodes; lookups are shared, and replaced where filled
        _fill(query.where, self.children, values)
        return query


def _fill(where: WhereNode, children: dict[int, _Entry], values: Sequence[Any]) -> None:
    for index, entry in children.items():
        child: Any = where.children[index]
        if isinstance(entry, _Value):
            where.children[index] = type(child)(child.lhs, values[entry.position])
        elif isinstance(entry, _Node):
            _fill(child, entry.children, values)
        else:
            subquery = child.rhs.clone()
            _fill(subquery.where, entry.children, values)
            lookup = copy.copy(child)
            lookup.rhs = subquery
            where.children[index] = lookup


def _locate(where: WhereNode, probes: Sequence[Any], found: list[int]) -> dict[int, _Entry]:
    """The entries of ``where`` holding probes; ``found`` counts each probe's hits."""
    children: dict[int, _Entry] = {}
    for index, child in enumerate(where.children):
        if isinstance(child, WhereNode):
            nested = _locate(child, probes, found)
            if nested:
                children[index] = _Node(nested)
        elif isinstance(child, Lookup) and isinstance(child.rhs, Query):
            nested = _locate(child.rhs.where, probes, found)
            if nested:
                children[index] = _Subquery(nested)
        elif isinstance(child, Lookup):
            for position, probe in enumerate(probes):
                if type(child.rhs) is type(probe) and child.rhs == probe:
                    found[position] += 1
                    if not isinstance(child, Exact):
                        found[position] += 1  # only equality is refilled: mark it unusable
                    children[index] = _Value(position)
    return children


def probe_for(field: models.Field) -> Any:
    """A value of ``field``'s type that no real row filter holds, or None for other key types."""
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, (models.AutoField, models.BigAutoField, models.SmallAutoField, models.IntegerField)):
        return -(2**31) + uuid.uuid4().int % 1_000_000  # negative: outside every serial's range
    if isinstance(field, models.CharField):
        return f"djfapi-probe-{uuid.uuid4().hex}"
    return None


def build_template(
    query: Query, fields: Sequence[models.Field[Any, Any]], probes: Sequence[Any]
) -> ChainTemplate | None:
    """The template of ``query`` (built with ``probes`` as its ids), if each probe landed once in an ``Exact``."""
    found = [0] * len(probes)
    children = _locate(query.where, probes, found)
    if any(count != 1 for count in found):
        return None
    return ChainTemplate(query, children, tuple(fields), tuple(probes))


class _Unknown:
    pass


_UNKNOWN = _Unknown()  # not built yet (None means: built, and no template is possible)


class TemplateCache:
    """Chain templates by shape, built on a shape's second sighting (thread-safe)."""

    def __init__(self, size: int = MAX_SHAPES) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._seen: set[Any] = set()
        self._templates: dict[Any, ChainTemplate | None] = {}

    def get(self, key: Any, build: Callable[[], ChainTemplate | None]) -> ChainTemplate | None:
        """The template of ``key``: None the first time (and for shapes that cannot have one)."""
        template = self._templates.get(key, _UNKNOWN)
        if not isinstance(template, _Unknown):
            return template
        with self._lock:
            if key not in self._seen:
                if len(self._seen) >= self._size:
                    self._seen.clear()
                self._seen.add(key)
                return None
        template = build()
        with self._lock:
            if len(self._templates) >= self._size:
                self._templates.clear()
            self._templates[key] = template
        return template

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
            self._templates.clear()

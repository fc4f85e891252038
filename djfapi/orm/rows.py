"""Read rows as plain values instead of model instances, when a schema allows it.

Building a Django model instance per row (and per prefetched child row) is most of the
cost of a list: the profile of a page of 50 companies with nested departments spends
three quarters of its time in ``QuerySet.__iter__``. A read schema whose fields are all
columns — of the model, of the rows its foreign keys point to (``department.name``),
or of rows in nested lists of the same kind — can be read with ``values()`` queries
instead: one for the rows, one per nested list (grouped by the parent's key), the same
count as the prefetch plan, without instances. Schemas with ``orm_method`` fields,
properties or nested objects, and router schemas with a hand-made ``query_plan``, keep
reading instances.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, F, OrderBy, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from djfapi.orm.keys import hashable_key, hashable_keys
from djfapi.orm.many import relation
from djfapi.orm.mapping import SCHEMA_CACHE_SIZE, FieldKind, FieldMapping, SchemaMapping
from djfapi.orm.plain import column_type, field_is_plain, keys_in_order, list_of, plain_schema, value_matches
from djfapi.orm.plan import default_ordering, nested_limit
from djfapi.orm.side_effects import saves_only_themselves
from djfapi.orm.statements import read_children

PK = "pk"


class TooManyRows(Exception):
    """A read went past its row budget; ``read`` rows were counted when it stopped."""

    def __init__(self, read: int, budget: int) -> None:
        super().__init__(f"more than {budget} rows")
        self.read = read
        self.budget = budget


class RowBudget:
    """How many rows, nested ones included, one response may read.

    A page of 1,000 companies with 100 cost centres each is 101,000 rows: read whole,
    24 MB of body and 150 MiB of server memory for one request. Reads count against the
    budget as they go and stop just past it (``TooManyRows``), so a refused request
    costs about what an allowed one does.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def take(self, rows: int) -> None:
        self.used += rows
        if self.used > self.limit:
            raise TooManyRows(self.used, self.limit)

    def require(self, rows: int) -> None:
        """Raise TooManyRows now if ``rows`` more would not fit (counts nothing)."""
        if self.used + rows > self.limit:
            raise TooManyRows(self.used + rows, self.limit)


@dataclass(frozen=True)
class NestedRows:
    """A nested list read as values: the child rows whose ``parent_column`` is the parent's key.

    ``limit`` caps the rows per parent: the first ones in ``ordering``.
    """

    name: str
    parent_column: str
    ordering: tuple[str, ...]
    reader: ValuesReader
    limit: int | None = None
    flatten: str | None = None  # read only this column of each child row: a list of ids, not of dicts


@dataclass(frozen=True)
class ValuesReader:
    """Reads one schema's rows with ``values()`` (see the module docstring)."""

    model: type[models.Model]
    columns: tuple[tuple[str, str], ...]  # (schema field name, ORM lookup)
    nested: tuple[NestedRows, ...]
    #: Its rows render as JSON as they are, with the same bytes as through the schema (``djfapi.orm.plain``).
    plain: bool = False

    def read(self, queryset: QuerySet[Any], budget: RowBudget | None = None) -> list[dict[str, Any]]:
        """The rows of ``queryset`` (filtered, ordered, maybe sliced) as schema-keyed dicts."""
        return self._shape(self._rows(queryset, budget), budget)

    def read_window(
        self, queryset: QuerySet[Any], limit: int, keys: Sequence[str], budget: RowBudget
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` rows of ``queryset`` as schema-keyed dicts, and the ``keys`` values of the last
        one when a row follows it (what a keyset cursor positions by), else None. One query more than
        ``limit`` rows tells whether there is a next page; the nested lists are read for the page only.
        """
        rows = list(queryset.values(*self._selected(*keys))[: limit + 1])
        page = rows[:limit]
        budget.take(len(page))
        last = {key: page[-1][key] for key in keys} if len(rows) > limit else None
        return self._shape(page, budget), last

    def read_keyed(self, queryset: QuerySet[Any]) -> dict[Any, dict[str, Any]]:
        """The rows of ``queryset`` by primary key (to answer in the order rows were written)."""
        rows = self._rows(queryset, None)
        keys = [row[self._key] for row in rows]
        return dict(zip(keys, self._shape(rows, None), strict=True))

    def read_written(
        self, instances: Sequence[models.Model], created: Mapping[tuple[int, str], list[models.Model]] | None = None
    ) -> list[dict[str, Any]] | None:
        """Rows just written, as schema-keyed dicts, without reading them again; None when it cannot.

        The instances hold what was written (defaults, ``auto_now`` and ``save()``'s own
        changes included), normalised as the database would give it back (see
        ``written_value``); nested lists are still read, one query each, since rows other
        than these may belong to them. None — read the rows instead — when a column is not
        one of the model's own plain columns, or an instance does not hold its value
        (deferred, or an expression the database evaluates).

        ``created``: the instances are new, and these are the nested rows the request
        created under each (by ``id()`` of the parent instance and field name; a list
        not named is empty). Such a list is answered from them too where nothing else
        can have added a row (``_known_children``).
        """
        columns = self._own_columns
        if columns is None:
            return None
        rows = []
        for instance in instances:
            if instance.get_deferred_fields():
                return None
            row = {}
            for lookup, field, python_type in columns:
                value = written_value(field, getattr(instance, field.attname))
                if value is not None and not isinstance(value, python_type):
                    return None  # an expression the database evaluates, or a value of another type
                row[lookup] = value
            row.setdefault(self._key, instance.pk)
            rows.append(row)
        known = self._known_children(instances, created) if created is not None else {}
        return self._shape(rows, None, known)

    def _known_children(
        self, parents: Sequence[models.Model], created: Mapping[tuple[int, str], list[models.Model]]
    ) -> dict[str, dict[Any, list[dict[str, Any]]]]:
        """The nested lists of new ``parents`` that are exactly what the request created in them.

        Only lists ordered by a primary key Python orders as the database does (a UUID, an
        integer), of rows whose own columns can be answered as written and whose default
        manager shows every row, and only when saving neither the parents nor the children
        can add rows behind djfapi's back (``djfapi.orm.side_effects``). Every other list
        is read.
        """
        if not saves_only_themselves(self.model):
            return {}
        known = {}
        for nested in self.nested:
            child = nested.reader
            if nested.flatten or nested.ordering != (PK,) or not _orders_like_database(child.model):
                continue
            if not saves_only_themselves(child.model) or child.model._default_manager.all().query.where:
                continue  # a row could be added behind djfapi's back, or a created one not be shown
            grouped: dict[Any, list[dict[str, Any]]] = {}
            for parent in parents:
                rows = sorted(created.get((id(parent), nested.name), []), key=_primary_key)
                shaped = child.read_written(rows[: nested.limit] if nested.limit is not None else rows)
                if shaped is None:
                    break
                grouped[hashable_key(parent.pk)] = shaped
            else:
                known[nested.name] = grouped
        return known

    @cached_property
    def _own_columns(self) -> tuple[tuple[str, models.Field[Any, Any], type], ...] | None:
        return _own_columns(self)

    @cached_property
    def _key(self) -> str:
        """The primary key as the rows hold it: under its own name when it is one of the columns
        (read once, converted once: a UUID costs a few microseconds per row), else as ``pk``."""
        pk = self.model._meta.pk
        lookups = {lookup for _, lookup in self.columns}
        return next((name for name in (pk.attname, pk.name) if name in lookups), PK)

    @cached_property
    def _as_read(self) -> frozenset[str] | None:
        """The column names, when every field is read under its own name: a row then becomes its
        item by dropping the keys read besides (the key, a parent column), not by a copy."""
        if all(name == lookup for name, lookup in self.columns):
            return frozenset(name for name, _ in self.columns)
        return None

    def _selected(self, *extra: str) -> list[str]:
        """The ``values()`` names: the columns in order, then the key and ``extra`` where not among them."""
        return list(dict.fromkeys([*(lookup for _, lookup in self.columns), self._key, *extra]))

    def selected(self) -> list[str]:
        """What to read of each row for ``read_fetched``: ``values(*reader.selected())``."""
        return self._selected()

    def read_fetched(self, rows: list[dict[str, Any]], budget: RowBudget) -> list[dict[str, Any]]:
        """``read`` of rows already fetched as ``values(*self.selected())[: budget.remaining + 1]``."""
        budget.take(len(rows))
        return self._shape(rows, budget)

    def _rows(self, queryset: QuerySet[Any], budget: RowBudget | None) -> list[dict[str, Any]]:
        values = queryset.values(*self._selected())
        rows = list(values[: budget.remaining + 1] if budget is not None else values)
        if budget is not None:
            budget.take(len(rows))
        return rows

    def _shape(
        self,
        rows: list[dict[str, Any]],
        budget: RowBudget | None,
        known: Mapping[str, dict[Any, list[dict[str, Any]]]] | None = None,
    ) -> list[dict[str, Any]]:
        """The rows as items, their nested lists read (unless ``known``) and attached. Rows whose
        keys are the schema's names become the items themselves (see ``_as_read``)."""
        if not rows:
            return []
        key = self._key
        keys = [row[key] for row in rows]
        known = known or {}
        children = {
            nested.name: known[nested.name] if nested.name in known else nested.reader._children(nested, keys, budget)
            for nested in self.nested
        }
        found_by = hashable_keys(keys) if self.nested else keys  # how ``_children`` keys its groups
        names = self._as_read
        if names is not None:
            extras = [name for name in rows[0] if name not in names]
            items = rows
            for row in rows:
                for extra in extras:
                    del row[extra]
        else:
            items = [{name: row[lookup] for name, lookup in self.columns} for row in rows]
        for index, item in enumerate(items):
            for nested in self.nested:
                found = children[nested.name].get(found_by[index], [])
                item[nested.name] = [child[nested.flatten] for child in found] if nested.flatten else found
        return items

    def _children(
        self, nested: NestedRows, parent_keys: Iterable[Any], budget: RowBudget | None
    ) -> dict[Any, list[dict[str, Any]]]:
        keys = list(parent_keys)
        rows = self._first_rows(keys, nested, budget)
        parents = hashable_keys([row[nested.parent_column] for row in rows])  # before _shape drops the column
        grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for parent, shaped in zip(parents, self._shape(rows, budget), strict=True):
            grouped[parent].append(shaped)
        return grouped

    def _first_rows(self, keys: list[Any], nested: NestedRows, budget: RowBudget | None) -> list[dict[str, Any]]:
        """The children's rows, at most ``nested.limit`` per parent, counted against ``budget``.

        Mostly one plain query: when the parents cannot hold more than the cap allows, all
        their children are fetched (bounded by that number) and the first per parent kept.
        Only when they hold more does a window function pick the first per parent — after
        counting first, if the capped rows might not fit the budget.
        """
        columns = tuple(self._selected(nested.parent_column))
        limit = nested.limit
        bound = len(keys) * limit if limit is not None else None
        if limit is not None and bound is not None and (budget is None or bound <= budget.remaining):
            # the common case, a statement compiled once per shape (djfapi.orm.statements)
            rows = read_children(self.model, nested.parent_column, keys, nested.ordering, columns, bound + 1)
            if len(rows) <= bound:  # every child of these parents: keep the first ones of each
                kept = _first_per_parent(rows, nested.parent_column, limit)
                if budget is not None:
                    budget.take(len(kept))
                return kept
        # Built only here: a queryset costs more to build than the common case's whole read.
        children = self.model._default_manager.filter(**{f"{nested.parent_column}__in": keys})
        if nested.limit is None:
            return _fetch(children.order_by(*nested.ordering).values(*columns), budget)
        if bound is not None and budget is not None and bound > budget.remaining:
            _count_first(children, nested, budget)
        rank = Window(RowNumber(), partition_by=[F(nested.parent_column)], order_by=_order(nested.ordering))
        # Picked in a subquery: the outer query stays a plain one (Django's values() over a
        # filtered window with joins trips over its columns).
        first = children.annotate(_djfapi_rank=rank).filter(_djfapi_rank__lte=nested.limit)
        capped = self.model._default_manager.filter(pk__in=first.values(PK)).order_by(*nested.ordering)
        return _fetch(capped.values(*columns), budget)


def _primary_key(instance: models.Model) -> Any:
    return instance.pk


def _orders_like_database(model: type[models.Model]) -> bool:
    """Python sorts the primary keys of ``model`` as the database does (no collation involved)."""
    return isinstance(model._meta.pk, models.UUIDField | models.IntegerField)


def _own_columns(reader: ValuesReader) -> tuple[tuple[str, models.Field[Any, Any], type], ...] | None:
    """(lookup, field, type of its values) of each column of ``reader``, if all are plain columns of its own model.

    Plain: a value that comes back from the database as it went in, up to what
    ``written_value`` normalises. A column computed by the database (``db_default``, a
    generated field) or a type with a conversion of its own (JSON, files, custom fields)
    is not.
    """
    columns = []
    by_attname = {f.attname: f for f in reader.model._meta.concrete_fields}
    for _, lookup in reader.columns:
        field = by_attname.get(lookup)
        python_type = column_type(field) if field is not None else None
        if (
            field is None
            or python_type is None
            or field.db_default is not models.NOT_PROVIDED
            or getattr(field, "generated", False)
        ):
            return None
        columns.append((lookup, field, python_type))
    return tuple(columns)


def written_value(field: models.Field[Any, Any], value: Any) -> Any:
    """``value`` as the database returns it once ``field`` stored it: decimals at the column's
    places, times with a zone in UTC (``USE_TZ``; naive ones as Django stores them)."""
    if value is None:
        return None
    if isinstance(value, models.expressions.Combinable):
        return value  # evaluated by the database: not a value to answer with
    if isinstance(field, models.DecimalField):
        return field.to_python(value).quantize(_places(field.decimal_places))
    if isinstance(field, models.DateTimeField) and isinstance(value, datetime.datetime) and settings.USE_TZ:
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_default_timezone())
        return value.astimezone(datetime.UTC)
    return value


@lru_cache(maxsize=32)
def _places(decimal_places: int) -> Decimal:
    return Decimal(1).scaleb(-decimal_places)


def _fetch(values: QuerySet[Any], budget: RowBudget | None) -> list[dict[str, Any]]:
    """The rows, never more than the budget has left (plus one, to know it ran out)."""
    rows = list(values[: budget.remaining + 1] if budget is not None else values)
    if budget is not None:
        budget.take(len(rows))
    return rows


def _first_per_parent(rows: list[dict[str, Any]], parent_column: str, limit: int) -> list[dict[str, Any]]:
    if len(rows) <= limit:
        return rows  # no parent can have more than the cap: nothing to count (the common case)
    taken: dict[Any, int] = defaultdict(int)
    kept = []
    for row in rows:
        parent = row[parent_column]
        if taken[parent] < limit:
            taken[parent] += 1
            kept.append(row)
    return kept


def _count_first(all_children: QuerySet[Any], nested: NestedRows, budget: RowBudget) -> None:
    """Refuse before fetching when the children cannot fit the budget.

    Only asked when the page's parents times the cap could exceed what is left: then a
    cheap bounded count of all children (enough when they fit anyway), and if not, the
    capped count from one count per parent (an index scan; a window over every child
    costs four times as much). A refused page thus reads counts, not rows.
    """
    if all_children.values(PK)[: budget.remaining + 1].count() <= budget.remaining:
        return
    if nested.limit is None:
        budget.require(budget.remaining + 1)
    per_parent = all_children.order_by().values(nested.parent_column).annotate(_djfapi_rows=Count(PK))
    budget.require(sum(min(rows, nested.limit) for rows in per_parent.values_list("_djfapi_rows", flat=True)))


def _order(ordering: tuple[str, ...]) -> list[OrderBy]:
    return [F(term[1:]).desc() if term.startswith("-") else F(term).asc() for term in ordering]


def count_rows(items: Iterable[dict[str, Any]]) -> int:
    """Rows in read data: each item, plus the items of its nested lists at any depth."""
    return sum(1 + _nested_rows(item) for item in items)


def _nested_rows(item: dict[str, Any]) -> int:
    rows = 0
    for value in item.values():
        if isinstance(value, list):
            rows += count_rows(child for child in value if isinstance(child, dict))
        elif isinstance(value, dict):
            rows += _nested_rows(value)  # a nested object comes with its row: only its lists add rows
    return rows


@lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def values_reader(mapping: SchemaMapping, limit: int | None = None) -> ValuesReader | None:
    """The values reader of ``mapping``, or None when it needs instances.

    ``limit`` caps every nested list that does not set its own ``max_items``.
    """
    columns: list[tuple[str, str]] = []
    nested: list[NestedRows] = []
    fields = mapping.schema.model_fields
    plain = plain_schema(mapping.schema)
    for f in mapping.fields:
        if f.method is not None or not isinstance(f.model_field, models.Field | models.ManyToOneRel):
            return None  # a method, a property, a reverse one-to-one: needs the instance
        info = fields[f.name]
        plain = plain and field_is_plain(info, f.name)
        if f.kind is FieldKind.VALUE:
            if not isinstance(f.model_field, models.Field) or f.lookup is None or f.model_field.many_to_many:
                return None
            columns.append((f.name, f.lookup))
            python_type = column_type(f.model_field)
            # through a relation the value is None when the related row is missing
            nullable = f.model_field.null or "__" in f.lookup
            plain = plain and python_type is not None and value_matches(info.annotation, python_type, nullable)
        elif f.kind is FieldKind.IDS:
            ids = _many_ids(f, nested_limit(f, limit))
            nested.append(ids)
            python_type = column_type(relation(f).target)
            plain = plain and python_type is not None and list_of(info.annotation) is python_type
        elif f.kind is FieldKind.LIST and isinstance(f.model_field, models.ManyToOneRel) and f.nested is not None:
            child = values_reader(f.nested, limit)
            if child is None:
                return None
            related = f.nested.model
            nested.append(
                NestedRows(
                    f.name, f.model_field.field.attname, default_ordering(related), child, nested_limit(f, limit)
                )
            )
            plain = plain and child.plain and list_of(info.annotation) is f.nested.schema
        else:
            return None
    # _shape writes the columns first, then the nested lists
    plain = plain and keys_in_order(mapping.schema, [name for name, _ in columns] + [n.name for n in nested])
    return ValuesReader(mapping.model, tuple(columns), tuple(nested), plain)


def _many_ids(f: FieldMapping, limit: int | None) -> NestedRows:
    """A many-to-many list of ids, read from the through table alone (no join to the related rows).

    Ordered as the instance reader orders them (the related model's order, then its
    key), so both readers answer the same body and the same ETag.
    """
    many = relation(f)
    target = many.target
    ordering = (*(_through(term, target) for term in default_ordering(many.related_model)), "pk")
    reader = ValuesReader(many.through, ((IDS_COLUMN, target.attname),), ())
    return NestedRows(f.name, many.source.attname, ordering, reader, limit, flatten=IDS_COLUMN)


IDS_COLUMN = "id"


def _through(term: str, target: models.ForeignKey) -> str:
    """An order term of the related model, as seen from the through model."""
    descending, name = term.startswith("-"), term.lstrip("-")
    column = target.attname if name in ("pk", target.related_model._meta.pk.name) else f"{target.name}__{name}"
    return f"-{column}" if descending else column

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

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import models
from django.db.models import QuerySet

from djfapi.orm.mapping import FieldKind, SchemaMapping
from djfapi.orm.plan import default_ordering

PK = "pk"


@dataclass(frozen=True)
class NestedRows:
    """A nested list read as values: the child rows whose ``parent_column`` is the parent's key."""

    name: str
    parent_column: str
    ordering: tuple[str, ...]
    reader: ValuesReader


@dataclass(frozen=True)
class ValuesReader:
    """Reads one schema's rows with ``values()`` (see the module docstring)."""

    model: type[models.Model]
    columns: tuple[tuple[str, str], ...]  # (schema field name, ORM lookup)
    nested: tuple[NestedRows, ...]

    def read(self, queryset: QuerySet[Any]) -> list[dict[str, Any]]:
        """The rows of ``queryset`` (filtered, ordered, maybe sliced) as schema-keyed dicts."""
        rows = list(queryset.values(PK, *(lookup for _, lookup in self.columns)))
        return self._shape(rows)

    def _shape(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = [row[PK] for row in rows]
        children = {nested.name: nested.reader._children(nested, keys) for nested in self.nested} if keys else {}
        shaped = []
        for row in rows:
            item = {name: row[lookup] for name, lookup in self.columns}
            for nested in self.nested:
                item[nested.name] = children.get(nested.name, {}).get(row[PK], [])
            shaped.append(item)
        return shaped

    def _children(self, nested: NestedRows, parent_keys: Iterable[Any]) -> dict[Any, list[dict[str, Any]]]:
        queryset = self.model._default_manager.filter(**{f"{nested.parent_column}__in": list(parent_keys)})
        rows = list(
            queryset.order_by(*nested.ordering).values(
                nested.parent_column, PK, *(lookup for _, lookup in self.columns)
            )
        )
        grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for row, shaped in zip(rows, self._shape(rows), strict=True):
            grouped[row[nested.parent_column]].append(shaped)
        return grouped


@cache
def values_reader(mapping: SchemaMapping) -> ValuesReader | None:
    """The values reader of ``mapping``, or None when it needs instances."""
    columns: list[tuple[str, str]] = []
    nested: list[NestedRows] = []
    for f in mapping.fields:
        if f.method is not None or not isinstance(f.model_field, models.Field | models.ManyToOneRel):
            return None  # a method, a property, a reverse one-to-one: needs the instance
        if f.kind is FieldKind.VALUE:
            if not isinstance(f.model_field, models.Field) or f.lookup is None or f.model_field.many_to_many:
                return None
            columns.append((f.name, f.lookup))
        elif f.kind is FieldKind.LIST and isinstance(f.model_field, models.ManyToOneRel) and f.nested is not None:
            child = values_reader(f.nested)
            if child is None:
                return None
            related = f.nested.model
            nested.append(NestedRows(f.name, f.model_field.field.attname, default_ordering(related), child))
        else:
            return None
    return ValuesReader(mapping.model, tuple(columns), tuple(nested))

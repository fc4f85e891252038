"""The query plan: which relations to join or prefetch so that reading never queries.

``derive_plan(mapping)`` walks a schema tree once: a nested object (or a field read
through a foreign key) becomes ``select_related``; a nested list becomes a prefetch
whose queryset carries the nested schema's own plan and a deterministic order. A list
of 5 or of 500 rows then costs the same number of queries: one for the rows and one
per nested list. Print a router schema's ``query_plan`` to see it; pass
``query_plan=`` to replace or adjust it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import Prefetch, QuerySet

from djfapi.orm.mapping import FieldKind, SchemaMapping


@dataclass(frozen=True)
class NestedPrefetch:
    """Prefetch ``lookup`` (rows of ``model``) ordered by ``ordering``, reading them with ``plan``."""

    lookup: str
    model: type[models.Model]
    ordering: tuple[str, ...]
    plan: QueryPlan

    def prefetch(self) -> Prefetch:
        queryset = self.model._default_manager.order_by(*self.ordering)
        return Prefetch(self.lookup, queryset=self.plan.apply(queryset))


@dataclass(frozen=True)
class QueryPlan:
    """Relations to ``select_related`` and to prefetch, applied together by ``apply``.

    ``prefetch_related`` takes anything ``QuerySet.prefetch_related`` does (names or
    ``Prefetch`` objects); ``nested`` holds the derived prefetches of nested lists.
    """

    select_related: tuple[str, ...] = ()
    prefetch_related: tuple[str | Prefetch, ...] = ()
    nested: tuple[NestedPrefetch, ...] = field(default=())

    def apply(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.select_related:
            queryset = queryset.select_related(*self.select_related)
        lookups = [*self.prefetch_related, *(item.prefetch() for item in self.nested)]
        if lookups:
            queryset = queryset.prefetch_related(*lookups)
        return queryset

    def merged(self, other: QueryPlan) -> QueryPlan:
        """This plan plus ``other``'s relations (to add what a method field needs)."""
        return QueryPlan(
            select_related=_unique((*self.select_related, *other.select_related)),
            prefetch_related=(*self.prefetch_related, *other.prefetch_related),
            nested=(*self.nested, *other.nested),
        )

    @property
    def query_count(self) -> int:
        """Queries a read through this plan costs: one, plus one per prefetch at any depth."""
        return 1 + len(self.prefetch_related) + sum(item.plan.query_count for item in self.nested)

    def describe(self, indent: str = "") -> list[str]:
        lines = []
        if self.select_related:
            lines.append(f"{indent}select_related: {', '.join(self.select_related)}")
        for item in self.prefetch_related:
            lookup = item.prefetch_through if isinstance(item, Prefetch) else item
            lines.append(f"{indent}prefetch_related: {lookup}")
        for nested in self.nested:
            lines.append(
                f"{indent}prefetch: {nested.lookup} ({nested.model.__name__}, order_by {', '.join(nested.ordering)})"
            )
            lines.extend(nested.plan.describe(indent + "  "))
        return lines

    def __str__(self) -> str:
        return "\n".join(self.describe()) or "(no related objects)"


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def default_ordering(model: type[models.Model]) -> tuple[str, ...]:
    """The model's ``Meta.ordering`` with the primary key as the final tie-breaker."""
    ordering = tuple(str(o) for o in model._meta.ordering or ())
    pk_terms = {"pk", "-pk", model._meta.pk.name, f"-{model._meta.pk.name}"}
    return ordering if pk_terms & set(ordering) else (*ordering, "pk")


def derive_plan(mapping: SchemaMapping) -> QueryPlan:
    """The plan that lets ``mapping`` read rows of its model without further queries."""
    select: list[str] = []
    nested: list[NestedPrefetch] = []
    _collect(mapping, "", select, nested)
    return QueryPlan(select_related=_unique(select), nested=tuple(nested))


def _collect(mapping: SchemaMapping, prefix: str, select: list[str], nested: list[NestedPrefetch]) -> None:
    for f in mapping.fields:
        if f.method is not None or not f.path:
            continue
        through = f.path[:-1]
        if through:
            select.append(prefix + "__".join(through))
        if f.kind is FieldKind.VALUE or f.nested is None or f.model_field is None:
            continue
        lookup = prefix + "__".join(f.path)
        if f.kind is FieldKind.OBJECT:
            select.append(lookup)
            _collect(f.nested, lookup + "__", select, nested)
        else:
            related = f.nested.model
            nested.append(NestedPrefetch(lookup, related, default_ordering(related), derive_plan(f.nested)))

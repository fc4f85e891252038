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

from djfapi.orm.mapping import FieldKind, FieldMapping, SchemaMapping


@dataclass(frozen=True)
class NestedPrefetch:
    """Prefetch ``lookup`` (rows of ``model``) ordered by ``ordering``, reading them with ``plan``.

    ``limit`` caps the rows per parent (the first ones in ``ordering``; Django slices a
    prefetch per parent with a window function), so one parent with 10,000 children
    costs what one with ``limit`` does.
    """

    lookup: str
    model: type[models.Model]
    ordering: tuple[str, ...]
    plan: QueryPlan
    limit: int | None = None

    def prefetch(self) -> Prefetch:
        queryset = self.plan.apply(self.model._default_manager.order_by(*self.ordering))
        return (
            CappedPrefetch(self.lookup, queryset, self.limit)
            if self.limit is not None
            else Prefetch(self.lookup, queryset=queryset)
        )


class CappedPrefetch(Prefetch):
    """A prefetch that reads at most ``limit`` rows per parent.

    Django slices a prefetch per parent (a window function over the fetched parents),
    but also filters the same queryset to build each parent's related manager, which a
    sliced queryset refuses. So the rows are fetched through the sliced queryset, and
    the managers are built from the unsliced one.
    """

    def __init__(self, lookup: str, queryset: QuerySet[Any], limit: int) -> None:
        super().__init__(lookup, queryset=queryset)
        self.capped = queryset[:limit]

    def get_current_querysets(self, level: int) -> list[QuerySet[Any]] | None:
        if self.get_current_prefetch_to(level) == self.prefetch_to:
            return [self.capped]
        return None


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
            cap = f", first {nested.limit}" if nested.limit is not None else ""
            lines.append(
                f"{indent}prefetch: {nested.lookup} ({nested.model.__name__}, order_by {', '.join(nested.ordering)}"
                f"{cap})"
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


def nested_limit(f: FieldMapping, default: int | None) -> int | None:
    """The cap of the nested list ``f``: its ``Field(max_items=...)``, else ``default``."""
    return f.options.max_items if f.options.max_items is not None else default


def derive_plan(mapping: SchemaMapping, limit: int | None = None) -> QueryPlan:
    """The plan that lets ``mapping`` read rows of its model without further queries.

    ``limit`` caps every nested list that does not set its own ``max_items``.
    """
    select: list[str] = []
    nested: list[NestedPrefetch] = []
    _collect(mapping, "", select, nested, limit)
    return QueryPlan(select_related=_unique(select), nested=_one_per_lookup(nested))


def _one_per_lookup(nested: list[NestedPrefetch]) -> tuple[NestedPrefetch, ...]:
    """One prefetch per relation: a list of ids reads the rows a nested list of the same relation fetches.

    (Django refuses two prefetches of one lookup with different querysets.)
    """
    chosen: dict[str, NestedPrefetch] = {}
    for item in nested:
        kept = chosen.get(item.lookup)
        if kept is None or (not kept.plan.nested and not kept.plan.select_related and item.plan != QueryPlan()):
            chosen[item.lookup] = item
    return tuple(chosen.values())


def _collect(
    mapping: SchemaMapping, prefix: str, select: list[str], nested: list[NestedPrefetch], limit: int | None
) -> None:
    for f in mapping.fields:
        if f.method is not None or not f.path:
            continue
        through = f.path[:-1]
        if through:
            select.append(prefix + "__".join(through))
        if f.kind is FieldKind.IDS and f.related_model is not None:
            ids_of = f.related_model  # a many-to-many list of ids: the related rows, prefetched
            lookup = prefix + "__".join(f.path)
            cap = nested_limit(f, limit)
            nested.append(NestedPrefetch(lookup, ids_of, default_ordering(ids_of), QueryPlan(), cap))
            continue
        if f.kind is FieldKind.VALUE or f.nested is None or f.model_field is None:
            continue
        lookup = prefix + "__".join(f.path)
        if f.kind is FieldKind.OBJECT:
            select.append(lookup)
            _collect(f.nested, lookup + "__", select, nested, limit)
        else:
            related = f.nested.model
            nested.append(
                NestedPrefetch(
                    lookup, related, default_ordering(related), derive_plan(f.nested, limit), nested_limit(f, limit)
                )
            )

"""Row filters and the ancestor chain, as querysets.

A node's rows are those its ``objects_filter`` lets the caller see (the tenant filter
by default), minus soft-deleted ones. Under a parent, they must also belong to a
parent row that is itself visible, all the way up: the chain is one query with
nested ``IN (SELECT ...)`` subqueries, so a department three levels down costs one
round trip, not three, and any ``Q`` a user writes composes without rewriting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from django.db import connections, models
from django.db.models import Q, QuerySet

from djfapi.conf import TENANT_FIELD
from djfapi.errors import NotFound
from djfapi.orm.writing import owner_value
from djfapi.routing import chain_statements, chain_templates
from djfapi.schemas.access import Access

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema


#: A filter no row passes.
NO_ROWS = Q(pk__in=[])
#: ``rows_in_chain`` without a primary key: every row of the chain.
_ANY: Any = object()


def has_tenant(model: type[models.Model]) -> bool:
    """Whether ``model`` has the ``tenant_id`` field the default filter matches against the token."""
    return any(f.name == TENANT_FIELD for f in model._meta.concrete_fields)


def default_objects_filter(model: type[models.Model], access: Access | None, owner: models.Field | None = None) -> Q:
    """The tenant's rows, and with an ``own`` scope the caller's own.

    ``Q(tenant_id=<token's ten>)`` when the model has a ``tenant_id`` field; when
    ``owner`` is given (a node's ``owner_field``) and the matched scope's selector is
    ``own``, also ``Q(<owner>=<token's sub>)``.
    """
    q = Q()
    if access is None:
        return q
    if has_tenant(model):
        q &= Q(**{TENANT_FIELD: access.tenant_id})
    if owner is not None and access.scope is not None and access.scope.selector == "own":
        q &= Q(**{owner.attname: owner_value(owner, access)})
    return q


def row_filter(node: DjangoRouterSchema, access: Access | None) -> Q:
    return node.objects_filter(access)


def visible_rows(node: DjangoRouterSchema, access: Access | None, *, include_deleted: bool = False) -> QuerySet[Any]:
    """The node's rows this caller may see, ignoring ancestors (soft-deleted ones only when asked)."""
    return node.model._default_manager.filter(_visible(node, access, include_deleted=include_deleted))


def _visible(node: DjangoRouterSchema, access: Access | None, *, include_deleted: bool = False) -> Q:
    q = row_filter(node, access)
    if node.delete_status is not None and not include_deleted:
        q &= ~Q(status=node.delete_status)
    return q


def rows_in_chain(
    node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any], *, pk: Any = _ANY
) -> QuerySet[Any]:
    """The node's visible rows under the visible ancestors named by ``ids`` (and only row ``pk``, if given).

    One ``filter()`` per level: each call clones the query, and a write's lookup of its
    row paid for four clones of a growing query (a fifth of a PATCH's CPU). The conditions
    added to the row filter are on the row's own columns, so one ``Q`` matches what
    chained filters would. A shape asked for again is not built again: see
    ``chain_templates`` (same SQL, ids filled in).
    """
    return _chain(node, access, ids, pk)[0]


def exists_in_chain(node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any], pk: Any) -> bool:
    """Whether ``rows_in_chain(node, access, ids, pk=pk)`` holds a row (``chain_statements``)."""
    rows, template, values = _chain(node, access, ids, pk)
    if template is not None:
        found = chain_statements.exists(template, rows, connections[rows.db], values)
        if found is not None:
            return found
    return rows.exists()


def values_in_chain(
    node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any], pk: Any, columns: Sequence[str], stop: int
) -> list[dict[str, Any]]:
    """``rows_in_chain(node, access, ids, pk=pk).values(*columns)[:stop]`` as a list (``chain_statements``)."""
    rows, template, values = _chain(node, access, ids, pk)
    if template is not None:
        found = chain_statements.values(template, rows, connections[rows.db], values, tuple(columns), stop)
        if found is not None:
            return found
    return list(rows.values(*columns)[:stop])


def object_in_chain(
    node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any], pk: Any, *, lock: bool = False
) -> models.Model | None:
    """Row ``pk`` of ``rows_in_chain`` as an instance (None if hidden or missing), locked for the rest of the
    transaction if asked, on databases that can (``chain_statements``)."""
    rows, template, values = _chain(node, access, ids, pk)
    if template is not None:
        found = chain_statements.instance(template, rows, connections[rows.db], values, lock=lock)
        if found is not None:
            return found[0]
    first = list((chain_statements.locked(rows) if lock else rows)[:1])  # filtered by primary key: no order needed
    return first[0] if first else None


def _chain(
    node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any], pk: Any
) -> tuple[QuerySet[Any], chain_templates.ChainTemplate | None, list[Any]]:
    """The chain's rows, and the template they were filled from with its values (if one was used)."""
    with_pk = pk is not _ANY
    levels = [node, *reversed(node.ancestors)]  # from the node up to the root
    filters = [_visible(level, access) for level in levels]
    values = [pk if with_pk else None, *(ids[level.id_name] for level in levels[1:])]
    template = _template(levels, filters, with_pk)
    if template is not None:
        rows = _plain_rows(levels)
        if rows is not None:
            used = values if with_pk else values[1:]
            rows.query = template.fill(used)
            return rows, template, used
    return node.model._default_manager.filter(_in_chain(levels, filters, values, 0, with_pk)), None, values


def _plain_rows(levels: list[DjangoRouterSchema]) -> QuerySet[Any] | None:
    """The node's bare queryset, if no level's default manager adds anything of its own right now."""
    rows = chain_templates.plain_manager_rows(levels[0].model)
    if rows is None or any(chain_templates.plain_manager_rows(level.model) is None for level in levels[1:]):
        return None
    return rows


def _in_chain(levels: list[DjangoRouterSchema], filters: list[Q], values: list[Any], depth: int, with_pk: bool) -> Q:
    node = levels[depth]
    q = filters[depth]
    if depth + 1 < len(levels):
        parent = levels[depth + 1]
        parent_rows = parent.model._default_manager.filter(_in_chain(levels, filters, values, depth + 1, True))
        q &= Q(**{f"{node.parent_field.name}__in": parent_rows.values("pk")})
    if with_pk:
        q &= Q(pk=values[depth])
    return q


def _template(
    levels: list[DjangoRouterSchema], filters: list[Q], with_pk: bool
) -> chain_templates.ChainTemplate | None:
    keys = [chain_templates.filter_key(q) for q in filters]
    if any(key is None for key in keys):
        return None

    def build() -> chain_templates.ChainTemplate | None:
        if _plain_rows(levels) is None:
            return None
        fields = [level.model._meta.pk for level in levels]
        probes = [chain_templates.probe_for(field) for field in fields]
        if any(probe is None for probe in probes):
            return None
        rows = levels[0].model._default_manager.filter(_in_chain(levels, filters, probes, 0, with_pk))
        first = 0 if with_pk else 1
        return chain_templates.build_template(rows.query, fields[first:], probes[first:])

    return _TEMPLATES.get((levels[0], with_pk, tuple(keys)), build)


_TEMPLATES = chain_templates.TemplateCache()


def rows_reachable(
    node: DjangoRouterSchema, access: Access | None, known: Mapping[DjangoRouterSchema, Any]
) -> QuerySet[Any]:
    """The node's visible rows under visible ancestors, each ancestor in ``known`` being that row.

    For reference checks: a foreign key in a body may point at a row of ``node`` only
    through the ancestors the written row shares with it (``known``: node -> primary
    key, ``None`` for the row being created, under which nothing exists yet). An
    employee's department must be a department of the employee's company.
    """
    queryset = visible_rows(node, access)
    parent = node.parent
    if parent is not None:
        parent_rows = rows_reachable(parent, access, known)
        if parent in known:
            pk = known[parent]
            parent_rows = parent_rows.filter(pk=pk) if pk is not None else parent_rows.none()
        queryset = queryset.filter(**{f"{node.parent_field.name}__in": parent_rows.values("pk")})
    return queryset


def require_parent(node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any]) -> None:
    """Raise NotFound naming the first ancestor (from the root down) that is missing or hidden."""
    parent = node.parent
    if parent is None:
        return
    if exists_in_chain(parent, access, ids, ids[parent.id_name]):
        return
    raise_missing(parent, access, ids)


def raise_missing(node: DjangoRouterSchema, access: Access | None, ids: Mapping[str, Any]) -> NoReturn:
    """Called when ``node``'s row in ``ids`` was not found: blame the highest missing level."""
    for ancestor in node.ancestors:
        if not exists_in_chain(ancestor, access, ids, ids[ancestor.id_name]):
            raise NotFound.for_model(ancestor.model)
    raise NotFound.for_model(node.model)

"""``OPTIONS`` on a collection or an item: what this caller may do there.

The answer is computed from the rules the routes themselves apply, never from a second
description of them: a method is listed when the caller holds one of its route's scopes
(``grant``, as the route's security does) and, on an item or under a parent, when the
row filter that scope selects shows the object (``rows_in_chain``, as the route's
lookup does). Fields are readable, writable, filterable and orderable by the field
scopes the routes check (``can_read``/``can_write``/``require_readable``).

An item no usable method can see is a 404, as its GET would be; a caller who holds no
scope for any method learns only ``OPTIONS`` (nothing is looked up for them).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from djfapi.errors import PermissionDenied
from djfapi.orm.selection import public_name, selectable_paths
from djfapi.orm.visibility import can_write
from djfapi.routing import queries
from djfapi.schemas.access import Access
from djfapi.security.scopes import grant

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema
    from djfapi.routing.endpoints import RequestContext
    from djfapi.routing.routes import RouteSpec

#: Methods the caller may use on this path, with the Access each would be granted.
Usable = dict[str, Access | None]


def _granted(node: DjangoRouterSchema, spec: RouteSpec, access: Access | None) -> tuple[bool, Access | None]:
    """Whether the caller passes ``spec``'s scope check, and the Access its route would get."""
    if node.security is None or access is None:
        return node.security is None, None
    try:
        return True, grant(access.token, access.granted_scopes, node.scopes[spec.scope])
    except PermissionDenied:
        return False, None


def usable_methods(ctx: RequestContext, *, detail: bool) -> Usable:
    """The methods of this path the caller may use (see the module docstring); 404 as GET would."""
    from djfapi.routing.routes import route_table

    node = ctx.node
    granted: Usable = {}
    for spec in route_table(node):
        if spec.detail != detail or spec.suffix:
            continue
        allowed, method_access = _granted(node, spec, ctx.access)
        if allowed:
            granted[spec.method] = method_access
    if not granted:
        return {}
    target = node if detail else node.parent
    if target is None:
        return granted
    target_id = ctx.ids[target.id_name]
    visible = {
        method: method_access
        for method, method_access in granted.items()
        if queries.rows_in_chain(target, method_access, ctx.ids, pk=target_id).exists()
    }
    if not visible:
        queries.raise_missing(target, next(iter(granted.values())), ctx.ids)
    return visible


def metadata(node: DjangoRouterSchema, usable: Usable, *, detail: bool) -> dict[str, Any]:
    """The body of an OPTIONS answer: methods, and the fields each use may touch."""
    read_method, write_methods = "GET", (("PATCH", "PUT") if detail else ("POST",))
    read_access = usable.get(read_method)
    readable: list[str] = []
    filterable: list[str] = []
    orderable: list[str] = []
    if read_method in usable:
        readable = selectable_paths(node.get_mapping if detail else node.list_mapping, read_access)
        if not detail:
            filterable = [s.name for s in node.filters.specs.values() if _may_read(s.read_scopes, read_access)]
            orderable = [name for name, f in node.ordering.fields.items() if _may_read(f.read_scopes, read_access)]
    writable: list[str] = []
    write_method = next((method for method in write_methods if method in usable), None)
    schema = (node.update_body if detail else node.create_body) if write_method else None
    if schema is not None:
        write_access = usable[write_method]  # type: ignore[index]
        writable = [
            public_name(name, info) for name, info in schema.model_fields.items() if can_write(info, write_access)
        ]
    return {
        "methods": sorted({*usable, "OPTIONS"}),
        "fields": {
            "readable": readable,
            "writable": writable,
            "filterable": sorted(filterable),
            "orderable": sorted(orderable),
        },
    }


def _may_read(read_scopes: frozenset[str], access: Access | None) -> bool:
    return not read_scopes or (access is not None and access.has_scope(*read_scopes))


def _answer(ctx: RequestContext, *, detail: bool) -> Response:
    usable = usable_methods(ctx, detail=detail)
    body = metadata(ctx.node, usable, detail=detail)
    headers = {"Allow": ", ".join(body["methods"]), "Cache-Control": "private, no-store", "Vary": "Authorization"}
    return Response(json.dumps(body).encode(), media_type="application/json", headers=headers)


def collection_options(ctx: RequestContext) -> Response:
    return _answer(ctx, detail=False)


def item_options(ctx: RequestContext) -> Response:
    return _answer(ctx, detail=True)

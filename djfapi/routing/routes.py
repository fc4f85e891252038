"""A node's routes as a table, and their registration on a FastAPI router.

Each row names an action (which is also the ``operation_id`` suffix), its method, where
it sits (collection, item, or a suffix under the collection), the ``SecurityScopes``
entry guarding it, its status code and its handler. ``create=None``, ``update=None``,
``delete=False`` and ``aggregate_fields`` switch rows off and on.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, Body, Header, Path, Query

from djfapi.routing import endpoints, metadata, writes
from djfapi.routing.aggregate import AggregateFunction, AggregateValues
from djfapi.routing.custom import build_custom_route
from djfapi.routing.openapi import error_responses, operation_docs, public_security, scopes_text
from djfapi.routing.responses import list_response_model
from djfapi.routing.route import one_or_many
from djfapi.routing.signature import endpoint_signature, keyword, path_id_names
from djfapi.routing.totals import TotalMode

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

AGGREGATE_SUFFIX = "/aggregate/{function}/{field}"


@dataclass(frozen=True)
class RouteSpec:
    """One row of a node's route table."""

    action: str
    method: str
    detail: bool  # on the item path (``/companies/{company_id}``) or the collection path
    scope: str  # the SecurityScopes entry that guards it
    status_code: int
    handler: endpoints.Handler
    suffix: str = ""


ROUTE_TABLE = (
    RouteSpec("list", "GET", False, "list", 200, endpoints.list_rows),
    RouteSpec("create", "POST", False, "post", 201, writes.create_row),
    RouteSpec("aggregate", "GET", False, "aggregate", 200, endpoints.aggregate_rows, AGGREGATE_SUFFIX),
    RouteSpec("get", "GET", True, "get", 200, endpoints.get_row),
    RouteSpec("update", "PATCH", True, "patch", 200, writes.patch_row),
    RouteSpec("replace", "PUT", True, "put", 200, writes.put_row),
    RouteSpec("delete", "DELETE", True, "delete", 204, writes.delete_row),
)

IF_MATCH = keyword(
    "if_match",
    str | None,
    Header(None, max_length=1024, description="Only write when the object still has one of these ETags (else 412)"),
)
FIELDS = keyword(
    "fields",
    str | None,
    Query(
        None,
        max_length=2000,
        description="Answer with only these fields, comma-separated; dots select inside nested ones "
        "('id,name,departments.name'). Fields left out are not read at all. The answer then lacks the "
        "read schema's other fields.",
    ),
)
DRY_RUN = keyword(
    "dry_run",
    bool,
    Query(
        False,
        description="Validate and run the whole write — checks, hooks, constraints — then roll it back: the "
        "answer is what the write would return (or its error); nothing is stored and no change is published.",
    ),
)
IF_NONE_MATCH = keyword(
    "if_none_match",
    str | None,
    Header(None, max_length=1024, description="Answer 304 without a body when the object still has this ETag"),
)


def route_table(node: DjangoRouterSchema) -> tuple[RouteSpec, ...]:
    """The generated routes of ``node``, after its ``create``/``update``/``delete``/aggregate options."""
    enabled = {
        "create": node.create_schema is not None,
        "update": node.update_schema is not None,
        "replace": node.update_schema is not None,
        "delete": node.delete,
        "aggregate": node.aggregates is not None,
    }
    return tuple(spec for spec in ROUTE_TABLE if enabled.get(spec.action, True))


def route_path(node: DjangoRouterSchema, spec: RouteSpec) -> str:
    return (node.item_path if spec.detail else node.collection_path) + spec.suffix


def _literal(values: tuple[str, ...]) -> Any:
    return Literal[values]


def operation_parameters(node: DjangoRouterSchema, spec: RouteSpec) -> list[inspect.Parameter]:
    if spec.action == "list":
        options = node.pagination
        paging = (
            keyword(
                "cursor",
                str | None,
                Query(None, max_length=4096, description="Opaque cursor from the previous page's next_cursor"),
            )
            if node.cursor is not None
            else keyword(
                "offset",
                int,
                Query(
                    0,
                    ge=0,
                    le=2**31 - 1,
                    description=f"Rows to skip, at most {options.max_offset}; page deeper with filters or a cursor",
                ),
            )
        )
        return [
            keyword("limit", int, Query(options.default_limit, ge=1, le=options.max_limit, description="Page size")),
            paging,
            keyword(
                "order_by",
                list[_literal(node.ordering.choices)] | None,  # type: ignore[misc]
                Query(None, description="Sort terms, repeatable; '-' for descending. The primary key breaks ties."),
            ),
            keyword(
                "total",
                TotalMode,
                Query(
                    False,
                    description="Add the number of filtered rows as 'total': true counts them, 'estimate' asks "
                    "the database's planner (cheap on large tables; 'total_estimated' says which it is)",
                ),
            ),
            FIELDS,
        ]
    if spec.action == "aggregate":
        table = node.aggregates
        assert table is not None
        parameters = [
            keyword("function", AggregateFunction, Path(description="The aggregate function")),
            keyword("field", _literal(tuple(table.fields)), Path(description="The field to aggregate")),
        ]
        if table.group_by:
            parameters.append(
                keyword(
                    "group_by",
                    list[_literal(tuple(table.group_by))] | None,  # type: ignore[misc]
                    Query(None, description="Group by these fields (repeatable)"),
                )
            )
        return parameters
    if spec.action == "create":
        # Body() inside Annotated: FastAPI keeps the union's discriminator only that way.
        return [keyword("body", Annotated[create_body(node), Body()]), DRY_RUN]
    if spec.action == "get":
        return [IF_NONE_MATCH, FIELDS]
    if spec.action == "delete":
        return [IF_MATCH]
    schema = node.patch_schema if spec.action == "update" else node.update_body
    return [keyword("body", schema, Body()), IF_MATCH, DRY_RUN]


def create_body(node: DjangoRouterSchema) -> Any:
    """The create schema; with ``create_multi``, that or a bounded list of it."""
    one = node.create_body
    if not node.create_multi_limit:
        return one
    many = Annotated[list[one], pydantic.Field(min_length=1, max_length=node.create_multi_limit)]  # type: ignore[valid-type]
    return one_or_many(one, many)


def response_model(node: DjangoRouterSchema, spec: RouteSpec) -> Any:
    if spec.action == "list":
        return list_response_model(node.list_schema, cursor=node.cursor is not None)
    if spec.action == "create" and node.create_multi_limit:
        return node.get_schema | list_response_model(node.get_schema)
    if spec.action == "aggregate":
        return AggregateValues
    return None if spec.action == "delete" else node.get_schema


def add_routes(node: DjangoRouterSchema, router: APIRouter) -> None:
    """Register ``node``'s routes (not its children's) on ``router``."""
    table = route_table(node)
    # Collection-level custom routes first: "/companies/stats" must win over "/companies/{company_id}".
    for custom in node.custom_endpoints:
        if not custom.detail:
            build_custom_route(node, custom, router)
    for spec in (s for s in table if not s.detail):
        add_route(node, router, spec)
    add_options_route(node, router, detail=False)
    if node.subscribe:  # "/companies/subscribe" too must come before "/companies/{company_id}"
        from djfapi.live.routes import add_subscribe_routes

        add_subscribe_routes(node, router)
    for spec in (s for s in table if s.detail):
        add_route(node, router, spec)
    add_options_route(node, router, detail=True)
    for custom in node.custom_endpoints:
        if custom.detail:
            build_custom_route(node, custom, router)


def add_route(node: DjangoRouterSchema, router: APIRouter, spec: RouteSpec) -> None:
    public = node.is_public(spec.scope)
    limits = node.route_limits(spec.scope)
    scopes = (node.scopes[spec.scope] or ()) if node.security is not None else None
    endpoint = endpoints.signalled_endpoint(
        node,
        spec.handler,
        scopes=scopes,
        id_names=path_id_names(node, detail=spec.detail),
        public=public,
        limits=limits,
    )
    endpoint.__signature__ = endpoint_signature(  # type: ignore[attr-defined]
        node,
        detail=spec.detail,
        scopes=scopes,
        extra=operation_parameters(node, spec),
        public=public,
        limited=limits is not None,
    )
    operation_id = f"{node.operation_prefix}_{spec.action}"
    endpoint.__name__ = operation_id
    docs = operation_docs(node, spec.action, spec.method, spec.detail, scopes, public=public)
    if spec.action in ("list", "aggregate"):
        docs["openapi_extra"] = {"parameters": node.filters.openapi_parameters()}
    if public:
        docs["openapi_extra"] = {**docs.get("openapi_extra", {}), **public_security(node)}
    if limits is not None:
        described = limits.openapi()
        docs["responses"] = {**docs["responses"], **described["responses"]}
        docs["description"] = f"{docs['description']} {limits.description}"
        docs["openapi_extra"] = {**docs.get("openapi_extra", {}), "x-rate-limits": described["x-rate-limits"]}
    router.add_api_route(
        route_path(node, spec),
        endpoint,
        methods=[spec.method],
        status_code=spec.status_code,
        response_model=response_model(node, spec),
        operation_id=operation_id,
        name=operation_id,
        tags=list[str | Enum](node.tags),
        **docs,
    )


#: Per-caller metadata: the methods and fields this caller may use here (``djfapi.routing.metadata``).
OPTIONS_BODY = {
    "type": "object",
    "properties": {
        "methods": {"type": "array", "items": {"type": "string"}},
        "fields": {
            "type": "object",
            "properties": {
                use: {"type": "array", "items": {"type": "string"}}
                for use in ("readable", "writable", "filterable", "orderable")
            },
        },
    },
}


def add_options_route(node: DjangoRouterSchema, router: APIRouter, *, detail: bool) -> None:
    """``OPTIONS`` on the collection or item path: any valid token may ask; the answer is theirs."""
    scopes: tuple[str, ...] | None = () if node.security is not None else None
    handler = metadata.item_options if detail else metadata.collection_options
    endpoint = endpoints.signalled_endpoint(node, handler, scopes=scopes, id_names=path_id_names(node, detail=detail))
    endpoint.__signature__ = endpoint_signature(node, detail=detail, scopes=scopes)  # type: ignore[attr-defined]
    operation_id = f"{node.operation_prefix}_{'item' if detail else 'collection'}_options"
    endpoint.__name__ = operation_id
    label = str(node.model._meta.verbose_name) if detail else node.name
    router.add_api_route(
        node.item_path if detail else node.collection_path,
        endpoint,
        methods=["OPTIONS"],
        operation_id=operation_id,
        name=operation_id,
        tags=list[str | Enum](node.tags),
        summary=f"What the caller may do with {'this ' + label if detail else node.name}",
        description="Answers `Allow` and the methods and fields (readable, writable, filterable, orderable) this "
        "caller may use here, from the same scopes, row filters and field scopes the routes enforce. "
        + scopes_text(scopes, node.security is not None),
        responses={
            200: {"content": {"application/json": {"schema": OPTIONS_BODY}}},
            **error_responses(node, detail=detail, method="OPTIONS"),
        },
    )

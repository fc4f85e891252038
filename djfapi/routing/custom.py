"""Custom routes on a router schema (``@router_schema.endpoint(...)``).

A custom route lives under the node's path, takes the same path ids, the same
security and row filters, and runs in the same single signalled call as the
generated ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic
from fastapi import APIRouter
from starlette.responses import Response

from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing import endpoints, queries
from djfapi.routing.openapi import error_responses, public_security, scopes_text
from djfapi.routing.signature import endpoint_signature, path_id_names
from djfapi.security.scopes import validate_scope

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

PROVIDED = frozenset({"access", "obj", "parent", "request"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class CustomEndpoint:
    func: Callable[..., Any]
    path: str
    methods: tuple[str, ...]
    detail: bool
    scope: str | None
    scopes: tuple[str, ...] | None
    route_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        func: Callable[..., Any],
        path: str,
        methods: Sequence[str],
        detail: bool,
        scope: str | None,
        scopes: Sequence[str] | None,
        route_options: dict[str, Any],
    ) -> CustomEndpoint:
        name = getattr(func, "__qualname__", repr(func))
        if inspect.iscoroutinefunction(func):
            raise SchemaDefinitionError(
                f"custom endpoint {name}: make it a plain 'def'; djfapi runs it in a worker thread between "
                f"Django's request signals, where the ORM is safe to use"
            )
        if path and not path.startswith("/"):
            raise SchemaDefinitionError(f"custom endpoint {name}: path {path!r} must start with '/'")
        if scope is not None and scope not in ("get", "list", "aggregate", "post", "patch", "put", "delete"):
            raise SchemaDefinitionError(f"custom endpoint {name}: scope={scope!r} is not a SecurityScopes entry")
        for item in scopes or ():
            try:
                validate_scope(item)
            except ValueError as error:
                raise SchemaDefinitionError(f"custom endpoint {name}: {error}") from None
        wanted = set(inspect.signature(func).parameters)
        if "obj" in wanted and not detail:
            raise SchemaDefinitionError(f"custom endpoint {name}: 'obj' is only available with detail=True")
        return cls(
            func,
            path,
            tuple(m.upper() for m in methods),
            detail,
            scope,
            tuple(scopes) if scopes is not None else None,
            dict(route_options),
        )


def build_custom_route(node: DjangoRouterSchema, custom: CustomEndpoint, router: APIRouter) -> None:
    signature = inspect.signature(custom.func, eval_str=True)
    id_names = path_id_names(node, detail=custom.detail)
    provided = PROVIDED | set(id_names)
    wanted = {name for name in signature.parameters if name in provided}
    extra = [p for p in signature.parameters.values() if p.name not in provided]
    if "parent" in wanted and node.parent is None:
        raise SchemaDefinitionError(f"custom endpoint {custom.func.__qualname__}: {node!r} has no parent")

    scope_key = custom.scope or ("get" if set(custom.methods) <= READ_METHODS else "patch")
    public = custom.scopes is None and node.is_public(scope_key)
    limits = node.route_limits(scope_key)
    if node.security is None:
        scopes: tuple[str, ...] | None = None
    else:
        scopes = custom.scopes if custom.scopes is not None else node.scopes[scope_key]
        if public:
            scopes = scopes or ()
        if scopes is None:
            raise SchemaDefinitionError(
                f"custom endpoint {custom.func.__qualname__}: {node!r} has no {scope_key!r} scopes; pass scopes=[...]"
            )
    options = dict(custom.route_options)
    response_model = options.get("response_model")
    adapter = pydantic.TypeAdapter(response_model) if response_model is not None else None

    def handler(ctx: endpoints.RequestContext, **params: Any) -> Any:
        if custom.detail:
            instance = endpoints.find_object(ctx)
            if "obj" in wanted:
                params["obj"] = instance
        else:
            queries.require_parent(node, ctx.access, ctx.ids)
        if "parent" in wanted:
            assert node.parent is not None
            params["parent"] = node.parent.model._default_manager.get(pk=ctx.ids[node.parent.id_name])
        if "access" in wanted:
            params["access"] = ctx.access
        if "request" in wanted:
            params["request"] = ctx.request
        params.update({name: value for name, value in ctx.ids.items() if name in wanted})
        result = custom.func(**params)
        if adapter is not None and not isinstance(result, Response):
            # Read any model instance here, in the signalled thread, not in FastAPI's serialiser.
            result = adapter.validate_python(result)
        return result

    endpoint = endpoints.signalled_endpoint(
        node, handler, scopes=scopes, id_names=id_names, public=public, limits=limits
    )
    endpoint.__signature__ = endpoint_signature(  # type: ignore[attr-defined]
        node, detail=custom.detail, scopes=scopes, extra=extra, public=public, limited=limits is not None
    )
    operation_id = options.pop("operation_id", f"{node.operation_prefix}_{custom.func.__name__}")
    endpoint.__name__ = operation_id
    method = custom.methods[0]
    responses = {
        **error_responses(node, detail=custom.detail, method=method, public=public),
        **options.pop("responses", {}),
    }
    if public:
        options["openapi_extra"] = {**public_security(node), **options.get("openapi_extra", {})}
    description = options.pop("description", None) or inspect.getdoc(custom.func) or ""
    if limits is not None:
        described = limits.openapi()
        responses = {**responses, **described["responses"]}
        description = f"{description} {limits.description}".strip()
        options["openapi_extra"] = {**options.get("openapi_extra", {}), "x-rate-limits": described["x-rate-limits"]}
    options.setdefault("summary", custom.func.__name__.replace("_", " ").capitalize())
    options.setdefault("tags", node.tags)
    router.add_api_route(
        (node.item_path if custom.detail else node.collection_path) + custom.path,
        endpoint,
        methods=list(custom.methods),
        operation_id=operation_id,
        name=operation_id,
        responses=responses,
        description=f"{description} {scopes_text(scopes, node.security is not None, public)}".strip(),
        **options,
    )

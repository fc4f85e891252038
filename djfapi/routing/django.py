"""``DjangoRouterSchema``: one node of a router tree — a model, its schemas, its security.

A tree of nodes becomes a FastAPI router (``root.router``) with list, create, get,
patch, put and delete routes per node, children nested under their parent's item
path. All options are keyword arguments; ``docs/options.md`` describes each of them.
"""

from __future__ import annotations

import builtins
import dataclasses
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

import pydantic
from django.db import models
from django.db.models import Q
from fastapi import APIRouter

from djfapi.conf import setting
from djfapi.orm.bodies import body_schema
from djfapi.orm.mapping import SchemaDefinitionError, SchemaMapping, mapping_for
from djfapi.orm.plan import QueryPlan, derive_plan
from djfapi.orm.rows import ValuesReader, values_reader
from djfapi.orm.selection import BoundedCache, Selection, view
from djfapi.orm.writing import check_write_mapping
from djfapi.ratelimit import RouteLimits, resolve_declarations, route_limits
from djfapi.routing import index_advice, queries, routes, tree_checks
from djfapi.routing.aggregate import AggregateTable, compile_aggregates
from djfapi.routing.custom import CustomEndpoint
from djfapi.routing.filters import FilterTable, default_filters, explicit_filters
from djfapi.routing.hooks import Hook, HookEvent, Hooks
from djfapi.routing.listing import Cursor, Ordering, compile_ordering
from djfapi.routing.options import (
    PaginationOptions,
    SecurityScopes,
    names,
    plain,
    resolve_public,
    resolve_scopes,
)
from djfapi.routing.paths import IdParameter, check_segment, id_parameter, id_parameter_name
from djfapi.routing.route import DjfapiRoute, check_operation_ids, share_allowed_methods
from djfapi.schemas.access import Access

__all__ = ["EXTENSION_POINTS", "DjangoRouterSchema", "PaginationOptions", "SecurityScopes"]

ObjectsFilter = Callable[[Access | None], Q]
DEFAULT_NESTED_LIST_LIMIT = 100
MAX_VIEWS_PER_NODE = 256  # compiled ?fields= views kept per node (the least recently used go first)
PlanOption = QueryPlan | Callable[[QueryPlan], QueryPlan] | None

#: The methods a subclass may override; djfapi calls them wherever the node applies them.
EXTENSION_POINTS = frozenset({"objects_filter"})

_FILTER_FIX = "override objects_filter(self, access) -> Q (or pass objects_filter=...) to choose the rows"
#: Upstream djfapi's overridable methods, and what does their job in djfapi.
_UPSTREAM_OVERRIDES = {
    "get_queryset": _FILTER_FIX,
    "objects_get_filtered": _FILTER_FIX,
    "object_get_by_id": _FILTER_FIX,
    "object_create": "register @node.hook('before_create') or @node.hook('after_create') instead",
    "object_update": "register @node.hook('before_update') or @node.hook('after_update') instead",
    "object_delete": "register @node.hook('before_delete') or @node.hook('after_delete') instead "
    "(delete_status=... for soft deletes)",
}


@dataclasses.dataclass(frozen=True)
class ReadView:
    """What one read answers with: the mapping of its (maybe pruned) schema, its plan, its reader."""

    mapping: SchemaMapping
    plan: QueryPlan
    reader: ValuesReader | None


_declared: weakref.WeakSet[DjangoRouterSchema] = weakref.WeakSet()


def declared_roots() -> list[DjangoRouterSchema]:
    """The roots of every router tree declared in this process (for ``manage.py check``)."""
    return [node for node in list(_declared) if node.parent is None]


class DjangoRouterSchema:
    """A model exposed as a REST resource, with its children nested below it.

    Subclasses may override the methods in ``EXTENSION_POINTS`` (``objects_filter``);
    overriding anything else is refused when the subclass is defined, because djfapi
    would not call the override and the subclass would silently do nothing.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in vars(cls):
            if name in EXTENSION_POINTS or (name.startswith("__") and name.endswith("__")):
                continue
            fix = _UPSTREAM_OVERRIDES.get(name)
            if fix is None and name.startswith(("_create_route", "_create_endpoint")):
                fix = "add routes with @node.endpoint(...), and hooks with @node.hook(...)"
            if fix is None and not hasattr(DjangoRouterSchema, name):
                continue  # a helper of the subclass's own
            raise SchemaDefinitionError(
                f"{cls.__name__}.{name} overrides a part of DjangoRouterSchema that djfapi never calls as an "
                f"extension point, so the override would be ignored; "
                f"{fix or 'only these methods may be overridden: ' + ', '.join(sorted(EXTENSION_POINTS))}."
            )

    def __init__(
        self,
        *,
        name: str,
        model: type[models.Model],
        get: type[pydantic.BaseModel],
        create: type[pydantic.BaseModel] | None = None,
        update: type[pydantic.BaseModel] | None = None,
        list: type[pydantic.BaseModel] | None = None,
        delete: bool = True,
        delete_status: Any = None,
        security: Any = None,
        security_scopes: SecurityScopes | None = None,
        public: Sequence[str] | None = None,
        rate_limits: Mapping[str, Any] | None = None,
        objects_filter: ObjectsFilter | None = None,
        children: Sequence[DjangoRouterSchema] = (),
        pagination_options: PaginationOptions | dict[str, Any] | None = None,
        filter_fields: Sequence[str] | None = None,
        order_fields: Sequence[str] | None = None,
        aggregate_fields: Sequence[str] | None = None,
        aggregate_group_by: Sequence[str] = (),
        create_multi: bool | int = False,
        cache_control: str | None = None,
        parent_field: str | None = None,
        owner_field: str | None = None,
        query_plan: PlanOption = None,
        nested_limit: int | None = None,
        tags: Sequence[str] | None = None,
        subscribe: bool = False,
        silenced_checks: Sequence[str] = (),
    ) -> None:
        self.name = check_segment(name)
        if not (isinstance(model, type) and issubclass(model, models.Model)):
            raise SchemaDefinitionError(f"router schema {name!r}: model must be a Django model class, got {model!r}")
        self.model = model
        self.get_schema = get
        self.create_schema = create
        self.update_schema = update
        self.list_schema = _list_item_schema(name, list) if list is not None else get
        self.delete = delete
        self.delete_status = plain(delete_status)
        self._security = security
        self.security_scopes = security_scopes or SecurityScopes()
        self.public = resolve_public(name, public)
        self.rate_limits = resolve_declarations(name, rate_limits)
        if objects_filter is not None and type(self).objects_filter is not DjangoRouterSchema.objects_filter:
            raise SchemaDefinitionError(
                f"router schema {name!r}: {type(self).__name__} overrides objects_filter and objects_filter= is "
                f"given too; keep one of them"
            )
        self._objects_filter = objects_filter
        self.children: tuple[DjangoRouterSchema, ...] = tuple(children)
        self._pagination = PaginationOptions.coerce(pagination_options)
        self.filter_fields = names("filter_fields", filter_fields)
        self.order_fields = names("order_fields", order_fields)
        self.aggregate_fields = names("aggregate_fields", aggregate_fields) or ()
        self.aggregate_group_by = names("aggregate_group_by", aggregate_group_by) or ()
        self.create_multi = create_multi
        self.hooks = Hooks()
        self.cache_control = plain(cache_control)
        if self.cache_control is not None and not isinstance(self.cache_control, str):
            raise SchemaDefinitionError(
                f"router schema {name!r}: cache_control must be a Cache-Control header value such as "
                f"'no-cache', got {cache_control!r}"
            )
        self._parent_field_name = plain(parent_field)
        self.owner_field = plain(owner_field)
        self._query_plan_option = query_plan
        if nested_limit is not None and (
            isinstance(nested_limit, bool) or not isinstance(nested_limit, int) or nested_limit < 1
        ):
            raise SchemaDefinitionError(
                f"router schema {name!r}: nested_limit must be a whole number >= 1, got {nested_limit!r}"
            )
        self._nested_limit = nested_limit
        self._tags = names("tags", tags) or None
        self.subscribe = subscribe
        self.silenced_checks = frozenset(names("silenced_checks", silenced_checks) or ())
        unknown = sorted(self.silenced_checks - set(index_advice.CHECK_IDS))
        if unknown:
            raise SchemaDefinitionError(
                f"router schema {name!r}: silenced_checks names {unknown}, which no node check has; choose from "
                f"{', '.join(index_advice.CHECK_IDS)} (silence other checks with SILENCED_SYSTEM_CHECKS)"
            )
        self.parent: DjangoRouterSchema | None = None
        self._custom: builtins.list[CustomEndpoint] = []
        self._router: APIRouter | None = None
        self._views: BoundedCache[tuple[bool, Selection], ReadView] = BoundedCache(MAX_VIEWS_PER_NODE)

        if self.delete_status is not None and "status" not in {f.name for f in model._meta.concrete_fields}:
            raise SchemaDefinitionError(
                f"router schema {name!r}: delete_status needs a 'status' field on {model.__name__} to set"
            )
        seen: set[str] = set()
        for child in self.children:
            if child.parent is not None:
                raise SchemaDefinitionError(f"router schema {child.name!r} is already a child of {child.parent.name!r}")
            if child.name in seen:
                raise SchemaDefinitionError(f"router schema {name!r} has two children named {child.name!r}")
            seen.add(child.name)
            child.parent = self
        _declared.add(self)
        if subscribe:
            from djfapi.live.registry import watch

            watch(self)  # capture this model's changes in every process that declares the tree

    def __repr__(self) -> str:
        return f"<DjangoRouterSchema {self.collection_path} ({self.model.__name__})>"

    # -- the tree ------------------------------------------------------------------

    @property
    def root(self) -> DjangoRouterSchema:
        return self if self.parent is None else self.parent.root

    @cached_property
    def ancestors(self) -> tuple[DjangoRouterSchema, ...]:
        """From the root down to the parent."""
        return () if self.parent is None else (*self.parent.ancestors, self.parent)

    def walk(self) -> Iterator[DjangoRouterSchema]:
        """This node and every descendant, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def node_for_model(self, model: type[models.Model]) -> DjangoRouterSchema | None:
        return next((node for node in self.walk() if node.model is model), None)

    # -- the rows a caller may see -------------------------------------------------

    def objects_filter(self, access: Access | None) -> Q:
        """The rows the caller may see and change, as a ``Q`` (an extension point).

        ``objects_filter=`` replaces it per node; a subclass may override it. The default
        is the tenant (``tenant_id`` from the token) when the model has one, and, with an
        ``own`` scope that this node declares (not one it inherits) on a node with an
        ``owner_field``, the caller's own rows.

        ``access`` is ``None`` for an anonymous caller of a ``public`` route. The default
        filter then shows no rows of a model with a ``tenant_id`` (there is no tenant to
        match; a public route on such a node needs its own filter, which djfapi checks)
        and every row of a model without one.
        """
        if self._objects_filter is not None:
            return self._objects_filter(access)
        if access is None and self.security is not None and queries.has_tenant(self.model):
            return queries.NO_ROWS  # an anonymous caller of a public route has no tenant: fail closed
        owner = self.owner_column if self._declares(access) else None
        return queries.default_objects_filter(self.model, access, owner)

    def _declares(self, access: Access | None) -> bool:
        """Whether the caller's matched scope is one this node declares (not one it inherits).

        ``own`` narrows the resource its scope names: ``shop.reviews.update.own`` means
        "reviews I wrote", not "in shops I own"; a review read with the shop's inherited
        ``shop.shops.read.own`` is any review of a shop I own.
        """
        if access is None or access.scope is None:
            return False
        matched = str(access.scope)
        return any(matched in scopes for scopes in vars(self.security_scopes).values() if scopes)

    @property
    def has_custom_filter(self) -> bool:
        """Whether rows are filtered by more than their tenant (a filter, an override, an owner)."""
        overridden = type(self).objects_filter is not DjangoRouterSchema.objects_filter
        return self._objects_filter is not None or overridden or self.owner_field is not None

    @cached_property
    def owner_column(self) -> models.Field | None:
        """The model field ``owner_field`` names: set from the token's ``sub`` on create."""
        if self.owner_field is None:
            return None
        return tree_checks.owner_column(self)

    @cached_property
    def parent_field(self) -> models.ForeignKey:
        """This model's foreign key to the parent's model."""
        assert self.parent is not None
        if self._parent_field_name is not None:
            field = self.model._meta.get_field(self._parent_field_name)
            if not isinstance(field, models.ForeignKey) or field.related_model is not self.parent.model:
                raise SchemaDefinitionError(
                    f"router schema {self.name!r}: parent_field={self._parent_field_name!r} is not a foreign key "
                    f"to {self.parent.model.__name__}"
                )
            return field
        candidates = [
            f
            for f in self.model._meta.concrete_fields
            if isinstance(f, models.ForeignKey) and f.related_model is self.parent.model
        ]
        if len(candidates) != 1:
            problem = "no foreign key" if not candidates else "several foreign keys"
            raise SchemaDefinitionError(
                f"router schema {self.name!r}: {self.model.__name__} has {problem} to its parent's model "
                f"{self.parent.model.__name__}; "
                + ("add one." if not candidates else "choose one with parent_field='<field name>'.")
            )
        return candidates[0]

    # -- inherited options ---------------------------------------------------------

    @property
    def security(self) -> Any:
        """The security dependency: this node's own, else its parent's."""
        if self._security is not None or self.parent is None:
            return self._security
        return self.parent.security

    def is_public(self, entry: str) -> bool:
        """Whether the ``SecurityScopes`` entry ``entry`` (``get``, ``post``...) is public on this node."""
        return self.security is not None and entry in self.public

    def route_limits(self, entry: str) -> RouteLimits | None:
        """The rate limits of the routes that the ``SecurityScopes`` entry ``entry`` guards (``djfapi.ratelimit``)."""
        path = "/".join(node.name for node in (*self.ancestors, self))
        return route_limits(self.rate_limits, entry, path)

    @cached_property
    def scopes(self) -> dict[str, tuple[str, ...] | None]:
        """Each operation's accepted scopes after inheritance (see ``SecurityScopes``)."""
        return resolve_scopes(self.security_scopes, self.parent.scopes if self.parent else None)

    @cached_property
    def pagination(self) -> PaginationOptions:
        return self._pagination.resolved(self.parent.pagination if self.parent else None)

    @property
    def max_offset(self) -> int:
        """The deepest ``offset`` this node's list accepts (see ``PaginationOptions.max_offset``)."""
        return int(self.pagination.max_offset or 0)

    @property
    def read_headers(self) -> dict[str, str] | None:
        return {"Cache-Control": self.cache_control} if self.cache_control else None

    # -- URLs ----------------------------------------------------------------------

    @cached_property
    def id_name(self) -> str:
        return id_parameter_name(self.model, self.parent.model if self.parent else None)

    @cached_property
    def id_param(self) -> IdParameter:
        return id_parameter(self.model, self.id_name)

    @cached_property
    def collection_path(self) -> str:
        prefix = self.parent.item_path if self.parent else ""
        return f"{prefix}/{self.name}"

    @cached_property
    def item_path(self) -> str:
        return f"{self.collection_path}/{self.id_param.placeholder}"

    @cached_property
    def operation_prefix(self) -> str:
        return "_".join(node.name for node in (*self.ancestors, self))

    @property
    def tags(self) -> list[str]:
        return [*self._tags] if self._tags else ["/".join(node.name for node in (*self.ancestors, self))]

    # -- schemas and query plans ---------------------------------------------------

    @cached_property
    def get_mapping(self) -> SchemaMapping:
        return mapping_for(self.get_schema, self.model)

    @cached_property
    def list_mapping(self) -> SchemaMapping:
        return mapping_for(self.list_schema, self.model)

    @cached_property
    def create_body(self) -> type[pydantic.BaseModel] | None:
        """The schema POST bodies are validated with: ``create``, refusing unknown fields."""
        return body_schema(self.create_schema) if self.create_schema is not None else None

    @cached_property
    def update_body(self) -> type[pydantic.BaseModel] | None:
        """The schema PUT bodies are validated with: ``update``, refusing unknown fields."""
        return body_schema(self.update_schema) if self.update_schema is not None else None

    @cached_property
    def patch_schema(self) -> type[pydantic.BaseModel] | None:
        """The schema PATCH bodies are validated with: ``update`` with every field optional, nested ones too."""
        return partial_schema(self.update_schema) if self.update_schema is not None else None

    @cached_property
    def create_mapping(self) -> SchemaMapping | None:
        return self._write_mapping(self.create_body, syncs=False)

    @cached_property
    def update_mapping(self) -> SchemaMapping | None:
        return self._write_mapping(self.update_body, syncs=True)

    @cached_property
    def patch_mapping(self) -> SchemaMapping | None:
        return self._write_mapping(self.patch_schema, syncs=True)

    def _write_mapping(self, schema: type[pydantic.BaseModel] | None, *, syncs: bool) -> SchemaMapping | None:
        if schema is None:
            return None
        mapping = mapping_for(schema, self.model)
        check_write_mapping(
            mapping, self.parent_field if self.parent else None, syncs=syncs, protected=self.root.owner_columns
        )
        return mapping

    @cached_property
    def owner_columns(self) -> dict[type[models.Model], models.Field]:
        """Every model of this node's tree that has an ``owner_field``, with that field.

        Rows of these models take their owner from the token when created — also as
        nested items of another node's body — and no write schema may set it.
        """
        return {node.model: node.owner_column for node in self.root.walk() if node.owner_column is not None}

    @cached_property
    def nested_limit(self) -> int:
        """The most items a nested list of this node's read schemas shows per object.

        ``nested_limit=``, else ``DJFAPI["NESTED_LIST_LIMIT"]`` (default 100); a
        ``Field(max_items=...)`` on the list overrides it. The child route lists the rest.
        """
        if self._nested_limit is not None:
            return self._nested_limit
        return int(setting("NESTED_LIST_LIMIT", DEFAULT_NESTED_LIST_LIMIT))

    def _plan(self, mapping: SchemaMapping) -> QueryPlan:
        option = self._query_plan_option
        if isinstance(option, QueryPlan):
            return option
        derived = derive_plan(mapping, self.nested_limit)
        return option(derived) if option is not None else derived

    @cached_property
    def get_plan(self) -> QueryPlan:
        """How single objects are read (print it to see the joins and prefetches)."""
        return self._plan(self.get_mapping)

    @cached_property
    def list_plan(self) -> QueryPlan:
        """How list pages are read."""
        return self._plan(self.list_mapping)

    @property
    def query_plan(self) -> QueryPlan:
        """The read plan of this node's objects; ``print(router_schema.query_plan)``."""
        return self.get_plan

    @cached_property
    def list_reader(self) -> ValuesReader | None:
        """Reads list pages with ``values()`` when the list schema allows it (see ``djfapi.orm.rows``).

        Not with a hand-made ``query_plan``: it may prefetch differently on purpose.
        """
        return values_reader(self.list_mapping, self.nested_limit) if self._query_plan_option is None else None

    @cached_property
    def get_reader(self) -> ValuesReader | None:
        """Like ``list_reader``, for single objects."""
        return values_reader(self.get_mapping, self.nested_limit) if self._query_plan_option is None else None

    def read_view(self, *, item: bool, selection: Selection | None) -> ReadView:
        """How a read answers: the whole read schema, or the view ``?fields=`` selected.

        A view has its own plan and reader, derived from the pruned schema: fewer
        columns, and no prefetch for a nested list it leaves out. Built once per selection.
        """
        mapping = self.get_mapping if item else self.list_mapping
        if selection is None:
            return (
                ReadView(mapping, self.get_plan, self.get_reader)
                if item
                else ReadView(mapping, self.list_plan, self.list_reader)
            )
        key = (item, selection)
        found = self._views.get(key)
        if found is None:
            pruned = view(mapping, selection).mapping
            reader = values_reader(pruned, self.nested_limit) if self._query_plan_option is None else None
            found = self._views.add(key, ReadView(pruned, self._plan(pruned), reader))
        return found

    # -- lists: filters, ordering, pagination, aggregates ------------------------------

    def column_scopes(self, column: models.Field) -> frozenset[str]:
        """The read scopes that the tree's read schemas declare for ``column``.

        A filter, order or aggregate on a column reached through a relation
        (``employees__salary``) must not reveal what the schema showing that column hides.
        """
        scopes: set[str] = set()
        for node in self.root.walk():
            for mapping in (node.get_mapping, node.list_mapping):
                for f in mapping.fields:
                    if f.model_field is column:
                        scopes |= f.options.read_scopes
        return frozenset(scopes)

    @cached_property
    def filters(self) -> FilterTable:
        """The list and aggregate filters: ``filter_fields``, else the read schema's own columns."""
        if self.filter_fields is not None:
            table = explicit_filters(self.list_mapping, self.filter_fields, self.column_scopes)
        else:
            child_relations = [child.parent_field.remote_field.get_accessor_name() for child in self.children]
            table = default_filters(self.list_mapping, child_relations, self.parent_field if self.parent else None)
        if self.delete_status is not None and "status" in table.specs:
            status = table.specs["status"]
            table.specs["status"] = dataclasses.replace(
                status,
                description=f"{status.description}. Soft-deleted rows (status {self.delete_status!r}) are left out "
                f"unless this filter names {self.delete_status!r}; a negated filter never brings them back.",
            )
        return table

    @cached_property
    def ordering(self) -> Ordering:
        try:
            return compile_ordering(self.list_mapping, self.order_fields, self.pagination.default_order_by)
        except SchemaDefinitionError as error:
            raise SchemaDefinitionError(f"router schema {self.name!r}: {error}") from None

    @cached_property
    def aggregates(self) -> AggregateTable | None:
        if not self.aggregate_fields:
            return None
        return compile_aggregates(self.list_mapping, self.aggregate_fields, self.aggregate_group_by, self.column_scopes)

    @cached_property
    def cursor(self) -> Cursor | None:
        return Cursor(self.operation_prefix) if self.pagination.cursor else None

    @property
    def list_query_parameters(self) -> frozenset[str]:
        """Query parameters the list route declares itself; every other one must be a filter."""
        return frozenset({"limit", "cursor" if self.cursor is not None else "offset", "order_by", "total", "fields"})

    def lists_deleted_rows(self, positive: dict[str, list[Any]]) -> bool:
        """Whether a list asked for soft-deleted rows by naming their status."""
        return self.delete_status is not None and self.delete_status in positive.get("status", ())

    @property
    def create_multi_limit(self) -> int:
        """How many objects one bulk POST may create (0: bulk create is off)."""
        if self.create_multi is False or self.create_schema is None:
            return 0
        return int(self.pagination.max_limit or 0) if self.create_multi is True else int(self.create_multi)

    def hook(self, event: HookEvent) -> Callable[[Hook], Hook]:
        """Register a write hook: ``@companies.hook("before_create")`` (see ``djfapi.routing.hooks``)."""

        def register(func: Hook) -> Hook:
            self.hooks.add(event, func)
            return func

        return register

    def on_change(self, reaction: Callable[[Any], None]) -> Callable[[Any], None]:
        """Register ``reaction(change)`` for every committed change of this node's model.

        It runs after commit, in the thread that committed, with the privileged view: a
        ``djfapi.live.capture.Change`` (event id, action, object id, tenant, foreign keys
        and the instance), unfiltered. Needs ``"djfapi.live"`` in ``INSTALLED_APPS``.
        """
        from djfapi.live.registry import add_reaction

        add_reaction(self, reaction)
        return reaction

    @property
    def custom_endpoints(self) -> tuple[CustomEndpoint, ...]:
        return tuple(self._custom)

    # -- custom routes -------------------------------------------------------------

    def endpoint(
        self,
        path: str = "",
        *,
        methods: Sequence[str] = ("GET",),
        detail: bool = True,
        scope: str | None = None,
        scopes: Sequence[str] | None = None,
        **route_options: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Add a custom route that shares this node's path ids, security and signalling.

        The sync function may ask, by parameter name, for ``access`` (the caller),
        ``obj`` (the object of an item route, resolved through every row filter; 404
        when hidden), ``parent`` (the parent object) and any path id; its other
        parameters are FastAPI parameters as usual. ``scope`` names the
        ``SecurityScopes`` entry that guards it (default ``get`` for GET, ``patch``
        otherwise); ``scopes`` lists the scopes outright.
        """
        if self._router is not None:
            raise SchemaDefinitionError(
                f"{self!r}: add custom endpoints before the router is built (before reading .router)"
            )

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            self._custom.append(CustomEndpoint.create(func, path, methods, detail, scope, scopes, route_options))
            return func

        return register

    # -- the router ----------------------------------------------------------------

    @property
    def router(self) -> APIRouter:
        """The FastAPI router of this tree: ``app.include_router(router_schema.router)``."""
        if self.parent is not None:
            raise SchemaDefinitionError(
                f"{self!r} is a child of {self.parent!r}; include the root's router, which holds the whole tree"
            )
        if self._router is None:
            router = APIRouter(route_class=DjfapiRoute)
            for node in self.walk():
                node._check()
                routes.add_routes(node, router)
            tree_checks.check_field_options(self)
            check_operation_ids(router.routes)
            share_allowed_methods(router.routes)
            self._router = router
            index_advice.log_advice(self)
        return self._router

    def _check(self) -> None:
        """Compile everything once, so mistakes surface at start-up."""
        if self.parent is not None:
            self.parent_field  # noqa: B018 - compiles and checks
        if self.subscribe:
            from djfapi.live.routes import check as check_subscribe

            check_subscribe(self)
        for attribute in (
            "get_plan",
            "list_plan",
            "create_mapping",
            "update_mapping",
            "patch_mapping",
            "filters",
            "ordering",
            "aggregates",
        ):
            getattr(self, attribute)
        if self.cursor is not None:
            nullable = [
                term for term in self.pagination.default_order_by if self.ordering.fields[term.lstrip("-")].nullable
            ]
            if nullable:
                raise SchemaDefinitionError(
                    f"router schema {self.name!r}: cursor pagination cannot order by nullable fields {nullable}"
                )
        tree_checks.check_options(self)
        tree_checks.check_public(self)
        if self.security is not None:
            if not hasattr(self.security, "bearer") or not hasattr(self.security, "authorize"):
                raise SchemaDefinitionError(
                    f"router schema {self.name!r}: security must be a djfapi security dependency such as "
                    f"JWTToken(...), got {self.security!r}"
                )
            check = getattr(self.security, "check_configuration", None)
            if check is not None:
                check()
            for spec in routes.route_table(self):
                if self.scopes[spec.scope] is None and not self.is_public(spec.scope):
                    raise SchemaDefinitionError(
                        f"router schema {self.name!r}: no scopes for {spec.scope!r} (route {spec.method} "
                        f"{routes.route_path(self, spec)}). Give SecurityScopes({spec.scope}=[...]), or [] to accept "
                        f"any valid token. (Or public=[{spec.scope!r}] to serve callers without a token too.)"
                    )


def _list_item_schema(name: str, schema: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    """``list=``: the schema of each listed item; upstream's list *response* (``{items: [...]}``) is unwrapped."""
    fields = schema.model_fields
    if set(fields) == {"items"}:
        from djfapi.compat import deprecated
        from djfapi.orm.mapping import FieldKind, nested_schema

        kind, item = nested_schema(fields["items"].annotation)
        if kind is FieldKind.LIST and item is not None:
            deprecated(f"router schema {name!r}: list={schema.__name__} (a list response)", f"list={item.__name__}")
            return item
    return schema


def partial_schema(schema: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    """``schema`` with every field optional — nested items too — for PATCH: omitted fields stay unset.

    Types are unchanged, so an explicit ``null`` is still refused where the field is
    not nullable; validators are inherited; unknown fields are refused (see
    ``djfapi.orm.bodies``).
    """
    return body_schema(schema, partial=True)

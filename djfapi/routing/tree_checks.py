"""Definition-time checks of a router tree: options that would do nothing are errors.

An option djfapi accepts but never applies is worse than a crash: the user believes it
holds (an owner filter, a scope, a grouping) and nothing says otherwise. Each check
here names the option, where it sits, and the fix. They run when ``.router`` is first
read, so a mistake stops the app at start-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pydantic
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from djfapi.conf import TENANT_FIELD
from djfapi.orm.bodies import origin
from djfapi.orm.fields import field_options
from djfapi.orm.mapping import FieldKind, SchemaDefinitionError, SchemaMapping
from djfapi.routing import routes
from djfapi.routing.custom import READ_METHODS

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema


def owner_column(node: DjangoRouterSchema) -> models.Field:
    """Resolve ``owner_field`` to a column of the node's model that may hold the caller's id."""
    where = f"router schema {node.name!r}: owner_field={node.owner_field!r}"
    try:
        field = node.model._meta.get_field(str(node.owner_field))
    except FieldDoesNotExist:
        raise SchemaDefinitionError(
            f"{where} is not a field of {node.model.__name__}; name the column that holds the creating user's id"
        ) from None
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
        raise SchemaDefinitionError(f"{where} must be a column (a plain field or a foreign key), not a relation")
    if field.primary_key or field.name == TENANT_FIELD:
        raise SchemaDefinitionError(f"{where} cannot be the primary key or {TENANT_FIELD}")
    if node.parent is not None and field is node.parent_field:
        raise SchemaDefinitionError(f"{where} is the foreign key to the parent, which comes from the URL")
    return field


def _used_scope_entries(node: DjangoRouterSchema) -> set[str]:
    """The ``SecurityScopes`` entries something of this node (or its children) applies."""
    used = {spec.scope for spec in routes.route_table(node)}
    if "patch" in used:
        used.add("put")  # PUT takes PATCH's scopes unless it has its own
    for custom in node.custom_endpoints:
        if custom.scopes is None:
            used.add(custom.scope or ("get" if set(custom.methods) <= READ_METHODS else "patch"))
    if node.children:
        used |= {"get", "patch"}  # children read with the parent's get and write with its patch
    if node.subscribe:
        used.add("get")
    return used


def check_options(node: DjangoRouterSchema) -> None:
    """Refuse options that have no effect where they are given."""
    where = f"router schema {node.name!r}"
    if node.parent is None and node._parent_field_name is not None:
        raise SchemaDefinitionError(
            f"{where}: parent_field chooses a child's foreign key to its parent, and this node is a root; remove it"
        )
    if node.aggregate_group_by and not node.aggregate_fields:
        raise SchemaDefinitionError(
            f"{where}: aggregate_group_by without aggregate_fields groups nothing (there is no aggregate route); "
            f"add aggregate_fields=[...] or remove aggregate_group_by"
        )
    if node.create_multi and node.create_schema is None:
        raise SchemaDefinitionError(
            f"{where}: create_multi without a create schema (there is no POST route); add create=... or remove it"
        )
    if node.owner_field is not None:
        node.owner_column  # noqa: B018 - resolves and checks the column
        if node.security is None:
            raise SchemaDefinitionError(
                f"{where}: owner_field={node.owner_field!r} is filled from the caller's token, and this node has no "
                f"security; give security=JWTToken(...) (here or on a parent)"
            )
    given = node.security_scopes.given()
    if given and node.security is None:
        raise SchemaDefinitionError(
            f"{where}: security_scopes without security; nothing would check them. Give security=JWTToken(...) "
            f"(here or on a parent), or remove security_scopes"
        )
    unused = sorted(given - _used_scope_entries(node))
    if unused:
        raise SchemaDefinitionError(
            f"{where}: SecurityScopes entries {unused} guard no route of this node (it has no such route, and "
            f"children inherit only 'get' and 'patch'); remove them, or add the route they are meant for"
        )


def check_public(node: DjangoRouterSchema) -> None:
    """Refuse ``public=`` entries that would be unsafe or do nothing."""
    if not node.public:
        return
    where = f"router schema {node.name!r}"
    from djfapi.routing import queries
    from djfapi.routing.django import DjangoRouterSchema

    if node.security is None:
        raise SchemaDefinitionError(
            f"{where}: public={sorted(node.public)} without security; every method of an unsecured node is open "
            f"already. Give security=JWTToken(...) (here or on a parent), or remove public"
        )
    overridden = type(node).objects_filter is not DjangoRouterSchema.objects_filter
    custom_filter = node._objects_filter is not None or overridden
    reads = node.public & {"get", "list", "aggregate"}
    if reads and queries.has_tenant(node.model) and not custom_filter:
        raise SchemaDefinitionError(
            f"{where}: public={sorted(reads)} on {node.model.__name__}, which has a tenant_id: the default filter "
            f"shows an anonymous caller (access=None) no rows, as there is no tenant to match. Pass "
            f"objects_filter=... deciding what anonymous callers see (it is called with access=None for them)"
        )
    if "get" in node.public and node.subscribe and not node.scopes["get"]:
        raise SchemaDefinitionError(
            f"{where}: public=['get'] with subscribe=True and no 'get' scopes: the change feed is never public and "
            f"would take any valid token. Give SecurityScopes(get=[...]) for the token holders"
        )
    writes = node.public & {"post", "patch", "put", "delete"}
    if writes and (queries.has_tenant(node.model) or node.owner_field is not None):
        raise SchemaDefinitionError(
            f"{where}: public={sorted(writes)} on {node.model.__name__}, whose rows take their tenant or owner from "
            f"the token; an anonymous caller has neither. Keep these methods secured"
        )


def _schemas(mapping: SchemaMapping) -> Iterator[tuple[type[pydantic.BaseModel], bool]]:
    """Every schema class of a mapping tree, each with whether it is the item of a nested list."""
    yield mapping.schema, False
    for f in mapping.fields:
        if f.nested is not None:
            for schema, item in _schemas(f.nested):
                yield schema, item or (f.kind is FieldKind.LIST and schema is f.nested.schema)


def check_field_options(root: DjangoRouterSchema) -> None:
    """Refuse ``Field`` options that nothing in the tree would ever apply.

    Write options (write scopes, ``is_critical``, ``client_key``, ``is_sync_matching_field``) on a schema
    used only for reading, read scopes on one used only for writing, and
    ``is_sync_matching_field`` on a schema that is never the item of a synced list.
    """
    read: set[type[pydantic.BaseModel]] = set()
    written: set[type[pydantic.BaseModel]] = set()
    synced_items: set[type[pydantic.BaseModel]] = set()
    for node in root.walk():
        for mapping in (node.get_mapping, node.list_mapping):
            read.update(schema for schema, _ in _schemas(mapping))
        for write_mapping in (node.create_mapping, node.update_mapping, node.patch_mapping):
            if write_mapping is None:
                continue
            for schema, item in _schemas(write_mapping):
                written.add(origin(schema))
                if item and write_mapping is not node.create_mapping:
                    synced_items.add(origin(schema))
    for schema in read | written:
        for name, info in schema.model_fields.items():
            options = field_options(info)
            problem = None
            if schema not in written and (options.write_scopes or options.is_critical or options.client_key):
                problem = "write scopes, is_critical or client_key, but the schema is only ever read"
            elif schema not in read and options.read_scopes and not options.write_scopes:
                problem = "read scopes, but the schema is only ever written (nothing reads through it)"
            elif options.is_sync_matching_field and schema not in synced_items:
                problem = "is_sync_matching_field, but the schema is never the item of a list synced by PUT/PATCH"
            if problem:
                raise SchemaDefinitionError(
                    f"{schema.__name__}.{name} has {problem}; the option would do nothing there. Remove it, or "
                    f"move it to the schema where it applies."
                )

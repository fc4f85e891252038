"""Write a validated body into model instances: create, PATCH and PUT.

Rules (SPEC §6):

* PATCH writes exactly the fields the body sent (``model_fields_set``); an explicit
  ``null`` is written as null and refused (422) where the column does not allow it.
* PUT replaces every field of the schema: a field left out gets the schema's default,
  except a nested list (left alone) and a field the caller may not write (kept).
* Create writes the sent fields and the schema's non-null defaults; the model's own
  defaults fill the rest. ``tenant_id`` comes from the token, the parent's foreign key
  from the URL; neither can be sent.
* Nested lists and nested one-to-one objects are written by ``djfapi.orm.nested``.
* A foreign key id must name a row the caller can see (409 ``integrity:<table>_<column>_fk``
  otherwise), so a body cannot point into another tenant.

The caller wraps a whole request in one transaction; everything here raises instead
of half-writing.
"""

from __future__ import annotations

import copy
import enum
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic
from django.core.exceptions import ValidationError
from django.db import models
from fastapi.exceptions import RequestValidationError

from djfapi.conf import TENANT_FIELD
from djfapi.errors import Conflict, PermissionDenied
from djfapi.errors.integrity import foreign_key_constraint_name
from djfapi.orm import many, nested
from djfapi.orm.mapping import FieldKind, FieldMapping, SchemaDefinitionError, SchemaMapping
from djfapi.orm.visibility import can_write, check_writable
from djfapi.schemas.access import Access

Loc = tuple[str | int, ...]
BeforeSave = Callable[[models.Model], None]


@dataclass(frozen=True)
class WriteContext:
    """What a write needs to know about the request besides the body."""

    access: Access | None
    #: Whether the caller may point a foreign key at the row with this primary key.
    reference_exists: Callable[[models.ForeignKey, Any], bool]
    #: Models whose rows take their owner from the token on create, with the owner column.
    owners: Mapping[type[models.Model], models.Field] = field(default_factory=dict)
    #: Which of some primary keys of a model the caller may reference (many-to-many ids).
    visible_references: many.VisibleReferences | None = None
    #: Where given, the nested rows a create writes, by (id of the parent instance, field name).
    created: dict[tuple[int, str], list[models.Model]] | None = None


def check_write_mapping(
    mapping: SchemaMapping,
    parent_field: models.ForeignKey | None = None,
    *,
    syncs: bool = False,
    protected: Mapping[type[models.Model], models.Field] | None = None,
) -> None:
    """Refuse, at definition time, write schemas djfapi could not honour.

    ``syncs``: the schema is written by PUT/PATCH, whose nested lists are synced by id.
    ``protected``: owner columns (per model) that come from the token, never a body.
    """
    schema = mapping.schema.__name__
    protected = protected or {}
    owner = protected.get(mapping.model)
    for f in mapping.fields:
        if f.options.client_key and not f.is_primary_key:
            raise SchemaDefinitionError(
                f"{schema}.{f.name}: client_key=True lets the client choose a new row's primary key, and "
                f"{f.name} is not {mapping.model.__name__}'s primary key; remove it."
            )
        if f.method is not None:
            continue
        if f.model_field is None and not _settable(mapping.model, f.path[-1]):
            raise SchemaDefinitionError(
                f"{schema}.{f.name} maps to {mapping.model.__name__}.{f.path[-1]}, which is not a field and cannot "
                f"be set; remove it from the write schema, or write it with Field(orm_method=...)."
            )
        if len(f.path) > 1:
            raise SchemaDefinitionError(
                f"{schema}.{f.name} writes through a relation ({'.'.join(f.path)}); write schemas can only set "
                f"the model's own fields. Remove it, or write it with Field(orm_method=...)."
            )
        if f.path == (TENANT_FIELD,):
            raise SchemaDefinitionError(
                f"{schema}.{f.name}: tenant_id is taken from the token on create and never changes; "
                f"remove it from the write schema."
            )
        if parent_field is not None and f.path[0] in (parent_field.name, parent_field.attname):
            raise SchemaDefinitionError(
                f"{schema}.{f.name}: the parent's foreign key comes from the URL; remove it from the write schema."
            )
        if owner is not None and f.path[0] in (owner.name, owner.attname):
            raise SchemaDefinitionError(
                f"{schema}.{f.name}: {mapping.model.__name__}.{owner.name} is the owner_field, set from the token's "
                f"user on create and never from a body; remove it from the write schema."
            )
        if f.kind is FieldKind.OBJECT:
            assert f.nested is not None
            if not isinstance(f.model_field, models.OneToOneRel):
                raise SchemaDefinitionError(
                    f"{schema}.{f.name}: a nested object can be written only when it belongs to this row (a reverse "
                    f"one-to-one relation); for a foreign key send the related object's id instead."
                )
            check_write_mapping(f.nested, f.model_field.field, syncs=syncs, protected=protected)
        if many.is_many_to_many(f):
            _check_many_to_many(schema, f)
            continue
        if f.kind is FieldKind.LIST:
            assert f.nested is not None
            relation = f.model_field
            if not isinstance(relation, models.ManyToOneRel):
                raise SchemaDefinitionError(
                    f"{schema}.{f.name}: only reverse foreign keys (one-to-many) and many-to-many relations can be "
                    f"written as lists"
                )
            if syncs:
                _check_items_can_be_matched(schema, f)
            check_write_mapping(f.nested, relation.field, syncs=syncs, protected=protected)


def _check_many_to_many(schema: str, f: FieldMapping) -> None:
    """A many-to-many list selects existing rows: its items can carry their id and nothing else."""
    if f.kind is FieldKind.IDS or f.nested is None:
        return
    item = f.nested
    others = [m.name for m in item.fields if not m.is_primary_key]
    if item.primary_key is None or others:
        pk = item.model._meta.pk
        raise SchemaDefinitionError(
            f"{schema}.{f.name} sets the {item.model.__name__} rows related many-to-many, selected by id, so its "
            f"item schema {item.schema.__name__} must hold {item.model.__name__}.{pk.name} and nothing else"
            f"{' (' + ', '.join(others) + ' would be ignored)' if others else ''}. Send a list of ids "
            f"(list[<id type>]), or write the extra columns of a custom through model as a nested list of the "
            f"through model's rows."
        )


def _check_items_can_be_matched(schema: str, f: FieldMapping) -> None:
    """A list synced on PUT/PATCH must be able to tell an existing item from a new one.

    Without the primary key (or matching fields) in the item schema, every sent item
    looks new: the rows it meant to update would be deleted and recreated, losing
    every column the item does not carry.
    """
    assert f.nested is not None
    item = f.nested
    if item.primary_key is not None:
        return
    if any(m.options.is_sync_matching_field for m in item.fields):
        return
    pk = item.model._meta.pk
    assert pk is not None
    raise SchemaDefinitionError(
        f"{schema}.{f.name} is synced on PUT/PATCH (items with an id update that row, rows not listed are "
        f"deleted), but its item schema {item.schema.__name__} has no field for {item.model.__name__}.{pk.name}, "
        f"so every item would replace a row and lose its other columns. Add '{pk.name}: <type> | None = None' to "
        f"{item.schema.__name__}, or mark the fields that identify an item with Field(is_sync_matching_field=True), "
        f"or leave the list out of the update schema."
    )


def _settable(model: type[models.Model], name: str) -> bool:
    attribute = inspect.getattr_static(model, name, None)
    return isinstance(attribute, property) and attribute.fset is not None


def create(
    mapping: SchemaMapping,
    body: pydantic.BaseModel,
    context: WriteContext,
    *,
    values: dict[str, Any] | None = None,
    loc: Loc = ("body",),
    before_save: BeforeSave | None = None,
) -> models.Model:
    """A new saved instance from ``body``; ``values`` are attnames fixed by the caller (parent FK).

    ``before_save(instance)`` runs once the fields are assigned and validated, before
    the row is saved and before nested rows are written.
    """
    instance = mapping.model(**(values or {}))
    if context.access is not None and _has_field(mapping.model, TENANT_FIELD):
        if context.access.tenant_id is None:
            raise PermissionDenied(
                f"{mapping.model.__name__} rows belong to a tenant, and the token names none (claim 'ten').",
                code="tenant_missing",
            )
        setattr(instance, TENANT_FIELD, context.access.tenant_id)
    owner = context.owners.get(mapping.model)
    if owner is not None and context.access is not None:
        setattr(instance, owner.attname, owner_value(owner, context.access))
    _write(instance, mapping, body, context, partial=False, creating=True, loc=loc, before_save=before_save)
    return instance


def update(
    instance: models.Model,
    mapping: SchemaMapping,
    body: pydantic.BaseModel,
    context: WriteContext,
    *,
    partial: bool,
    loc: Loc = ("body",),
    before_save: BeforeSave | None = None,
) -> models.Model:
    """Write ``body`` into ``instance`` (PATCH when ``partial``, PUT otherwise) and save it."""
    _write(instance, mapping, body, context, partial=partial, creating=False, loc=loc, before_save=before_save)
    return instance


def transfer(
    instance: models.Model, mapping: SchemaMapping, body: pydantic.BaseModel, context: WriteContext, *, partial: bool
) -> models.Model:
    """Write ``body`` into ``instance`` and save it: created when it is new, else updated.

    What upstream's ``transfer_to_orm`` did, for hand-written routes (see
    ``djfapi.utils.pydantic_django``); the caller runs it in a transaction.
    """
    creating = instance._state.adding
    _write(instance, mapping, body, context, partial=partial, creating=creating, loc=("body",))
    return instance


def owner_value(owner: models.Field, access: Access) -> Any:
    """The token's ``sub`` as a value of the owner column (403 when it cannot be one)."""
    target = owner.target_field if isinstance(owner, models.ForeignKey) else owner
    try:
        return target.to_python(access.user_id)
    except ValidationError:
        raise PermissionDenied(
            f"The token's user id is not a valid value of {owner.model.__name__}.{owner.attname}.",
            code="user_invalid",
        ) from None


def _has_field(model: type[models.Model], name: str) -> bool:
    return any(f.name == name for f in model._meta.concrete_fields)


def server_generates_key(field: models.Field) -> bool:
    """Whether new rows get their primary key without the client: an auto id, a default, a database default."""
    return isinstance(field, models.AutoField) or field.has_default() or field.db_default is not models.NOT_PROVIDED


def _client_chooses_key(f: FieldMapping) -> bool:
    """A new row's primary key comes from the body: opted in, or one the model cannot generate (a code, say)."""
    assert isinstance(f.model_field, models.Field)
    return f.options.client_key or not server_generates_key(f.model_field)


def db_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _fields_to_write(
    mapping: SchemaMapping, body: pydantic.BaseModel, access: Access | None, *, partial: bool, creating: bool
) -> list[FieldMapping]:
    sent = body.model_fields_set
    infos = type(body).model_fields
    chosen = []
    for f in mapping.fields:
        if f.is_primary_key and not (creating and _client_chooses_key(f)):
            continue  # ids select rows; only a new row's client-chosen key is written
        if f.name in sent:
            chosen.append(f)
        elif partial or f.kind is not FieldKind.VALUE or not can_write(infos[f.name], access):
            continue  # unsent: left alone (PATCH, nested rows, fields the caller may not change)
        elif getattr(body, f.name) is None and (creating or not getattr(f.model_field, "null", False)):
            continue  # no value to give: the model's default (create) or current value (PUT) stays
        else:
            chosen.append(f)
    return chosen


def _write(
    instance: models.Model,
    mapping: SchemaMapping,
    body: pydantic.BaseModel,
    context: WriteContext,
    *,
    partial: bool,
    creating: bool,
    loc: Loc,
    before_save: BeforeSave | None = None,
) -> None:
    if creating:
        _refuse_server_key(mapping, body, loc)
    fields = _fields_to_write(mapping, body, context.access, partial=partial, creating=creating)
    check_writable(type(body), [f.name for f in fields if f.name in body.model_fields_set], context.access, loc)

    assigned: dict[str, FieldMapping] = {}
    nested_rows: list[FieldMapping] = []
    before = column_values(instance)
    for f in fields:
        value = getattr(body, f.name)
        if f.kind is not FieldKind.VALUE:
            nested_rows.append(f)
        elif f.method is not None:
            _call_method(instance, f, value, loc)
        elif isinstance(f.model_field, models.Field):
            _assign(instance, f, f.model_field, value, context, loc)
            assigned[f.model_field.name] = f
        else:
            setattr(instance, f.path[0], value)

    _clean(instance, mapping, assigned, before, loc)
    if before_save is not None:
        before_save(instance)  # may set any column
    if creating:
        instance.save(force_insert=True)
    else:
        changed = changed_columns(instance, before)
        if changed:
            # Only what changed: a one-field PATCH rewrites one column (and its indexes), a
            # concurrent change to another column survives, and nothing changed writes nothing.
            instance.save(update_fields=changed)

    for f in nested_rows:
        if many.is_many_to_many(f):
            assert context.visible_references is not None, "many-to-many writes need WriteContext.visible_references"
            many.write(instance, f, getattr(body, f.name), context.visible_references, loc)
        else:
            nested.write(instance, f, getattr(body, f.name), context, creating=creating, partial=partial, loc=loc)


def column_values(instance: models.Model) -> dict[str, Any]:
    """The row's column values, copied deeply enough to notice in-place changes (JSON)."""
    return {
        f.attname: copy.deepcopy(value) if isinstance(value := getattr(instance, f.attname), dict | list) else value
        for f in type(instance)._meta.concrete_fields
    }


def changed_columns(instance: models.Model, before: Mapping[str, Any]) -> list[str]:
    """The fields to save: those whose value differs from ``before``, plus ``auto_now`` ones when any does."""
    fields = type(instance)._meta.concrete_fields
    changed = [f.name for f in fields if not f.primary_key and getattr(instance, f.attname) != before[f.attname]]
    if changed:
        changed += [f.name for f in fields if getattr(f, "auto_now", False) and f.name not in changed]
    return changed


def _refuse_server_key(mapping: SchemaMapping, body: pydantic.BaseModel, loc: Loc) -> None:
    """A key the server generates cannot be sent for a new row: 422, the same for any value.

    Writing it would let the client pick ids, and a collision with another tenant's row
    would answer 409 where a random id answers 201 — an oracle of which ids exist.
    Nothing is looked up, so every value gets this same answer.
    """
    f = mapping.primary_key
    if f is None or _client_chooses_key(f) or getattr(body, f.name, None) is None:
        return
    raise RequestValidationError(
        [
            {
                "type": "value_error",
                "loc": (*loc, f.name),
                "msg": f"The server chooses the {f.name} of a new {mapping.model.__name__}; leave {f.name} out to "
                f"create one (only rows that exist have an {f.name}).",
                "input": None,
            }
        ]
    )


def _call_method(instance: models.Model, f: FieldMapping, value: Any, loc: Loc) -> None:
    """Write through ``orm_method``; a ValueError or ValidationError from it is the caller's 422."""
    method = f.method
    try:
        if isinstance(method, str):
            getattr(instance, method)(value)
        else:
            assert method is not None
            method(instance, value)
    except (ValueError, ValidationError) as error:
        message = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        raise RequestValidationError(
            [{"type": "value_error", "loc": (*loc, f.name), "msg": message, "input": None}]
        ) from None


def _assign(
    instance: models.Model, f: FieldMapping, field: models.Field, value: Any, context: WriteContext, loc: Loc
) -> None:
    value = db_value(value)
    if field.is_relation and (field.many_to_one or field.one_to_one):
        assert isinstance(field, models.ForeignKey)
        if (
            value is not None
            and value != getattr(instance, field.attname)
            and not context.reference_exists(field, value)
        ):
            name = foreign_key_constraint_name(type(instance), field)
            raise Conflict(
                f"{'.'.join(str(p) for p in (*loc[1:], f.name))} refers to a "
                f"{field.related_model.__name__} that does not exist.",
                code=f"integrity:{name}",
                detail={"field": ".".join(str(p) for p in (*loc[1:], f.name))},
            )
    setattr(instance, field.attname, value)


def _clean(
    instance: models.Model,
    mapping: SchemaMapping,
    assigned: dict[str, FieldMapping],
    before: dict[str, Any],
    loc: Loc,
) -> None:
    """Run Django's field validation (lengths, choices, ranges, null) on what was written.

    That is the columns the body assigned, and every column an ``orm_method`` writer
    changed (``before`` is the row before the body was applied).
    """
    columns = [f for f in type(instance)._meta.concrete_fields if not f.is_relation]
    check = set(assigned)
    check |= {f.name for f in columns if getattr(instance, f.attname) != before[f.attname]}
    by_model_name = {f.model_field.name: f for f in mapping.fields if isinstance(f.model_field, models.Field)}
    try:
        instance.clean_fields(exclude={f.name for f in type(instance)._meta.concrete_fields if f.name not in check})
    except ValidationError as error:
        errors: list[dict[str, Any]] = []
        for field_name, messages in error.message_dict.items():
            f = assigned.get(field_name) or by_model_name.get(field_name)
            name = f.name if f is not None else field_name
            where = (*loc, name) if field_name in check else loc
            errors.extend({"type": "value_error", "loc": where, "msg": message, "input": None} for message in messages)
        raise RequestValidationError(errors) from None

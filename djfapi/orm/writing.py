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

import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from django.core.exceptions import ValidationError
from django.db import models
from fastapi.exceptions import RequestValidationError

from djfapi.conf import TENANT_FIELD
from djfapi.errors import Conflict, PermissionDenied
from djfapi.errors.integrity import foreign_key_constraint_name
from djfapi.orm import nested
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


def check_write_mapping(mapping: SchemaMapping, parent_field: models.ForeignKey | None = None) -> None:
    """Refuse, at definition time, write schemas djfapi could not honour."""
    schema = mapping.schema.__name__
    for f in mapping.fields:
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
        if f.kind is FieldKind.OBJECT:
            assert f.nested is not None
            if not isinstance(f.model_field, models.OneToOneRel):
                raise SchemaDefinitionError(
                    f"{schema}.{f.name}: a nested object can be written only when it belongs to this row (a reverse "
                    f"one-to-one relation); for a foreign key send the related object's id instead."
                )
            check_write_mapping(f.nested, f.model_field.field)
        if f.kind is FieldKind.LIST:
            assert f.nested is not None
            relation = f.model_field
            if not isinstance(relation, models.ManyToOneRel):
                raise SchemaDefinitionError(
                    f"{schema}.{f.name}: only reverse foreign keys (one-to-many) can be written as nested lists"
                )
            check_write_mapping(f.nested, relation.field)


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


def _has_field(model: type[models.Model], name: str) -> bool:
    return any(f.name == name for f in model._meta.concrete_fields)


def _client_chosen_key(f: FieldMapping) -> bool:
    """A primary key the database does not generate (a code, say), so a create must send it."""
    return not isinstance(f.model_field, models.AutoField | models.BigAutoField | models.SmallAutoField)


def db_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _fields_to_write(
    mapping: SchemaMapping, body: pydantic.BaseModel, access: Access | None, *, partial: bool, creating: bool
) -> list[FieldMapping]:
    sent = body.model_fields_set
    infos = type(body).model_fields
    chosen = []
    for f in mapping.fields:
        if f.is_primary_key and not (creating and _client_chosen_key(f)):
            continue  # ids select rows; only a new row's non-generated key is written
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
    fields = _fields_to_write(mapping, body, context.access, partial=partial, creating=creating)
    check_writable(type(body), [f.name for f in fields if f.name in body.model_fields_set], context.access, loc)

    assigned: dict[str, FieldMapping] = {}
    nested_rows: list[FieldMapping] = []
    calls_methods = False
    before = None
    if any(f.kind is FieldKind.VALUE and not isinstance(f.model_field, models.Field) for f in fields):
        before = {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}
    for f in fields:
        value = getattr(body, f.name)
        if f.kind is not FieldKind.VALUE:
            nested_rows.append(f)
        elif f.method is not None:
            calls_methods = True
            _call_method(instance, f, value, loc)
        elif isinstance(f.model_field, models.Field):
            _assign(instance, f, f.model_field, value, context, loc)
            assigned[f.model_field.name] = f
        else:
            setattr(instance, f.path[0], value)
            calls_methods = True

    _clean(instance, mapping, assigned, before, loc)
    if before_save is not None:
        before_save(instance)
        calls_methods = True  # the hook may have set any column
    if creating:
        instance.save(force_insert=True)
    elif calls_methods:
        instance.save()  # a method may have changed any column
    elif assigned:
        instance.save(update_fields=list(assigned))  # leave concurrent changes to other columns alone

    for f in nested_rows:
        nested.write(instance, f, getattr(body, f.name), context, creating=creating, partial=partial, loc=loc)


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
    before: dict[str, Any] | None,
    loc: Loc,
) -> None:
    """Run Django's field validation (lengths, choices, ranges, null) on what was written.

    That is the columns the body assigned, and — when ``orm_method`` writers ran
    (``before`` is the row before them) — every column they changed.
    """
    columns = [f for f in type(instance)._meta.concrete_fields if not f.is_relation]
    check = set(assigned)
    if before is not None:
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

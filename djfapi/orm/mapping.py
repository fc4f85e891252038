"""Compile a pydantic schema against a Django model, once.

The compiled ``SchemaMapping`` is what reading, writing, the query plan and the field
permissions work from. Compiling happens when a router schema is built, so a schema
field that maps to nothing fails at start-up with a message saying how to fix it,
not on the first request.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Union

import pydantic
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ManyToManyDescriptor,
    ReverseManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.query_utils import DeferredAttribute

from djfapi.orm.fields import FieldOptions, field_options

#: Entries kept per cache of compiled schemas (mappings, readers, response models, field
#: scopes). The schemas of a tree need a few dozen; ``?fields=`` views add one per
#: distinct selection, and a client can ask for many: bounded, the least recently used
#: ones are compiled again when they come back.
SCHEMA_CACHE_SIZE = 4096


class SchemaDefinitionError(ImproperlyConfigured):
    """A schema or router schema is declared in a way djfapi cannot serve."""


class FieldKind(enum.Enum):
    VALUE = "value"
    OBJECT = "object"  # a nested schema for one related object
    LIST = "list"  # a nested schema for each object of a to-many relation
    IDS = "ids"  # the primary keys of a many-to-many relation's rows (``skill_ids: list[UUID]``)


@dataclass(frozen=True, eq=False)
class FieldMapping:
    name: str
    kind: FieldKind
    options: FieldOptions
    path: tuple[str, ...] = ()  # attribute path on the instance; empty when read through orm_method
    lookup: str | None = None  # ORM query path (``department__name``); None for plain attributes
    model_field: models.Field | models.ForeignObjectRel | None = None  # the field the path ends on
    nested: SchemaMapping | None = None
    default_is_none: bool = True

    @property
    def method(self) -> str | Callable[..., Any] | None:
        return self.options.orm_method

    @property
    def is_primary_key(self) -> bool:
        return isinstance(self.model_field, models.Field) and self.model_field.primary_key

    @property
    def related_model(self) -> type[models.Model] | None:
        return self.model_field.related_model if self.model_field is not None else None


@dataclass(frozen=True, eq=False)
class SchemaMapping:
    schema: type[pydantic.BaseModel]
    model: type[models.Model]
    fields: tuple[FieldMapping, ...] = field(default=())

    @cached_property
    def by_name(self) -> dict[str, FieldMapping]:
        return {f.name: f for f in self.fields}

    @cached_property
    def primary_key(self) -> FieldMapping | None:
        return next((f for f in self.fields if f.is_primary_key), None)

    def __repr__(self) -> str:
        return f"<SchemaMapping {self.schema.__name__} -> {self.model.__name__}>"


def _strip_optional(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _is_schema(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def nested_schema(annotation: Any) -> tuple[FieldKind, type[pydantic.BaseModel] | None]:
    """Whether a field holds a nested schema, a list of them, or a plain value."""
    annotation = _strip_optional(annotation)
    if _is_schema(annotation):
        return FieldKind.OBJECT, annotation
    if typing.get_origin(annotation) in (list, tuple, set, frozenset, typing.Sequence, typing.Iterable):
        args = typing.get_args(annotation)
        if args:
            item = _strip_optional(args[0])
            if _is_schema(item):
                return FieldKind.LIST, item
    return FieldKind.VALUE, None


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(_strip_optional(annotation))
    return origin in (list, tuple, set, frozenset, typing.Sequence, typing.Iterable)


def orm_path(orm_field: Any, default: str) -> tuple[str, ...]:
    """Normalise ``orm_field`` (a name, a dotted or ``__`` path, or a model descriptor)."""
    if orm_field is None:
        return (default,)
    if isinstance(orm_field, str):
        return tuple(part for part in orm_field.replace("__", ".").split(".") if part)
    if isinstance(orm_field, DeferredAttribute):
        return (orm_field.field.attname,)
    if isinstance(orm_field, ForwardManyToOneDescriptor):
        return (orm_field.field.name,)
    if isinstance(orm_field, ReverseOneToOneDescriptor):
        return (orm_field.related.get_accessor_name(),)
    if isinstance(orm_field, ManyToManyDescriptor):
        return (orm_field.field.name if not orm_field.reverse else str(orm_field.rel.get_accessor_name()),)
    if isinstance(orm_field, ReverseManyToOneDescriptor):
        return (str(orm_field.rel.get_accessor_name()),)
    raise SchemaDefinitionError(f"orm_field={orm_field!r} is neither a name, a path nor a model field descriptor")


def _model_attribute(model: type[models.Model], name: str) -> models.Field | models.ForeignObjectRel | None:
    """The model field or relation an instance attribute ``name`` belongs to, if any."""
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        pass
    for relation in model._meta.related_objects:
        if relation.get_accessor_name() == name:
            return relation
    return None


def _query_name(model_field: models.Field | models.ForeignObjectRel, attribute: str) -> str:
    if isinstance(model_field, models.ForeignObjectRel):
        return model_field.name
    return attribute


def _resolve(schema: type, model: type[models.Model], name: str, path: tuple[str, ...]) -> tuple[Any, str | None]:
    current = model
    lookups: list[str] = []
    model_field: Any = None
    for index, attribute in enumerate(path):
        last = index == len(path) - 1
        model_field = _model_attribute(current, attribute)
        if model_field is None:
            if last and hasattr(current, attribute):
                return None, None  # a property or other plain attribute: readable, not queryable
            raise SchemaDefinitionError(
                f"{schema.__name__}.{name} maps to {'.'.join(path)!r}, but {current.__name__} has no field, "
                f"relation or attribute {attribute!r}. Set Field(orm_field=...) to the model attribute it "
                f"reads, or Field(orm_method=...) to a model method."
            )
        lookups.append(_query_name(model_field, attribute))
        if not last:
            if not model_field.is_relation or model_field.many_to_many or model_field.one_to_many:
                raise SchemaDefinitionError(
                    f"{schema.__name__}.{name} maps to {'.'.join(path)!r}, which passes through "
                    f"{attribute!r}, not a single related object; nest a list schema instead."
                )
            current = model_field.related_model
    return model_field, "__".join(lookups)


def _compile_field(
    schema: type[pydantic.BaseModel], model: type[models.Model], name: str, info: pydantic.fields.FieldInfo
) -> FieldMapping:
    options = field_options(info)
    kind, nested_type = nested_schema(info.annotation)
    default_is_none = info.is_required() or info.default is None
    if options.orm_method is not None:
        method = options.orm_method
        if isinstance(method, str) and not callable(getattr(model, method, None)):
            raise SchemaDefinitionError(
                f"{schema.__name__}.{name}: orm_method={method!r} is not a method of {model.__name__}"
            )
        if nested_type is not None:
            raise SchemaDefinitionError(
                f"{schema.__name__}.{name}: a nested schema ({nested_type.__name__}) cannot be read through "
                f"orm_method because djfapi cannot know its model; use orm_field with a relation instead."
            )
        return FieldMapping(name=name, kind=kind, options=options, default_is_none=default_is_none)

    path = orm_path(options.orm_field, name)
    model_field, lookup = _resolve(schema, model, name, path)
    if nested_type is None and model_field is not None and model_field.many_to_many and _is_list(info.annotation):
        if len(path) != 1:
            raise SchemaDefinitionError(
                f"{schema.__name__}.{name} reads ids through {'.'.join(path)!r}; a list of ids must be a "
                f"many-to-many relation of {model.__name__} itself"
            )
        return FieldMapping(
            name=name,
            kind=FieldKind.IDS,
            options=options,
            path=path,
            lookup=lookup,
            model_field=model_field,
            default_is_none=default_is_none,
        )
    if nested_type is None and model_field is not None and model_field.is_relation:
        if model_field.many_to_one or (model_field.one_to_one and isinstance(model_field, models.Field)):
            # A foreign key read as a plain value is its id (``shelf: str`` reads ``shelf_id``).
            path = (*path[:-1], model_field.attname)
        else:
            raise SchemaDefinitionError(
                f"{schema.__name__}.{name} is a plain value, but {model.__name__}.{'.'.join(path)} is a relation to "
                f"{'many rows' if model_field.one_to_many or model_field.many_to_many else 'an object'}; declare it "
                f"as a nested schema (list[...] for many; list[<id type>] for the ids of a many-to-many), or map "
                f"it to a column."
            )
    nested = None
    if nested_type is not None:
        if model_field is None or not model_field.is_relation:
            raise SchemaDefinitionError(
                f"{schema.__name__}.{name} nests {nested_type.__name__}, but {model.__name__}."
                f"{'.'.join(path)} is not a relation; point orm_field at a foreign key or a reverse relation."
            )
        to_many = model_field.one_to_many or model_field.many_to_many
        if kind is FieldKind.LIST and not to_many:
            raise SchemaDefinitionError(
                f"{schema.__name__}.{name} is a list, but {'.'.join(path)!r} is a single related object"
            )
        if kind is FieldKind.OBJECT and to_many:
            raise SchemaDefinitionError(
                f"{schema.__name__}.{name} is a single object, but {'.'.join(path)!r} is a to-many "
                f"relation; declare it as list[{nested_type.__name__}]"
            )
        nested = mapping_for(nested_type, model_field.related_model)
    return FieldMapping(
        name=name,
        kind=kind,
        options=options,
        path=path,
        lookup=lookup,
        model_field=model_field,
        nested=nested,
        default_is_none=default_is_none,
    )


@lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def mapping_for(schema: type[pydantic.BaseModel], model: type[models.Model]) -> SchemaMapping:
    """The compiled mapping of ``schema`` onto ``model`` (cached: one per pair)."""
    key = (schema, model)
    if key in _compiling:
        raise SchemaDefinitionError(
            f"{schema.__name__} nests itself (through {model.__name__}); djfapi reads and writes finite trees "
            f"only, so give the inner level its own schema without the recursive field."
        )
    _compiling.add(key)
    try:
        fields = tuple(_compile_field(schema, model, name, info) for name, info in schema.model_fields.items())
    finally:
        _compiling.discard(key)
    return SchemaMapping(schema=schema, model=model, fields=fields)


_compiling: set[tuple[type, type]] = set()

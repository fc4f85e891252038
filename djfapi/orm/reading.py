"""Turn a Django instance into plain data following a compiled ``SchemaMapping``.

The readers are built once per mapping; reading a row is then a handful of attribute
lookups per field. Related managers are read with ``.all()``, which serves prefetched
rows from the cache that the query plan filled, so reading never queries by itself
when the plan covers the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import models

from djfapi.orm.mapping import SCHEMA_CACHE_SIZE, FieldKind, FieldMapping, SchemaMapping

Reader = Callable[[Any], Any]


def read(mapping: SchemaMapping, instance: models.Model) -> dict[str, Any]:
    """The schema's fields of ``instance`` as a dict, nested schemas as dicts and lists."""
    return {name: reader(instance) for name, reader in _readers(mapping)}


@lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def _readers(mapping: SchemaMapping) -> tuple[tuple[str, Reader], ...]:
    return tuple((f.name, _compile(f)) for f in mapping.fields)


def _attribute_getter(path: tuple[str, ...]) -> Reader:
    if len(path) == 1:
        (name,) = path

        def get_one(instance: Any) -> Any:
            try:
                return getattr(instance, name)
            except ObjectDoesNotExist:  # an absent reverse one-to-one
                return None

        return get_one

    def get_path(instance: Any) -> Any:
        value = instance
        for name in path:
            if value is None:
                return None
            try:
                value = getattr(value, name)
            except ObjectDoesNotExist:
                return None
        return value

    return get_path


def _method_getter(method: str | Callable[..., Any]) -> Reader:
    if isinstance(method, str):
        return lambda instance: getattr(instance, method)()
    return method


def _compile(f: FieldMapping) -> Reader:
    get = _method_getter(f.method) if f.method is not None else _attribute_getter(f.path)
    if f.kind is FieldKind.VALUE:
        return get
    if f.kind is FieldKind.IDS:

        def read_ids(instance: Any) -> list[Any]:
            return [row.pk for row in get(instance).all()]  # prefetched by the plan

        return read_ids
    assert f.nested is not None
    nested = f.nested
    if f.kind is FieldKind.OBJECT:

        def read_object(instance: Any) -> Any:
            related = get(instance)
            return None if related is None else read(nested, related)

        return read_object

    def read_list(instance: Any) -> Any:
        related = get(instance)
        if related is None:
            return []
        if hasattr(related, "all"):
            related = related.all()
        return [read(nested, item) for item in related]

    return read_list

"""Field-level scopes: which fields a caller may read, and whether a write is allowed.

Read restrictions are applied when rendering (the field is left out of the body);
they are computed once per schema and set of relevant granted scopes, not per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import pydantic

from djfapi.errors import PermissionDenied
from djfapi.orm.fields import field_options
from djfapi.orm.mapping import SCHEMA_CACHE_SIZE, FieldKind, nested_schema
from djfapi.schemas.access import Access

Exclude = dict[str, Any]


@lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def scopes_in_schema(schema: type[pydantic.BaseModel]) -> frozenset[str]:
    """Every read scope a field anywhere in ``schema``'s tree depends on."""
    scopes: set[str] = set()
    for info in schema.model_fields.values():
        scopes |= field_options(info).read_scopes
        _, nested = nested_schema(info.annotation)
        if nested is not None:
            scopes |= scopes_in_schema(nested)
    return frozenset(scopes)


def hidden_fields(schema: type[pydantic.BaseModel], access: Access | None) -> Exclude | None:
    """A pydantic ``exclude`` spec for the fields ``access`` may not read, or None."""
    relevant = scopes_in_schema(schema)
    if not relevant:
        return None
    granted = frozenset() if access is None else relevant & access.granted_scopes
    return _hidden_fields(schema, granted)


@lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def _hidden_fields(schema: type[pydantic.BaseModel], granted: frozenset[str]) -> Exclude | None:
    exclude: Exclude = {}
    for name, info in schema.model_fields.items():
        read_scopes = field_options(info).read_scopes
        if read_scopes and not read_scopes & granted:
            exclude[name] = True
            continue
        kind, nested = nested_schema(info.annotation)
        if nested is not None:
            inner = _hidden_fields(nested, granted)
            if inner:
                exclude[name] = {"__all__": inner} if kind is FieldKind.LIST else inner
    return exclude or None


def can_read(info: pydantic.fields.FieldInfo, access: Access | None) -> bool:
    read_scopes = field_options(info).read_scopes
    return not read_scopes or (access is not None and access.has_scope(*read_scopes))


def can_write(info: pydantic.fields.FieldInfo, access: Access | None) -> bool:
    options = field_options(info)
    if options.is_critical and not (access is not None and access.is_critical):
        return False
    return not options.write_scopes or (access is not None and access.has_scope(*options.write_scopes))


def check_writable(
    schema: type[pydantic.BaseModel],
    names: Iterable[str],
    access: Access | None,
    loc: tuple[str | int, ...] = ("body",),
) -> None:
    """Refuse (403) a write to a field the caller may not write."""
    for name in names:
        info = schema.model_fields[name]
        if can_write(info, access):
            continue
        options = field_options(info)
        where = ".".join(str(part) for part in (*loc[1:], name))
        if options.is_critical and not (access is not None and access.is_critical):
            raise PermissionDenied(
                f"Field {where!r} can only be changed with a critical token.",
                code="critical_token_required",
                detail={"field": where},
            )
        raise PermissionDenied(
            f"Changing field {where!r} needs one of the scopes {sorted(options.write_scopes)}.",
            code="field_scope_missing",
            detail={"field": where, "scopes": sorted(options.write_scopes)},
        )


def require_readable(fields: Iterable[tuple[str, frozenset[str]]], access: Access | None, *, use: str) -> None:
    """Refuse (403) filtering, ordering or aggregating on a field the caller may not read.

    Otherwise the hidden value leaks anyway: ``salary__gte`` bisection finds it, a
    ``sum`` adds it up, an order reveals its rank.
    """
    for name, read_scopes in fields:
        if read_scopes and not (access is not None and access.has_scope(*read_scopes)):
            raise PermissionDenied(
                f"{use.capitalize()} on {name!r} needs one of the scopes {sorted(read_scopes)}.",
                code="field_scope_missing",
                detail={"field": name, "scopes": sorted(read_scopes)},
            )

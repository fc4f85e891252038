"""``Field``: pydantic's ``Field`` plus the options that connect a schema field to the ORM.

The options ride on the field's ``json_schema_extra`` slot as a callable object, which
pydantic keeps through inheritance, ``Annotated`` and model copies — and which also lets
the OpenAPI document say which scopes a field needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pydantic
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from djfapi.schemas.access import AccessScope

READ_ACTIONS = frozenset({"read", "get", "list"})


@dataclass(frozen=True, eq=False)
class FieldOptions:
    """How one schema field maps to the model, and who may read or write it."""

    orm_field: Any = None
    orm_method: str | Callable[..., Any] | None = None
    scopes: tuple[str, ...] = ()
    is_critical: bool = False
    is_sync_matching_field: bool = False
    client_key: bool = False
    max_items: int | None = None
    json_schema_extra: dict[str, Any] | Callable[[dict[str, Any]], None] | None = None

    @cached_property
    def read_scopes(self) -> frozenset[str]:
        """Scopes whose action is a read; when there are any, reading needs one of them."""
        return frozenset(s for s in self.scopes if AccessScope.from_str(s).action in READ_ACTIONS)

    @cached_property
    def write_scopes(self) -> frozenset[str]:
        """Scopes whose action is a write; when there are any, writing needs one of them."""
        return frozenset(s for s in self.scopes if AccessScope.from_str(s).action not in READ_ACTIONS)

    def __call__(self, schema: dict[str, Any]) -> None:
        # Called by pydantic while it builds the JSON schema of the field.
        if isinstance(self.json_schema_extra, dict):
            schema.update(self.json_schema_extra)
        elif callable(self.json_schema_extra):
            self.json_schema_extra(schema)
        if self.read_scopes:
            schema["x-read-scopes"] = sorted(self.read_scopes)
        if self.write_scopes:
            schema["x-write-scopes"] = sorted(self.write_scopes)
        if self.is_critical:
            schema["x-critical"] = True
        if self.max_items is not None:
            schema["maxItems"] = self.max_items


DEFAULT_OPTIONS = FieldOptions()


def Field(
    default: Any = PydanticUndefined,
    *,
    orm_field: Any = None,
    orm_method: str | Callable[..., Any] | None = None,
    scopes: list[str] | tuple[str, ...] | None = None,
    is_critical: bool = False,
    is_sync_matching_field: bool = False,
    client_key: bool = False,
    max_items: int | None = None,
    json_schema_extra: dict[str, Any] | Callable[[dict[str, Any]], None] | None = None,
    **kwargs: Any,
) -> Any:
    """A pydantic field with ORM options.

    * ``orm_field``: the model attribute, as a name (``"name"``), a path through
      relations (``"department.name"`` or ``"department__name"``) or the model's
      descriptor (``Company.name``). Omit it when the names match.
    * ``orm_method``: a model method (name or function) called to read the value
      (``instance.method()``) or to write it (``instance.method(value)``, e.g.
      ``set_password``).
    * ``scopes``: read scopes (action ``read``) hide the field from callers holding
      none of them; write scopes (any other action) refuse writes to it (403).
    * ``is_critical``: writable only with a token carrying ``crt: true``.
    * ``is_sync_matching_field``: when syncing a nested list, items without an id are
      matched to existing rows by the values of these fields.
    * ``client_key``: on the primary key field of a create schema, lets the client
      choose the key of a new row although the model generates one (a UUID with a
      default, an auto id). Without it such a key is the server's, and sending one on
      create is a 422. Keys the model cannot generate (a natural key without default)
      are the client's anyway.
    * ``max_items``: on a nested list of a read schema, the most items it shows per
      object (the first ones in the model's order; the child route lists the rest).
      Without it the router schema's ``nested_limit`` applies.
    """
    scope_tuple = tuple(scopes or ())
    for scope in scope_tuple:
        AccessScope.from_str(scope)  # fail at definition time on a malformed scope
    options = FieldOptions(
        orm_field=orm_field,
        orm_method=orm_method,
        scopes=scope_tuple,
        is_critical=is_critical,
        is_sync_matching_field=is_sync_matching_field,
        client_key=client_key,
        max_items=max_items,
        json_schema_extra=json_schema_extra,
    )
    return pydantic.Field(default, json_schema_extra=options, **kwargs)


def field_options(field: FieldInfo) -> FieldOptions:
    """The djfapi options of a pydantic field (defaults for a plain pydantic field)."""
    extra = field.json_schema_extra
    return extra if isinstance(extra, FieldOptions) else DEFAULT_OPTIONS

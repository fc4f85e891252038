"""The schemas request bodies are validated with, derived from the user's write schemas.

Two derivations, each applied down the whole tree of nested schemas:

* **Strict**: a field the schema does not declare is a 422 naming it (pydantic's
  ``extra_forbidden``), at any depth. Dropping it silently hides typos and mass
  assignment (``"owner_id": "x"`` answered 201), and a nested item whose ``id`` was
  dropped was deleted and recreated. A schema that sets ``extra`` in its
  ``model_config`` itself (``ConfigDict(extra="ignore")``) keeps its own choice.
* **Partial** (PATCH): every field optional, nested items included, so a PATCH of one
  field of one nested item need not repeat the others. An item that turns out to be new
  (no id, no match) is checked against the complete schema when it is created:
  ``complete_item`` does that.

The derived classes keep the user's class name (``CompanyCreate``, and
``CompanyUpdatePatch`` for PATCH), so the OpenAPI document reads as before.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any, Union

import pydantic
from fastapi.exceptions import RequestValidationError
from pydantic.fields import FieldInfo

Loc = tuple[str | int, ...]

#: Partial body schema -> the strict complete schema it was derived from.
_complete: dict[type[pydantic.BaseModel], type[pydantic.BaseModel]] = {}
#: Derived body schema -> the user's schema.
_origin: dict[type[pydantic.BaseModel], type[pydantic.BaseModel]] = {}


def _is_schema(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def _rewrite(annotation: Any, partial: bool) -> Any:
    """``annotation`` with every nested schema replaced by its body schema."""
    if _is_schema(annotation):
        return body_schema(annotation, partial=partial)
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return typing.Annotated[(_rewrite(args[0], partial), *args[1:])]
    rewritten = tuple(_rewrite(arg, partial) for arg in args)
    if rewritten == args:
        return annotation
    if origin in (Union, types.UnionType):
        return Union[rewritten]  # noqa: UP007 - built from a tuple of members
    try:
        return origin[rewritten if len(rewritten) > 1 else rewritten[0]]
    except TypeError:
        return annotation  # an alias djfapi cannot rebuild: keep the user's


@cache
def body_schema(schema: type[pydantic.BaseModel], *, partial: bool = False) -> type[pydantic.BaseModel]:
    """The strict (and, for PATCH, partial) variant of the write schema ``schema``."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": schema.__module__, "__qualname__": schema.__qualname__}
    for name, info in schema.model_fields.items():
        annotation = _rewrite(info.annotation, partial)
        if partial and info.is_required():
            annotations[name] = annotation
            namespace[name] = FieldInfo.merge_field_infos(info, default=None)
        elif annotation is not info.annotation:
            annotations[name] = annotation
            namespace[name] = FieldInfo.merge_field_infos(info)
    if "extra" not in schema.model_config:
        namespace["model_config"] = pydantic.ConfigDict(extra="forbid")
    namespace["__annotations__"] = annotations
    name = f"{schema.__name__}Patch" if partial else schema.__name__
    namespace["__qualname__"] = f"{schema.__qualname__}Patch" if partial else schema.__qualname__
    metaclass: Any = type(schema)  # pydantic's model metaclass: builds the fields from the namespace
    derived: type[pydantic.BaseModel] = metaclass(name, (schema,), namespace)
    _origin[derived] = schema
    if partial:
        _complete[derived] = body_schema(schema)
    return derived


def origin(schema: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    """The user's schema a body schema was derived from (``schema`` itself otherwise)."""
    return _origin.get(schema, schema)


def complete_item(item: pydantic.BaseModel, loc: Loc) -> pydantic.BaseModel:
    """A PATCH item that creates a row, validated against its complete schema (422 at ``loc``).

    Without this, a new nested item sent in a PATCH could leave out fields that every
    created row needs, and the row would be written with the schema's gaps as nulls.
    """
    complete = _complete.get(type(item))
    if complete is None:
        return item
    try:
        return complete.model_validate(item.model_dump(exclude_unset=True, by_alias=True))
    except pydantic.ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": (*loc, *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


def body_rows(value: Any) -> int:
    """The rows a validated body writes: each object in it, nested ones at any depth."""
    if isinstance(value, pydantic.BaseModel):
        return 1 + sum(body_rows(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, list | tuple):
        return sum(body_rows(item) for item in value if isinstance(item, pydantic.BaseModel | list | tuple))
    return 0


def check_body_rows(body: Any, limit: int) -> None:
    """Refuse (422) a body that would write more than ``limit`` rows in one transaction.

    Each nested list is bounded on its own (``MAX_NESTED_ITEMS``), but lists inside
    lists inside a bulk create multiply: one request could hold a million rows and keep
    the transaction — and the SQLite writer's turn — for minutes.
    """
    rows = body_rows(body)
    if rows > limit:
        raise RequestValidationError(
            [
                {
                    "type": "too_many_rows",
                    "loc": ("body",),
                    "msg": f"One write may hold at most {limit} rows, nested ones included; this one holds {rows}. "
                    f"Send them in several requests.",
                    "input": None,
                }
            ]
        )

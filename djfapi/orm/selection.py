"""Field selection: ``?fields=id,name,departments.name`` reads and answers only those fields.

A selection is parsed against the read schema (unknown paths are a 422, paths the
caller may not read a 403, as for filters) and turned into a *view*: the read schema
pruned to the selected fields, compiled like any schema. The view's query plan and
values reader are derived from the pruned schema, so an unselected nested list is not
prefetched and unselected columns are not fetched.

Views are built once per distinct selection and kept while they are in use: the same
few come back (a table's columns, a form's fields). A client can ask for many distinct
ones, so the caches are bounded (``SCHEMA_CACHE_SIZE``): the least recently used views
are built again when they come back.
"""

from __future__ import annotations

import threading
import types
import typing
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union

import pydantic
from fastapi.exceptions import RequestValidationError
from pydantic.fields import FieldInfo

from djfapi.orm.fields import field_options
from djfapi.orm.mapping import SCHEMA_CACHE_SIZE, FieldKind, SchemaMapping, mapping_for, nested_schema
from djfapi.orm.visibility import require_readable

#: A parsed selection: field name -> the selection inside it (None: the whole field).
Selection = tuple[tuple[str, "Selection | None"], ...]

MAX_FIELD_PATHS = 64
MAX_FIELDS_LENGTH = 2000


def public_name(name: str, info: FieldInfo) -> str:
    """The name a field has in the JSON body (its alias, else its name)."""
    return info.serialization_alias or info.alias or name


def _invalid(message: str, value: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", "fields"), "msg": message, "input": value}])


def parse_fields(mapping: SchemaMapping, value: str, access: Any) -> Selection:
    """``value`` (``id,name,departments.name``) as a canonical selection of ``mapping``'s schema.

    422 for an empty, malformed or unknown path; 403 for a field the caller may not read.
    """
    paths = [part.strip() for part in value.split(",")]
    if not value.strip() or any(not path for path in paths):
        raise _invalid("List field names separated by commas, e.g. 'id,name'; empty names are not allowed.", value)
    if len(paths) > MAX_FIELD_PATHS:
        raise _invalid(f"At most {MAX_FIELD_PATHS} field paths.", value)
    tree: dict[str, Any] = {}
    for path in paths:
        _add_path(mapping, tree, path.split("."), path, access, value)
    return _canonical(tree)


def _add_path(
    mapping: SchemaMapping, tree: dict[str, Any], parts: list[str], path: str, access: Any, value: str
) -> None:
    schema = mapping.schema
    by_public = {public_name(name, info): name for name, info in schema.model_fields.items()}
    head, rest = parts[0], parts[1:]
    name = by_public.get(head)
    if name is None:
        raise _invalid(
            f"Unknown field {path!r}; choose from {sorted(by_public)} (dots select inside nested ones).", value
        )
    f = mapping.by_name[name]
    require_readable([(path, f.options.read_scopes)], access, use="selecting")
    if not rest:
        tree[name] = None  # the whole field, whatever else was asked inside it
        return
    if f.nested is None:
        raise _invalid(f"Field {head!r} has no fields inside it, so {path!r} selects nothing.", value)
    if name in tree and tree[name] is None:
        return
    inner = tree.setdefault(name, {})
    _add_path(f.nested, inner, rest, path, access, value)


def _canonical(tree: dict[str, Any]) -> Selection:
    return tuple(sorted((name, None if inner is None else _canonical(inner)) for name, inner in tree.items()))


@dataclass(frozen=True)
class View:
    """The read schema pruned to one selection, compiled."""

    schema: type[pydantic.BaseModel]
    mapping: SchemaMapping


K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A thread-safe mapping that forgets its least recently used entries past ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def add(self, key: K, value: V) -> V:
        """Keep ``value`` (or the value another thread kept first) and return it."""
        with self._lock:
            kept = self._items.setdefault(key, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return kept

    def __len__(self) -> int:
        return len(self._items)


_views: BoundedCache[tuple[type[pydantic.BaseModel], Selection], type[pydantic.BaseModel]] = BoundedCache(
    SCHEMA_CACHE_SIZE
)


def view(mapping: SchemaMapping, selection: Selection) -> View:
    """The compiled view of ``mapping`` showing ``selection``."""
    schema = pruned_schema(mapping.schema, selection)
    return View(schema=schema, mapping=mapping_for(schema, mapping.model))


def pruned_schema(schema: type[pydantic.BaseModel], selection: Selection) -> type[pydantic.BaseModel]:
    """``schema`` with only the selected fields (nested schemas pruned likewise), built once."""
    key = (schema, selection)
    found = _views.get(key)
    if found is not None:
        return found
    fields: dict[str, Any] = {}
    chosen = dict(selection)
    for name in (name for name in schema.model_fields if name in chosen):  # in the schema's order
        inner = chosen[name]
        info = schema.model_fields[name]
        annotation = info.annotation
        if inner is not None:
            _, nested = nested_schema(annotation)
            assert nested is not None
            annotation = _replace(annotation, nested, pruned_schema(nested, inner))
        fields[name] = (annotation, FieldInfo.merge_field_infos(info))
    built: type[pydantic.BaseModel] = pydantic.create_model(
        f"{schema.__name__}Selection", __config__=schema.model_config, __module__=schema.__module__, **fields
    )
    return _views.add(key, built)


def _replace(annotation: Any, old: type, new: type) -> Any:
    """``annotation`` with the class ``old`` replaced by ``new`` (inside lists, optionals, Annotated)."""
    if annotation is old:
        return new
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return typing.Annotated[(_replace(args[0], old, new), *args[1:])]
    replaced = tuple(_replace(arg, old, new) for arg in args)
    if origin in (Union, types.UnionType):
        return Union[replaced]  # noqa: UP007 - built from a tuple of members
    return origin[replaced if len(replaced) > 1 else replaced[0]]


def selectable_paths(mapping: SchemaMapping, access: Any, prefix: str = "") -> list[str]:
    """Every path ``?fields=`` accepts from this caller (fields they may read), depth first."""
    paths: list[str] = []
    for name, info in mapping.schema.model_fields.items():
        options = field_options(info)
        if options.read_scopes and not (access is not None and access.has_scope(*options.read_scopes)):
            continue
        path = prefix + public_name(name, info)
        paths.append(path)
        f = mapping.by_name[name]
        if f.nested is not None and f.kind in (FieldKind.LIST, FieldKind.OBJECT):
            paths.extend(selectable_paths(f.nested, access, path + "."))
    return paths

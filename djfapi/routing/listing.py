"""Ordering and pagination of list routes.

Results are always in a deterministic order: the requested terms, then the primary
key. NULLs sort last in both directions, on every database, so pages agree between
SQLite and PostgreSQL. Offset pagination is the default; a router schema can choose
cursor pagination, whose opaque cursor is signed (a forged one is a 422) and positions
by the last row's sort values, so rows inserted between two pages neither repeat nor
skip rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic_core
from django.core import signing
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import F, Q
from django.db.models.expressions import OrderBy
from fastapi.exceptions import RequestValidationError

from djfapi.orm.mapping import FieldKind, SchemaDefinitionError, SchemaMapping
from djfapi.routing.filters import COUNT_SUFFIX, CountAnnotation, count_alias, counted_relation
from djfapi.routing.keyset import rows_after


@dataclass(frozen=True)
class OrderField:
    """One public ``order_by`` name."""

    name: str
    path: str  # ORM path, or the alias of a count annotation
    read_scopes: frozenset[str] = frozenset()
    count_relation: models.ManyToOneRel | None = None
    model_field: models.Field | None = None

    @property
    def count(self) -> CountAnnotation | None:
        return CountAnnotation(self.path, self.count_relation) if self.count_relation is not None else None

    @property
    def nullable(self) -> bool:
        return self.model_field is not None and self.model_field.null

    def python_value(self, value: Any) -> Any:
        """A cursor value (JSON) back as the Python value the database compares with."""
        if self.model_field is None:
            return int(value)
        return self.model_field.to_python(value)


class Ordering:
    """The orderable fields of a list route and how terms become ``ORDER BY``."""

    def __init__(self, fields: Sequence[OrderField], pk_name: str, default: Sequence[tuple[OrderField, bool]]):
        self.fields = {f.name: f for f in fields}
        self.pk_name = pk_name
        self.default = tuple(default)

    @property
    def choices(self) -> tuple[str, ...]:
        """Every accepted ``order_by`` value, for the OpenAPI enum."""
        return tuple(value for name in sorted(self.fields) for value in (name, f"-{name}"))

    def terms(self, requested: Sequence[str] | None) -> list[tuple[OrderField, bool]]:
        """(field, descending) pairs: the requested terms (or the default), then the primary key."""
        chosen = [(self.fields[term.lstrip("-")], term.startswith("-")) for term in requested or ()] or self.default
        terms = []
        seen = set()
        for field, descending in chosen:
            if field.path not in seen:
                seen.add(field.path)
                terms.append((field, descending))
        if "pk" not in seen and self.pk_name not in seen:
            terms.append((self.fields[self.pk_name], False))
        return terms

    @staticmethod
    def order_by(terms: Sequence[tuple[OrderField, bool]]) -> list[OrderBy]:
        """``ORDER BY`` of ``terms``; ``NULLS LAST`` only on nullable columns.

        PostgreSQL does not know that ``NULLS LAST`` changes nothing on a NOT NULL
        column, and would refuse an index for ``name DESC NULLS LAST``.
        """
        return [_order_term(field, descending) for field, descending in terms]


def _order_term(field: OrderField, descending: bool) -> OrderBy:
    nulls_last = True if field.nullable else None
    return F(field.path).desc(nulls_last=nulls_last) if descending else F(field.path).asc(nulls_last=nulls_last)


def compile_ordering(mapping: SchemaMapping, names: Sequence[str] | None, default: Sequence[str]) -> Ordering:
    """The ``order_by`` fields: ``names`` when given, else the read schema's plain columns; the pk always.

    Without ``default_order_by`` a list follows the model's ``Meta.ordering`` (as nested
    lists do), when it consists of plain columns.
    """
    model = mapping.model
    pk_name = model._meta.pk.name
    by_name = {f.name: f for f in mapping.fields}
    fields: list[OrderField] = []
    if names is None:
        names = [
            f.name
            for f in mapping.fields
            if f.kind is FieldKind.VALUE
            and len(f.path) == 1
            and isinstance(f.model_field, models.Field)
            and not f.model_field.is_relation
        ]
    for name in names:
        relation = counted_relation(model, name, "order_fields")
        if relation is not None:
            fields.append(OrderField(name, count_alias(name.removesuffix(COUNT_SUFFIX)), count_relation=relation))
            continue
        schema_field = by_name.get(name)
        if schema_field is None or not isinstance(schema_field.model_field, models.Field) or not schema_field.lookup:
            raise SchemaDefinitionError(
                f"order_fields: {name!r} is not a field of the list schema {mapping.schema.__name__} that maps to "
                f"a column of {model.__name__}"
            )
        fields.append(
            OrderField(
                name, schema_field.lookup, schema_field.options.read_scopes, model_field=schema_field.model_field
            )
        )
    if pk_name not in {f.name for f in fields}:
        fields.append(OrderField(pk_name, "pk", model_field=model._meta.pk))
    by_public_name = {f.name: f for f in fields}
    default_terms = []
    for term in default:
        if term.lstrip("-") not in by_public_name:
            raise SchemaDefinitionError(
                f"default_order_by term {term!r} is not orderable; choose from {sorted(by_public_name)}"
            )
        default_terms.append((by_public_name[term.lstrip("-")], term.startswith("-")))
    return Ordering(fields, pk_name, default_terms or meta_ordering(model))


def meta_ordering(model: type[models.Model]) -> list[tuple[OrderField, bool]]:
    """``Meta.ordering`` as order terms, or nothing when it uses more than plain columns."""
    terms = []
    for term in model._meta.ordering or ():
        if not isinstance(term, str) or "__" in term or term == "?":
            return []
        name = term.lstrip("-")
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return []
        if not isinstance(model_field, models.Field) or model_field.is_relation:
            return []
        terms.append((OrderField(name, name, model_field=model_field), term.startswith("-")))
    return terms


# -- cursors -------------------------------------------------------------------------------------------------------


class Cursor:
    """Signed, opaque keyset cursors for one route."""

    def __init__(self, salt: str):
        self.salt = f"djfapi.cursor:{salt}"

    def encode(self, terms: Sequence[tuple[OrderField, bool]], row: models.Model) -> str:
        return self.encode_values(terms, [_row_value(row, field) for field, _ in terms])

    def encode_values(self, terms: Sequence[tuple[OrderField, bool]], values: Sequence[Any]) -> str:
        """The cursor after a row whose sort values (in the order of ``terms``) are ``values``."""
        order = [("-" if descending else "") + field.name for field, descending in terms]
        payload = {"o": order, "v": pydantic_core.to_jsonable_python(values)}
        return signing.dumps(payload, salt=self.salt, compress=True)

    def decode(self, cursor: str, terms: Sequence[tuple[OrderField, bool]]) -> Q:
        """The condition selecting rows after the cursor's row; 422 when forged or for another order."""
        try:
            payload = signing.loads(cursor, salt=self.salt)
            order = [("-" if descending else "") + field.name for field, descending in terms]
            if payload["o"] != order or len(payload["v"]) != len(terms):
                raise ValueError("the cursor belongs to another order_by")
            values = [field.python_value(value) for (field, _), value in zip(terms, payload["v"], strict=True)]
        except (signing.BadSignature, ValueError, TypeError, KeyError, AttributeError) as error:
            message = str(error) if isinstance(error, ValueError) and "order_by" in str(error) else "invalid cursor"
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("query", "cursor"),
                        "msg": f"Invalid cursor: {message}.",
                        "input": cursor,
                    }
                ]
            ) from None
        return keyset_after(terms, values)


def _row_value(row: models.Model, field: OrderField) -> Any:
    if field.path == "pk":
        return row.pk
    value = row
    for part in field.path.split("__"):
        value = getattr(value, part)
    return value


def keyset_after(terms: Sequence[tuple[OrderField, bool]], values: Sequence[Any]) -> Q:
    """Rows strictly after ``values`` in the order ``terms`` (the last term is unique), as row comparisons."""
    fields = {field.path: field.model_field for field, _ in terms}
    keyed = [(field.path, descending, value) for (field, descending), value in zip(terms, values, strict=True)]
    return rows_after(keyed, fields)


def check_cursor_terms(terms: Sequence[tuple[OrderField, bool]]) -> None:
    nullable = [field.name for field, _ in terms if field.nullable]
    if nullable:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "order_by"),
                    "msg": f"Cursor pagination cannot order by nullable fields: {', '.join(nullable)}.",
                    "input": nullable,
                }
            ]
        )

"""Generated list filters: compiled once per route, parsed from the raw query string.

Declaring every filter as its own FastAPI parameter makes FastAPI resolve dozens of
parameters on every request, most of them absent. Instead a route compiles a
``FilterTable`` once — parameter name -> ORM lookup, value parser, scopes — parses the
query string against it, and documents the same table in OpenAPI. A parameter that is
not in the table is a 422 naming it: a misspelled filter must never yield a silently
unfiltered list.

The query language (SPEC §5):

* ``?field=value`` exact; for choice fields and foreign-key ids the parameter may
  repeat and means "any of";
* ``field__icontains`` for text, ``field__gte`` / ``field__lte`` for numbers, dates and
  datetimes, ``__date`` / ``__year`` / ``__month`` / ``__day`` for date parts,
  ``field__isnull`` for nullable fields, ``<relation>__count__gte`` / ``__lte`` for
  reverse relations;
* ``!`` in front of any parameter negates it (``?!status=inactive``).

Every value is checked before any SQL, so that the database never sees a value it would
refuse (SPEC §10, error classes): integers lie in the column's range, floats are finite,
decimals lie below the column's ``10**(max_digits - decimal_places)``, and every value
is at most ``DJFAPI["MAX_FILTER_LENGTH"]`` characters long (an exact text match also at
most the column's ``max_length``).

The query string itself has a budget, checked before anything else of a request is done
(``check_query_string``, called by ``DjfapiRoute``): ``DJFAPI["MAX_QUERY_LENGTH"]``
bytes and ``DJFAPI["MAX_QUERY_PARAMETERS"]`` parameters. "Did you mean" suggestions,
which cost difflib work per unknown name and known filter, are made for the first
``MAX_SUGGESTIONS`` unknown names only.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal

import pydantic
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, TypeAdapter

from djfapi.conf import TENANT_FIELD, setting
from djfapi.orm.mapping import FieldKind, SchemaDefinitionError, SchemaMapping

NEGATION = "!"
COUNT_SUFFIX = "__count"

DEFAULT_MAX_FILTER_LENGTH = 1000
DEFAULT_MAX_QUERY_PARAMETERS = 100
DEFAULT_MAX_QUERY_LENGTH = 8 * 1024
#: Unknown parameters that get a "did you mean" suggestion; the others are named without one.
MAX_SUGGESTIONS = 3


def max_filter_length() -> int:
    """``DJFAPI["MAX_FILTER_LENGTH"]``: the most characters of one filter value (default 1000)."""
    return int(setting("MAX_FILTER_LENGTH", DEFAULT_MAX_FILTER_LENGTH))


def check_query_string(query_string: bytes) -> None:
    """422 at ``["query"]`` when the raw query string is over its budget.

    ``DJFAPI["MAX_QUERY_LENGTH"]`` bytes as sent (percent-encoded; default 8 KiB) and
    ``DJFAPI["MAX_QUERY_PARAMETERS"]`` parameters (default 100). Meant to run before
    anything else of a request: FastAPI parsing a 120 KB query string alone takes 8 ms
    of the event loop. The length is checked first, so counting scans at most that many bytes.
    """
    longest = int(setting("MAX_QUERY_LENGTH", DEFAULT_MAX_QUERY_LENGTH))
    if len(query_string) > longest:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("query",),
                    "msg": f"Query string should have at most {longest} bytes, not {len(query_string)}",
                    "ctx": {"max_length": longest},
                }
            ]
        )
    most = int(setting("MAX_QUERY_PARAMETERS", DEFAULT_MAX_QUERY_PARAMETERS))
    count = sum(1 for part in query_string.split(b"&") if part)
    if count > most:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("query",),
                    "msg": f"Query string should have at most {most} parameters, not {count}",
                    "ctx": {"field_type": "Query string", "max_length": most, "actual_length": count},
                }
            ]
        )


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _aware(value: datetime.datetime) -> datetime.datetime:
    # A naive datetime means the server's time zone, as in Django forms. In UTC it must
    # still be a representable datetime (0001-01-01T00:00+14:00 is not).
    try:
        aware = timezone.make_aware(value) if timezone.is_naive(value) else value
        return aware.astimezone(datetime.UTC)
    except (OverflowError, ValueError):
        raise ValueError("datetime is out of range") from None


@dataclass(frozen=True)
class _DecimalRange:
    """A decimal filter value must fit the column: PostgreSQL refuses a ``numeric`` beyond
    its own limits (``1e999999``: "value overflows numeric format") rather than compare it.
    Digits finer than the column stay allowed: they are compared exactly."""

    label: str
    whole_digits: int | None  # digits before the decimal point; None: the column does not say

    def __call__(self, value: Decimal) -> Decimal:
        if self.whole_digits is not None and value.copy_abs() >= Decimal(f"1e{self.whole_digits}"):
            raise ValueError(
                f"out of range: {self.label} holds numbers with at most {self.whole_digits} digits before the "
                f"decimal point"
            )
        exponent = value.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) else 0
        if places > max_filter_length():
            raise ValueError(f"too precise: at most {max_filter_length()} digits after the decimal point")
        return value


def _decimal_range(model_field: models.DecimalField) -> _DecimalRange:
    digits, places = model_field.max_digits, model_field.decimal_places
    whole = digits - (places or 0) if digits is not None else None
    return _DecimalRange(str(model_field.verbose_name), whole)


Text = Annotated[str, AfterValidator(_no_nul)]
AwareDatetime = Annotated[datetime.datetime, AfterValidator(_aware)]

_INTEGER_RANGES = BaseDatabaseOperations.integer_field_ranges
_AUTO_TO_INTEGER = {
    "AutoField": "IntegerField",
    "BigAutoField": "BigIntegerField",
    "SmallAutoField": "SmallIntegerField",
}


def python_type(model_field: models.Field) -> Any:
    """The type a query-string value for ``model_field`` is parsed as."""
    if isinstance(model_field, models.ForeignKey):
        return python_type(model_field.target_field)
    if model_field.choices:
        return Literal[tuple(value for value, _ in model_field.flatchoices)]
    internal = model_field.get_internal_type()
    integer = _AUTO_TO_INTEGER.get(internal, internal)
    if integer in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[integer]
        return Annotated[int, pydantic.Field(ge=low, le=high)]
    if isinstance(model_field, models.BooleanField):
        return bool
    if isinstance(model_field, models.DecimalField):
        return Annotated[Decimal, pydantic.Field(allow_inf_nan=False), AfterValidator(_decimal_range(model_field))]
    if isinstance(model_field, models.FloatField):
        return Annotated[float, pydantic.Field(allow_inf_nan=False)]
    if isinstance(model_field, models.UUIDField):
        return uuid.UUID
    if isinstance(model_field, models.DateTimeField):
        return AwareDatetime
    if isinstance(model_field, models.DateField):
        return datetime.date
    if isinstance(model_field, models.TimeField):
        return datetime.time
    return Text


def is_text(model_field: models.Field) -> bool:
    return isinstance(model_field, models.CharField | models.TextField) and not model_field.choices


def is_ordered(model_field: models.Field) -> bool:
    """Numbers, dates and datetimes: the fields ``__gte``/``__lte`` make sense for."""
    if model_field.is_relation or model_field.choices or isinstance(model_field, models.BooleanField):
        return False
    return isinstance(
        model_field,
        models.IntegerField | models.DecimalField | models.FloatField | models.DateField | models.TimeField,
    )


def is_multi_valued(model_field: models.Field) -> bool:
    """Choice fields and foreign keys: the plain parameter may repeat (any of)."""
    return bool(model_field.choices) or isinstance(model_field, models.ForeignKey)


_YEAR = Annotated[int, pydantic.Field(ge=1, le=9999)]
_MONTH = Annotated[int, pydantic.Field(ge=1, le=12)]
_DAY = Annotated[int, pydantic.Field(ge=1, le=31)]
_COUNT_BOUND = Annotated[int, pydantic.Field(ge=0, le=2**31 - 1)]


@dataclass(frozen=True)
class FilterSpec:
    """One query parameter: how it is parsed and what it filters."""

    name: str
    lookup: str  # ORM lookup applied to the value(s), relative to the model
    value_type: Any
    many: bool = False
    read_scopes: frozenset[str] = frozenset()
    through_many: bool = False  # the path crosses a to-many relation: filter with a subquery
    annotation: str | None = None  # an annotation (relation count) the lookup needs
    description: str = ""
    max_length: int | None = None  # the column's, for exact text matches: a longer value can never match

    def longest_value(self) -> int:
        """The most characters a value of this parameter may have."""
        limit = max_filter_length()
        return min(limit, self.max_length) if self.max_length else limit

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.value_type)

    def openapi(self) -> dict[str, Any]:
        schema = self.adapter.json_schema()
        if self.many:
            schema = {"type": "array", "items": schema}
        return {"name": self.name, "in": "query", "required": False, "description": self.description, "schema": schema}


@dataclass
class ParsedFilters:
    """The result of parsing one query string."""

    q: Q = field(default_factory=Q)
    counts: list[CountAnnotation] = field(default_factory=list)
    used: list[FilterSpec] = field(default_factory=list)
    positive: dict[str, list[Any]] = field(default_factory=dict)  # lookup base -> values asked for (unnegated exact)


@dataclass(frozen=True)
class CountAnnotation:
    """``<relation>__count``: the number of related rows, as a correlated subquery.

    A subquery (not ``Count`` with GROUP BY) stays correct whatever else the query joins
    and keeps the main query free of GROUP BY.
    """

    alias: str
    relation: models.ManyToOneRel

    def expression(self) -> Any:
        related = self.relation.related_model
        fk = self.relation.field.name
        counts = (
            related._default_manager.filter(**{fk: OuterRef("pk")})
            .order_by()
            .values(fk)
            .annotate(n=Count("pk"))
            .values("n")
        )
        return Coalesce(Subquery(counts, output_field=models.IntegerField()), 0)


class FilterTable:
    """Every filter parameter of one list route."""

    def __init__(self, model: type[models.Model], specs: Iterable[FilterSpec], counts: Iterable[CountAnnotation]):
        self.model = model
        self.specs = {spec.name: spec for spec in specs}
        self.counts = {count.alias: count for count in counts}

    def __len__(self) -> int:
        return len(self.specs)

    def parse(self, items: Sequence[tuple[str, str]], declared: frozenset[str]) -> ParsedFilters:
        """Parse ``(name, value)`` pairs; 422 for unknown names and malformed values."""
        grouped: dict[str, list[str]] = {}
        errors: list[dict[str, Any]] = []
        unknown = 0
        for name, value in items:
            if name in declared:
                continue
            if name.removeprefix(NEGATION) not in self.specs:
                errors.append(self._unknown(name, value, declared, suggest=unknown < MAX_SUGGESTIONS))
                unknown += 1
                continue
            grouped.setdefault(name, []).append(value)

        parsed = ParsedFilters()
        for name, raw_values in grouped.items():
            negated = name.startswith(NEGATION)
            spec = self.specs[name.removeprefix(NEGATION)]
            if len(raw_values) > 1 and not spec.many:
                errors.append(
                    {
                        "type": "value_error",
                        "loc": ("query", name),
                        "msg": "This filter may be given once.",
                        "input": raw_values,
                    }
                )
                continue
            values = []
            longest = spec.longest_value()
            for raw in raw_values:
                if len(raw) > longest:
                    errors.append(_too_long(name, raw, longest))
                    continue
                try:
                    values.append(spec.adapter.validate_python(raw))
                except pydantic.ValidationError as error:
                    for item in error.errors(include_url=False):
                        errors.append({**item, "loc": ("query", name, *item["loc"]), "input": raw})
            if errors:
                continue
            condition = self._condition(spec, values)
            parsed.q &= ~condition if negated else condition
            parsed.used.append(spec)
            if spec.annotation:
                parsed.counts.append(self.counts[spec.annotation])
            if not negated and spec.lookup.split("__")[-1] in ("exact", "in"):
                parsed.positive.setdefault(spec.lookup.rsplit("__", 1)[0], []).extend(values)
        if errors:
            raise RequestValidationError(errors)
        return parsed

    def _condition(self, spec: FilterSpec, values: list[Any]) -> Q:
        lookup, value = (spec.lookup, values) if spec.many else (spec.lookup, values[0])
        if spec.many and len(values) == 1:
            lookup, value = spec.lookup.removesuffix("__in") + "__exact", values[0]
        if spec.through_many:
            matching = self.model._default_manager.filter(**{lookup: value}).values("pk")
            return Q(pk__in=matching)
        return Q(**{lookup: value})

    def _unknown(self, name: str, value: str, declared: frozenset[str], *, suggest: bool) -> dict[str, Any]:
        # difflib compares the name with every known one: cheap for a few names, seconds
        # for thousands, hence only for the first MAX_SUGGESTIONS unknown names.
        close = difflib.get_close_matches(name.removeprefix(NEGATION), [*self.specs, *declared], n=1) if suggest else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return {
            "type": "extra_forbidden",
            "loc": ("query", name),
            "msg": f"Unknown query parameter {name!r}{hint}",
            "input": value,
        }

    def openapi_parameters(self) -> list[dict[str, Any]]:
        return [spec.openapi() for spec in self.specs.values()]


def _too_long(name: str, raw: str, longest: int) -> dict[str, Any]:
    return {
        "type": "string_too_long",
        "loc": ("query", name),
        "msg": f"String should have at most {longest} characters",
        "input": raw,
        "ctx": {"max_length": longest},
    }


def annotate_counts(queryset: models.QuerySet[Any], counts: Iterable[CountAnnotation]) -> models.QuerySet[Any]:
    """Add each count annotation once (filters, ordering and aggregates may share one)."""
    wanted = {count.alias: count for count in counts}
    return queryset.annotate(**{alias: count.expression() for alias, count in wanted.items()}) if wanted else queryset


# -- compiling a table ---------------------------------------------------------------------------------------------


def count_alias(relation_name: str) -> str:
    return f"djfapi_count_{relation_name}"


def field_filters(
    name: str, lookup: str, model_field: models.Field, read_scopes: frozenset[str], through_many: bool = False
) -> list[FilterSpec]:
    """The filters one model field gets (its name in the query string is ``name``)."""
    label = str(model_field.verbose_name)
    value_type = python_type(model_field)
    spec = functools.partial(FilterSpec, read_scopes=read_scopes, through_many=through_many)
    many = is_multi_valued(model_field)
    column = model_field.target_field if isinstance(model_field, models.ForeignKey) else model_field
    specs = [
        spec(
            name,
            f"{lookup}__in" if many else f"{lookup}__exact",
            value_type,
            many=many,
            description=f"{label}: equal to" + (" (repeat for any of several values)" if many else ""),
            max_length=column.max_length if is_text(column) else None,
        )
    ]
    if is_text(model_field):
        specs.append(
            spec(f"{name}__icontains", f"{lookup}__icontains", Text, description=f"{label}: contains, ignoring case")
        )
    if is_ordered(model_field):
        specs.append(spec(f"{name}__gte", f"{lookup}__gte", value_type, description=f"{label}: at least"))
        specs.append(spec(f"{name}__lte", f"{lookup}__lte", value_type, description=f"{label}: at most"))
    if isinstance(model_field, models.DateField):
        if isinstance(model_field, models.DateTimeField):
            specs.append(spec(f"{name}__date", f"{lookup}__date", datetime.date, description=f"{label}: on this date"))
        for part, part_type in (("year", _YEAR), ("month", _MONTH), ("day", _DAY)):
            specs.append(spec(f"{name}__{part}", f"{lookup}__{part}", part_type, description=f"{label}: {part}"))
    if model_field.null:
        specs.append(
            spec(
                f"{name}__isnull", f"{lookup}__isnull", bool, description=f"{label}: is (true) or is not (false) empty"
            )
        )
    return specs


def count_filters(
    relation_name: str, relation: models.ManyToOneRel, read_scopes: frozenset[str] = frozenset()
) -> tuple[list[FilterSpec], CountAnnotation]:
    alias = count_alias(relation_name)
    label = f"number of {relation_name}"
    specs = [
        FilterSpec(
            f"{relation_name}__count__gte",
            f"{alias}__gte",
            _COUNT_BOUND,
            annotation=alias,
            read_scopes=read_scopes,
            description=f"{label}: at least",
        ),
        FilterSpec(
            f"{relation_name}__count__lte",
            f"{alias}__lte",
            _COUNT_BOUND,
            annotation=alias,
            read_scopes=read_scopes,
            description=f"{label}: at most",
        ),
    ]
    return specs, CountAnnotation(alias, relation)


def counted_relation(model: type[models.Model], name: str, option: str) -> models.ManyToOneRel | None:
    """The reverse relation that ``name`` counts (``departments__count``); None when ``name`` is no count."""
    if not name.endswith(COUNT_SUFFIX):
        return None
    relation_name = name.removesuffix(COUNT_SUFFIX)
    relation = reverse_relation(model, relation_name)
    if relation is None:
        raise SchemaDefinitionError(
            f"{option}: {name!r} counts {relation_name!r}, which is not a reverse relation of {model.__name__}"
        )
    return relation


def reverse_relation(model: type[models.Model], name: str) -> models.ManyToOneRel | None:
    for relation in model._meta.related_objects:
        if (
            isinstance(relation, models.ManyToOneRel)
            and not relation.many_to_many
            and (relation.get_accessor_name() == name or relation.name == name)
        ):
            return relation
    return None


def default_filters(
    mapping: SchemaMapping, child_relations: Iterable[str], parent_field: models.ForeignKey | None = None
) -> FilterTable:
    """Filters for the read schema's own model fields, and counts of its nested lists and child routes.

    Left out: ``tenant_id`` (the token's) and the parent's foreign key (the URL's).
    """
    specs: list[FilterSpec] = []
    counts: list[CountAnnotation] = []
    relations: dict[str, frozenset[str]] = {}
    for f in mapping.fields:
        read_scopes = f.options.read_scopes
        if f.kind is FieldKind.LIST and len(f.path) == 1:
            relations.setdefault(f.path[0], read_scopes)
            continue
        if f.kind is not FieldKind.VALUE or len(f.path) != 1 or not isinstance(f.model_field, models.Field):
            continue
        if f.model_field.name == TENANT_FIELD or f.model_field is parent_field or f.model_field.many_to_many:
            continue  # fixed by the token or the URL: filtering on them can only narrow to nothing
        specs.extend(field_filters(f.name, f.path[0], f.model_field, read_scopes))
    for name in child_relations:
        relations.setdefault(name, frozenset())
    for name, read_scopes in relations.items():
        relation = reverse_relation(mapping.model, name)
        if relation is not None:
            relation_specs, count = count_filters(name, relation, read_scopes)
            specs.extend(relation_specs)
            counts.append(count)
    return FilterTable(mapping.model, specs, counts)


def explicit_filters(
    mapping: SchemaMapping, paths: Sequence[str], column_scopes: Callable[[models.Field], frozenset[str]]
) -> FilterTable:
    """Filters for exactly the given paths (``name``, ``employees__type``, ``departments__count``).

    ``column_scopes`` gives the read scopes of a column reached through a relation, as the
    schemas that show that column declare them, so hidden fields stay hidden.
    """
    specs: list[FilterSpec] = []
    counts: list[CountAnnotation] = []
    by_name = {f.name: f for f in mapping.fields}
    for path in paths:
        relation = counted_relation(mapping.model, path, "filter_fields")
        if relation is not None:
            relation_specs, count = count_filters(path.removesuffix(COUNT_SUFFIX), relation)
            specs.extend(relation_specs)
            counts.append(count)
            continue
        schema_field = by_name.get(path)
        if schema_field is not None and isinstance(schema_field.model_field, models.Field) and schema_field.lookup:
            specs.extend(
                field_filters(path, schema_field.lookup, schema_field.model_field, schema_field.options.read_scopes)
            )
            continue
        model_field, through_many = resolve_path(mapping.model, path)
        specs.extend(field_filters(path, path, model_field, column_scopes(model_field), through_many=through_many))
    return FilterTable(mapping.model, specs, counts)


def resolve_path(model: type[models.Model], path: str) -> tuple[models.Field, bool]:
    """The field at the end of ``path`` and whether the path crosses a to-many relation."""
    current: Any = model
    through_many = False
    model_field: Any = None
    parts = path.split("__")
    for index, part in enumerate(parts):
        try:
            model_field = current._meta.get_field(part)
        except FieldDoesNotExist:
            raise SchemaDefinitionError(
                f"filter_fields: {path!r} does not name a field of {model.__name__} ({part!r} is not a field of "
                f"{current.__name__})"
            ) from None
        if index < len(parts) - 1:
            if not model_field.is_relation:
                raise SchemaDefinitionError(f"filter_fields: {path!r} goes through {part!r}, which is not a relation")
            through_many = through_many or model_field.one_to_many or model_field.many_to_many
            current = model_field.related_model
        elif not isinstance(model_field, models.Field) or model_field.many_to_many:
            raise SchemaDefinitionError(f"filter_fields: {path!r} must end on a column, not a relation")
    return model_field, through_many

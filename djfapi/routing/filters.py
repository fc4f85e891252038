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

from djfapi.conf import TENANT_FIELD
from djfapi.orm.mapping import FieldKind, SchemaDefinitionError, SchemaMapping

NEGATION = "!"
COUNT_SUFFIX = "__count"


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
        return Annotated[Decimal, pydantic.Field(allow_inf_nan=False)]
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
        for name, value in items:
            if name in declared:
                continue
            if name.removeprefix(NEGATION) not in self.specs:
                errors.append(self._unknown(name, value, declared))
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
            for raw in raw_values:
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

    def _unknown(self, name: str, value: str, declared: frozenset[str]) -> dict[str, Any]:
        known = [*self.specs, *declared]
        close = difflib.get_close_matches(name.removeprefix(NEGATION), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return {
            "type": "extra_forbidden",
            "loc": ("query", name),
            "msg": f"Unknown query parameter {name!r}{hint}",
            "input": value,
        }

    def openapi_parameters(self) -> list[dict[str, Any]]:
        return [spec.openapi() for spec in self.specs.values()]


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
    specs = [
        spec(
            name,
            f"{lookup}__in" if many else f"{lookup}__exact",
            value_type,
            many=many,
            description=f"{label}: equal to" + (" (repeat for any of several values)" if many else ""),
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

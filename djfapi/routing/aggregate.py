"""The aggregate route: ``GET .../aggregate/{function}/{field}?group_by=...``.

``function`` is one of avg, count, max, min, sum; ``field`` one of the router schema's
``aggregate_fields`` (numeric columns, ``<relation>__count``, the primary key for
counting rows, or paths through relations such as ``departments__budget``);
``group_by`` (repeatable) one of its ``aggregate_group_by`` (choice fields, foreign
keys, the primary key, date parts such as ``created_at__year``). The result is
``{"values": [{"value": <x>, <group_by name>: <group value>, ...}]}``, one entry per
group in group order. Decimal results are JSON strings, so no precision is lost; an
average of a decimal column is rounded to the column's decimal places, the same on
every database.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pydantic
from django.db import connections, models
from django.db.models import Avg, Count, F, Max, Min, Sum
from django.db.models.expressions import Star
from django.db.models.functions import Cast, ExtractDay, ExtractMonth, ExtractYear, Round, TruncDate
from fastapi.exceptions import RequestValidationError

from djfapi.counts import counted_groups, counted_total
from djfapi.orm.mapping import SchemaDefinitionError, SchemaMapping
from djfapi.routing.filters import (
    COUNT_SUFFIX,
    CountAnnotation,
    count_alias,
    counted_relation,
    is_ordered,
    resolve_path,
)

DATE_PARTS = {"year": ExtractYear, "month": ExtractMonth, "day": ExtractDay, "date": TruncDate}


class AggregateFunction(enum.StrEnum):
    AVG = "avg"
    COUNT = "count"
    MAX = "max"
    MIN = "min"
    SUM = "sum"


_FUNCTIONS = {
    AggregateFunction.AVG: Avg,
    AggregateFunction.COUNT: Count,
    AggregateFunction.MAX: Max,
    AggregateFunction.MIN: Min,
    AggregateFunction.SUM: Sum,
}


class AggregateValues(pydantic.BaseModel):
    """The body of an aggregate route."""

    values: list[dict[str, Any]] = pydantic.Field(
        description='One entry per group: {"value": <result>, <group_by name>: <group value>, ...}'
    )


@dataclass(frozen=True)
class AggregateField:
    name: str
    path: str
    model_field: models.Field | None  # None for relation counts
    read_scopes: frozenset[str] = frozenset()
    count: CountAnnotation | None = None

    @property
    def numeric(self) -> bool:
        if self.count is not None:
            return True
        return isinstance(self.model_field, models.IntegerField | models.DecimalField | models.FloatField) and not (
            self.model_field.is_relation or self.model_field.choices
        )

    @property
    def orderable(self) -> bool:
        return self.count is not None or (self.model_field is not None and is_ordered(self.model_field))

    def allows(self, function: AggregateFunction) -> bool:
        if function is AggregateFunction.COUNT:
            return True
        if function in (AggregateFunction.MIN, AggregateFunction.MAX):
            return self.orderable
        return self.numeric

    def finish(self, function: AggregateFunction, value: Any) -> Any:
        """Make results equal on every database (SQLite returns floats where PostgreSQL has numerics)."""
        if value is None or function is AggregateFunction.COUNT:
            return value
        if isinstance(self.model_field, models.DecimalField):
            places = Decimal(1).scaleb(-self.model_field.decimal_places)
            return Decimal(str(value)).quantize(places, rounding=ROUND_HALF_EVEN)
        if function is AggregateFunction.AVG:
            return float(value)
        return value


@dataclass(frozen=True)
class GroupBy:
    name: str
    expression: Any
    read_scopes: frozenset[str] = frozenset()


class AggregateTable:
    def __init__(self, fields: Sequence[AggregateField], group_by: Sequence[GroupBy]):
        self.fields = {f.name: f for f in fields}
        self.group_by = {g.name: g for g in group_by}

    @property
    def query_parameters(self) -> frozenset[str]:
        """Query parameters the route declares itself; every other one must be a filter."""
        return frozenset({"group_by"}) if self.group_by else frozenset()

    def check(self, function: AggregateFunction, field: AggregateField) -> None:
        if not field.allows(function):
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("path", "function"),
                        "msg": f"{function.value} is not defined for field {field.name!r}",
                        "input": function.value,
                    }
                ]
            )

    def run(
        self,
        queryset: models.QuerySet[Any],
        function: AggregateFunction,
        field: AggregateField,
        group_by: Sequence[GroupBy],
    ) -> list[dict[str, Any]]:
        if field.count is not None:
            queryset = queryset.annotate(**{field.count.alias: field.count.expression()})
        aliases = {group.name: f"djfapi_group_{index}" for index, group in enumerate(group_by)}
        queryset = queryset.order_by().annotate(**{aliases[group.name]: group.expression for group in group_by})
        if self._needs_exact_decimals(queryset, function, field):
            if _fits_scaled_integers(field.model_field):
                return self._run_scaled(queryset, function, field, aliases)
            return self._run_in_python(queryset, function, field, aliases)
        aggregate = _aggregate(function, field)
        if _counts_rows(aggregate):
            counted = _from_counter(queryset, aliases)
            if counted is not None:
                return counted
        if not group_by:
            return [{"value": field.finish(function, queryset.aggregate(value=aggregate)["value"])}]
        rows = (
            queryset.values(*aliases.values())
            .annotate(value=aggregate)
            .order_by(*(F(alias).asc(nulls_last=True) for alias in aliases.values()))
        )
        return [
            {"value": field.finish(function, row["value"]), **{name: row[alias] for name, alias in aliases.items()}}
            for row in rows
        ]

    @staticmethod
    def _needs_exact_decimals(
        queryset: models.QuerySet[Any], function: AggregateFunction, field: AggregateField
    ) -> bool:
        # SQLite keeps decimals as binary floats and sums them as such: past 15 significant
        # digits cents go missing. Its rows are exact once Django has read them, so add up there.
        return (
            function in (AggregateFunction.SUM, AggregateFunction.AVG)
            and isinstance(field.model_field, models.DecimalField)
            and connections[queryset.db].vendor == "sqlite"
        )

    @staticmethod
    def _run_scaled(
        queryset: models.QuerySet[Any], function: AggregateFunction, field: AggregateField, aliases: dict[str, str]
    ) -> list[dict[str, Any]]:
        # Each value times 10**places, rounded, is its exact integer (see _fits_scaled_integers),
        # and SQLite adds integers exactly: the database does the work, no row reaches Python.
        assert isinstance(field.model_field, models.DecimalField)
        places = field.model_field.decimal_places
        scaled = Cast(Round(F(field.path) * (10**places)), models.BigIntegerField())
        sums = {"djfapi_total": Sum(scaled), "djfapi_count": Count(field.path)}

        def value(total: int | None, count: int) -> Any:
            if total is None:
                return None
            exact = Decimal(total).scaleb(-places)
            return field.finish(function, exact if function is AggregateFunction.SUM else exact / count)

        if not aliases:
            row = queryset.aggregate(**sums)
            return [{"value": value(row["djfapi_total"], row["djfapi_count"])}]
        rows = (
            queryset.values(*aliases.values())
            .annotate(**sums)
            .order_by(*(F(alias).asc(nulls_last=True) for alias in aliases.values()))
        )
        return [
            {
                "value": value(row["djfapi_total"], row["djfapi_count"]),
                **{name: row[alias] for name, alias in aliases.items()},
            }
            for row in rows
        ]

    @staticmethod
    def _run_in_python(
        queryset: models.QuerySet[Any], function: AggregateFunction, field: AggregateField, aliases: dict[str, str]
    ) -> list[dict[str, Any]]:
        groups: dict[tuple[Any, ...], list[Decimal]] = {}
        for *key, value in queryset.values_list(*aliases.values(), field.path):
            values = groups.setdefault(tuple(key), [])
            if value is not None:
                values.append(value)
        if not aliases and not groups:
            groups[()] = []
        results = []
        for key in sorted(groups, key=lambda key: tuple((part is None, part) for part in key)):
            values = groups[key]
            total = sum(values, Decimal(0)) if values else None
            value = total if function is AggregateFunction.SUM or total is None else total / len(values)
            results.append({"value": field.finish(function, value), **dict(zip(aliases, key, strict=True))})
        return results


def _aggregate(function: AggregateFunction, field: AggregateField) -> Any:
    """The aggregate expression; ``COUNT(*)`` for a count of a NOT NULL column of the model itself.

    Both count every row, but ``COUNT(*)`` needs no column: PostgreSQL can answer it from
    an index over the filter and group columns alone (an index-only scan).
    """
    column = field.model_field
    if (
        function is AggregateFunction.COUNT
        and field.count is None
        and column is not None
        and not column.null
        and (field.path == "pk" or "__" not in field.path)
    ):
        return Count("*")
    return _FUNCTIONS[function](field.path)


def _from_counter(queryset: models.QuerySet[Any], aliases: dict[str, str]) -> list[dict[str, Any]] | None:
    """``COUNT(*)`` per group from the model's row counter (``djfapi.counts``), when its columns allow."""
    if not aliases:
        total = counted_total(queryset)
        return None if total is None else [{"value": total}]
    groups = counted_groups(queryset, list(aliases.values()))
    if groups is None:
        return None
    return [{"value": row[-1], **dict(zip(aliases, row[:-1], strict=True))} for row in groups]


def _counts_rows(aggregate: Any) -> bool:
    """Whether the aggregate is ``COUNT(*)``: the one a row counter can answer."""
    return (
        isinstance(aggregate, Count)
        and isinstance(aggregate.source_expressions[0], Star)
        and not getattr(aggregate, "distinct", False)
        and aggregate.filter is None
    )


def _fits_scaled_integers(model_field: models.Field | None) -> bool:
    """Whether every value of a decimal column is exact as a float and times 10**places.

    SQLite stores such decimals as 8-byte floats. With at most 15 significant digits a
    float tells every decimal apart, and value * 10**places stays below 2**53, where
    floats hold integers exactly, so rounding it gives the exact scaled integer.
    """
    return isinstance(model_field, models.DecimalField) and (model_field.max_digits or 99) <= 15


def compile_aggregates(
    mapping: SchemaMapping, fields: Sequence[str], group_by: Sequence[str], column_scopes: Any
) -> AggregateTable:
    """Resolve ``aggregate_fields`` and ``aggregate_group_by`` against the model, at definition time."""
    model = mapping.model
    schema_fields = {f.name: f for f in mapping.fields}

    def scopes_of(name: str, model_field: models.Field | None) -> frozenset[str]:
        schema_field = schema_fields.get(name)
        if schema_field is not None:
            return schema_field.options.read_scopes
        return column_scopes(model_field) if model_field is not None else frozenset()

    resolved_fields = []
    for name in fields:
        relation = counted_relation(model, name, "aggregate_fields")
        if relation is not None:
            alias = count_alias(name.removesuffix(COUNT_SUFFIX))
            resolved_fields.append(AggregateField(name, alias, None, count=CountAnnotation(alias, relation)))
            continue
        model_field, path = _column(model, schema_fields, name, "aggregate_fields")
        resolved_fields.append(AggregateField(name, path, model_field, scopes_of(name, model_field)))

    resolved_groups = []
    for name in group_by:
        base, _, part = name.rpartition("__")
        if part in DATE_PARTS and base:
            model_field, path = _column(model, schema_fields, base, "aggregate_group_by")
            if not isinstance(model_field, models.DateField) or (
                part == "date" and not isinstance(model_field, models.DateTimeField)
            ):
                raise SchemaDefinitionError(f"aggregate_group_by: {name!r} takes a date part of a non-date field")
            resolved_groups.append(GroupBy(name, DATE_PARTS[part](path), scopes_of(base, model_field)))
            continue
        model_field, path = _column(model, schema_fields, name, "aggregate_group_by")
        if not (
            model_field.choices
            or model_field.is_relation
            or model_field.primary_key
            or isinstance(model_field, models.BooleanField)
        ):
            raise SchemaDefinitionError(
                f"aggregate_group_by: {name!r} is neither a choice field, a foreign key, a boolean nor the primary key"
            )
        resolved_groups.append(GroupBy(name, F(path), scopes_of(name, model_field)))
    return AggregateTable(resolved_fields, resolved_groups)


def _column(
    model: type[models.Model], schema_fields: dict[str, Any], name: str, option: str
) -> tuple[models.Field, str]:
    schema_field = schema_fields.get(name)
    if schema_field is not None and isinstance(schema_field.model_field, models.Field) and schema_field.lookup:
        return schema_field.model_field, schema_field.lookup
    try:
        model_field, _ = resolve_path(model, name)
    except SchemaDefinitionError as error:
        raise SchemaDefinitionError(str(error).replace("filter_fields", option)) from None
    return model_field, name

"""Keyset conditions as row-value comparisons, so a deep cursor page costs what the first costs.

``name > x OR (name = x AND id > y)`` selects the right rows, but PostgreSQL can only
apply it as a filter: it reads every row before the cursor's and throws them away. The
row comparison ``(name, id) > (x, y)`` means the same and is an index range on an index
over ``(…, name, id)`` — on PostgreSQL and on SQLite (>= 3.15) alike.

Mixed directions (``order_by=-created_at&order_by=id``) cannot be one row comparison.
The terms are split into runs of one direction; the condition is the first run's row
comparison widened to "at or after" (``(created_at) <= (x)``: a range either database
plans on the index), AND-ed with the exact "strictly after" over every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.expressions import Expression


class RowComparison(Expression):
    """``(a, b, …) <op> (x, y, …)``: a boolean expression usable in ``.filter()``."""

    conditional = True
    output_field = models.BooleanField()

    def __init__(self, columns: Sequence[Any], operator: str, values: Sequence[Any]):
        if operator not in ("<", "<=", "=", ">=", ">"):
            raise ValueError(f"unsupported row comparison {operator!r}")
        if len(columns) != len(values) or not columns:
            raise ValueError("a row comparison needs as many values as columns, at least one")
        super().__init__(output_field=models.BooleanField())
        self.columns = list(columns)
        self.operator = operator
        self.values = list(values)

    def get_source_expressions(self) -> list[Any]:
        return [*self.columns, *self.values]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        half = len(exprs) // 2
        self.columns, self.values = list(exprs[:half]), list(exprs[half:])

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        left, left_params = self._row(compiler, connection, self.columns)
        right, right_params = self._row(compiler, connection, self.values)
        return f"{left} {self.operator} {right}", [*left_params, *right_params]

    @staticmethod
    def _row(compiler: Any, connection: Any, expressions: Sequence[Any]) -> tuple[str, list[Any]]:
        parts, params = [], []
        for expression in expressions:
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        return f"({', '.join(parts)})", params


def direction_runs(terms: Sequence[tuple[str, bool, Any]]) -> list[list[tuple[str, bool, Any]]]:
    """``(path, descending, value)`` terms grouped into consecutive runs of one direction."""
    runs: list[list[tuple[str, bool, Any]]] = []
    for term in terms:
        if runs and runs[-1][0][1] == term[1]:
            runs[-1].append(term)
        else:
            runs.append([term])
    return runs


def _compare(run: Sequence[tuple[str, bool, Any]], operator: str, fields: dict[str, models.Field | None]) -> Any:
    columns = [F(path) for path, _, _ in run]
    values = [Value(value, output_field=fields.get(path)) for path, _, value in run]
    return RowComparison(columns, operator, values)


def rows_after(terms: Sequence[tuple[str, bool, Any]], fields: dict[str, models.Field | None]) -> Q:
    """Rows strictly after the values in the order ``terms`` (``(path, descending, value)``; the last is unique).

    ``fields`` gives each path's model field, so values are sent as that column stores
    them (a UUID as SQLite's hex text); ``None`` for annotations.
    """
    runs = direction_runs(terms)
    after: Q | None = None
    equal: list[Any] = []
    for run in runs:
        strictly = _compare(run, "<" if run[0][1] else ">", fields)
        step = Q(*equal, strictly)
        after = step if after is None else after | step
        equal.append(_compare(run, "=", fields))
    assert after is not None
    if len(runs) == 1:
        return after
    first = runs[0]
    at_or_after = _compare(first, "<=" if first[0][1] else ">=", fields)
    return Q(at_or_after) & after

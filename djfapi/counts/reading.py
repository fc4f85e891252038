"""Answering a count from the counter table, when the query lets it.

A counter row stands for every row of the model with its values in the counted
columns. A condition that compares only those columns is true or false for all of them
alike, so summing the rows of the counter where the condition holds is the count of
the model's rows where it holds — whatever the condition's shape (``AND``, ``OR``,
``NOT``, ``IN``, ranges). The condition is the query's own ``WHERE``, compiled by
Django for the model's table and run against the counter table under the model table's
alias: the very SQL, the very parameters, nothing translated.

Anything else in the query — a join, a subquery, a column the counter does not hold,
an annotation, ``DISTINCT``, raw ``extra()`` — and the answer is None: count the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import FullResultSet
from django.db import connections
from django.db.models import QuerySet
from django.db.models.expressions import Col
from django.db.models.lookups import Lookup
from django.db.models.sql import Query
from django.db.models.sql.where import WhereNode

from djfapi.counts import ddl
from djfapi.counts.lookup import Counter, counter_of


def counted_total(rows: QuerySet[Any]) -> int | None:
    """``rows.count()`` from the model's counter; None when the counter cannot answer it."""
    query = rows.query
    counter = _counter_for(rows, query)
    if counter is None or query.annotations:
        return None
    where = _where(query, counter, rows.db)
    if where is None:
        return None
    sql, params = where
    with connections[rows.db].cursor() as cursor:
        cursor.execute(f"SELECT SUM({_q(rows.db, ddl.ROWS)}) {_from(rows, counter)}{sql}", params)
        (total,) = cursor.fetchone()
    return int(total or 0)


def counted_groups(rows: QuerySet[Any], groups: Sequence[str]) -> list[tuple[Any, ...]] | None:
    """``(value of each group annotation..., count)`` per non-empty group, in group order; or None.

    ``groups`` are annotations of ``rows`` that must each be one counted column of the
    model; the values come back through the same converters Django applies to them.
    """
    query = rows.query
    counter = _counter_for(rows, query)
    if counter is None or not groups or set(query.annotations) != set(groups):
        return None
    columns = [query.annotations[name] for name in groups]
    if not all(_counted_column(column, query, counter) for column in columns):
        return None
    where = _where(query, counter, rows.db)
    if where is None:
        return None
    sql, params = where
    compiler = query.get_compiler(using=rows.db)
    selected = [compiler.compile(column)[0] for column in columns]
    listed = ", ".join(selected)
    statement = (
        f"SELECT {listed}, SUM({_q(rows.db, ddl.ROWS)}) {_from(rows, counter)}{sql} "
        f"GROUP BY {listed} HAVING SUM({_q(rows.db, ddl.ROWS)}) > 0 ORDER BY {listed}"
    )
    with connections[rows.db].cursor() as cursor:
        cursor.execute(statement, params)
        fetched = [list(row) for row in cursor.fetchall()]
    converters = compiler.get_converters(columns)
    if converters:
        fetched = [list(row) for row in compiler.apply_converters(fetched, converters)]
    return [(*row[:-1], int(row[-1])) for row in fetched]


def _counter_for(rows: QuerySet[Any], query: Query) -> Counter | None:
    if (
        query.distinct
        or query.combinator
        or query.is_sliced
        or query.group_by is not None
        or query.extra
        or query.extra_tables
        or query.select_for_update
        or query.model is None
    ):
        return None
    base = _base_alias(query)
    if any(query.alias_refcount.get(alias, 0) for alias in query.alias_map if alias != base):
        return None  # a join: the condition is not on the model's columns alone
    return counter_of(query.model, rows.db)


def _where(query: Query, counter: Counter, alias: str) -> tuple[str, list[Any]] | None:
    """`` WHERE ...`` (or nothing) with its parameters; None when it compares anything but counted columns."""
    if not _only_counted(query.where, query, counter):
        return None
    compiler = query.get_compiler(using=alias)
    try:
        sql, params = compiler.compile(query.where)
    except FullResultSet:
        return "", []
    return (f" WHERE {sql}", list(params)) if sql else ("", [])


def _only_counted(node: Any, query: Query, counter: Counter) -> bool:
    if isinstance(node, WhereNode):
        return all(_only_counted(child, query, counter) for child in node.children)
    if isinstance(node, Lookup):
        return _counted_column(node.lhs, query, counter) and _plain(node.rhs)
    return False  # NothingNode, ExtraWhere, Exists, RawSQL, ...: let the database count


def _counted_column(expression: Any, query: Query, counter: Counter) -> bool:
    return (
        isinstance(expression, Col)
        and query.model is not None
        and expression.alias == _base_alias(query)
        and expression.target.model._meta.db_table == query.model._meta.db_table
        and expression.target.column in counter.columns
    )


def _plain(value: Any) -> bool:
    """A value, or a collection of values: no column, no subquery, no expression."""
    if isinstance(value, list | tuple | set | frozenset):
        return all(_plain(item) for item in value)
    return not hasattr(value, "resolve_expression") and not hasattr(value, "as_sql")


def _from(rows: QuerySet[Any], counter: Counter) -> str:
    # The counter under the model table's alias: the compiled WHERE names that alias.
    return f"FROM {_q(rows.db, counter.table)} {_q(rows.db, _base_alias(rows.query))}"


def _base_alias(query: Query) -> str:
    # Not get_initial_alias(): that would add the table to the caller's query.
    return str(query.base_table or query.get_meta().db_table)


def _q(alias: str, name: str) -> str:
    return str(connections[alias].ops.quote_name(name))

"""Nested-list reads compiled once per shape, then run with new keys.

Every nested list of a page is the same query with other parent keys: ``SELECT parent,
pk, columns FROM child WHERE parent IN (...) ORDER BY ... LIMIT n``. Building that
queryset and compiling it to SQL costs more CPU than SQLite spends running it (a page of
50 companies: two such reads, a fifth of the request). So the first read of a shape —
model, columns, order, number of keys, limit — is compiled by Django as usual, and
kept, per database connection, with its converters; later reads of that shape send the
kept SQL with the new keys, through the connection's own cursor (so query logging,
execute wrappers and query counts see them as before).

Kept only when the compiled parameters are exactly the keys, prepared as Django
prepares them: a default manager that filters with values of its own (a date, a
tenant from a context variable) makes the parameters differ, and such a shape is read
through a new queryset every time, as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler

from djfapi.orm.keys import hashable_keys

CACHE_ATTRIBUTE = "_djfapi_child_statements"
MAX_SHAPES = 512  # per connection; the cache starts again when full (shapes are few: nodes x page sizes)


@dataclass(frozen=True)
class ChildStatement:
    """One compiled nested-list read: its SQL, result names and column converters."""

    sql: str
    names: tuple[str, ...]
    compiler: SQLCompiler
    converters: dict[int, Any]
    prepare: Callable[[Any], Any]
    #: The type of key that ``prepare`` hands back unchanged (a UUID on PostgreSQL, an integer), if any:
    #: such keys are sent as they are, sparing Django's two preparation calls per key.
    unchanged: type | None = None
    #: PostgreSQL, UUID keys: the same statement with ``= ANY(%s::uuid[])`` for ``IN (%s, ...)``, the keys
    #: sent as one array literal. psycopg dumps and quotes each UUID parameter apart (about 7% of the
    #: endpoint's CPU for a page of 50 companies with two nested lists, in a profile); joining their
    #: ``hex`` costs a fraction of that.
    array_sql: str | None = None

    def run(self, connection: BaseDatabaseWrapper, keys: Sequence[Any]) -> list[dict[str, Any]]:
        sql: str = self.sql
        unchanged = self.unchanged
        params: list[Any]
        if unchanged is not None and all(type(key) is unchanged for key in keys):
            if self.array_sql is not None:
                sql, params = self.array_sql, ["{" + ",".join([key.hex for key in keys]) + "}"]
            else:
                params = list(keys)
        else:
            params = [self.prepare(key) for key in keys]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows: Any = cursor.fetchall()
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        names = self.names
        return [dict(zip(names, row, strict=True)) for row in rows]


def read_children(
    model: type[models.Model],
    parent_column: str,
    keys: Sequence[Any],
    ordering: tuple[str, ...],
    columns: tuple[str, ...],
    stop: int,
) -> list[dict[str, Any]]:
    """``model``'s rows whose ``parent_column`` is one of ``keys``, in ``ordering``, at most ``stop``,
    as ``values(*columns)`` dicts."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    cache: dict[tuple[Any, ...], ChildStatement | None] = connection.__dict__.setdefault(CACHE_ATTRIBUTE, {})
    shape = (model, parent_column, ordering, columns, len(keys), stop)
    statement = cache.get(shape, False)
    if isinstance(statement, ChildStatement) and len(set(hashable_keys(keys))) == len(keys):
        return statement.run(connection, keys)
    queryset = (
        model._default_manager.using(alias)
        .filter(**{f"{parent_column}__in": keys})
        .order_by(*ordering)
        .values(*columns)[:stop]
    )
    if statement is False:
        if len(cache) >= MAX_SHAPES:
            cache.clear()
        cache[shape] = _compiled(queryset, model, parent_column, keys, connection)
    return list(queryset)


def _compiled(
    queryset: Any,
    model: type[models.Model],
    parent_column: str,
    keys: Sequence[Any],
    connection: BaseDatabaseWrapper,
) -> ChildStatement | None:
    """The statement of ``queryset``, if its parameters are the keys and nothing else; else None."""
    field = next(f for f in model._meta.concrete_fields if f.attname == parent_column)

    def prepare(key: Any) -> Any:
        return field.get_db_prep_value(field.get_prep_value(key), connection, prepared=True)

    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    prepared = [prepare(key) for key in keys]
    if len(set(keys)) != len(keys) or list(params) != prepared:
        return None
    query = queryset.query
    names = (*query.extra_select, *query.values_select, *query.annotation_select)
    converters = compiler.get_converters([selected[0] for selected in compiler.select[: compiler.col_count]])
    unchanged = _unchanged_type(field, keys, prepared)
    array_sql = (
        _with_key_array(sql, len(keys)) if unchanged is uuid.UUID and connection.vendor == "postgresql" else None
    )
    return ChildStatement(sql, tuple(names), compiler, converters, prepare, unchanged, array_sql)


def _with_key_array(sql: str, keys: int) -> str | None:
    """``sql`` with its one ``IN (%s, ...)`` of ``keys`` placeholders as ``= ANY(%s::uuid[])``; None
    when it does not hold exactly one (the statement is then sent as Django wrote it)."""
    placeholders = f" IN ({', '.join(['%s'] * keys)})"
    if sql.count(placeholders) != 1 or sql.count("%s") != keys:
        return None
    return sql.replace(placeholders, " = ANY(%s::uuid[])")


def _unchanged_type(field: models.Field[Any, Any], keys: Sequence[Any], prepared: Sequence[Any]) -> type | None:
    """The type of ``keys`` if preparing them handed each back as it was, for a field whose preparation
    is Django's own (a custom field may change some values of a type and not others); else None."""
    target = getattr(field, "target_field", field)
    kinds = {type(key) for key in keys}
    if len(kinds) != 1 or not all(type(f).__module__.startswith("django.") for f in (field, target)):
        return None
    return kinds.pop() if all(value is key for value, key in zip(prepared, keys, strict=True)) else None

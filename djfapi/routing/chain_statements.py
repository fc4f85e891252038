"""The chain's most common reads, compiled to SQL once per connection and template.

A filled chain template (``chain_templates``) still has to be compiled on every
request: ``SELECT ... WHERE parent IN (SELECT ...) AND pk = %s``, its nested subqueries
and all, which costs more CPU than the rest of finding the row. Three reads are asked
of it over and over — does a row exist (``require_parent``), the row's columns (``GET``
of an item), the row as a model instance (the row a ``PATCH`` or ``DELETE`` changes) —
so each is compiled once, from the template with its probe ids; the places of the
probes among the statement's parameters are recorded, and later requests send the same
SQL with their own ids, prepared as the lookup prepares them, through the connection's
own cursor (query logging, execute wrappers and query counts see them as before).

Anything unusual is left to the ORM, which answers as it always did: a queryset class
of the manager's own (it may change how rows are fetched), an id outside an integer
column's range (Django answers "no rows" without asking the database), a statement
whose parameters do not hold each probe exactly once, a locking read outside a
transaction, or a model read with more than its own columns.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.query import Query

from djfapi.routing.chain_templates import ChainTemplate

CACHE_ATTRIBUTE = "_djfapi_chain_statements"
#: Statements kept per connection (each worker thread has its own): the cache starts again when full.
MAX_STATEMENTS = 256


@dataclass(frozen=True)
class ChainStatement:
    """One compiled read of a template: its SQL, parameters and where the ids go in them."""

    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, int], ...]  # (parameter index, id position)
    fields: tuple[models.Field[Any, Any], ...]
    ranges: tuple[tuple[int, int] | None, ...]  # an integer key's column range
    compiler: SQLCompiler
    converters: dict[int, Any]
    names: tuple[str, ...]  # values: the keys of each row; instances: the fields' attnames

    @classmethod
    def compile(cls, template: ChainTemplate, query: Query, connection: BaseDatabaseWrapper) -> ChainStatement | None:
        """``query`` (the template's query made into a read) compiled, if its ids can be found again."""
        compiler = query.get_compiler(connection=connection)
        try:
            sql, params = compiler.as_sql()
        except (EmptyResultSet, FullResultSet):
            return None
        slots = []
        for position, (field, probe) in enumerate(zip(template.fields, template.probes, strict=True)):
            prepared = _db_value(field, field.get_prep_value(probe), connection)
            hits = [index for index, param in enumerate(params) if type(param) is type(prepared) and param == prepared]
            if len(hits) != 1:
                return None
            slots.append((hits[0], position))
        converters: dict[int, Any] = {}
        if compiler.col_count:
            converters = compiler.get_converters([selected[0] for selected in compiler.select[: compiler.col_count]])
        names = (*query.extra_select, *query.values_select, *query.annotation_select)
        ranges = tuple(_integer_range(field, connection) for field in template.fields)
        return cls(sql, tuple(params), tuple(slots), template.fields, ranges, compiler, converters, names)

    def rows(self, connection: BaseDatabaseWrapper, ids: Sequence[Any], *, one: bool = False) -> list[Any] | None:
        """The statement's rows for ``ids`` (converted as Django converts them); None to leave it to the ORM."""
        params = list(self.params)
        for index, position in self.slots:
            field = self.fields[position]
            value = field.get_prep_value(ids[position])
            bounds = self.ranges[position]
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                return None  # the lookup's own overflow handling answers, through the ORM
            params[index] = _db_value(field, value, connection)
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            found: Any = cursor.fetchmany(1) if one else cursor.fetchall()
        if self.converters:
            found = list(self.compiler.apply_converters(found, self.converters))
        return list(found)


def exists(
    template: ChainTemplate, rows: QuerySet[Any], connection: BaseDatabaseWrapper, ids: Sequence[Any]
) -> bool | None:
    """Whether the filled template holds a row; None when the ORM must answer."""
    statement = _statement(template, rows, connection, ("exists",), lambda: template.query.exists())
    found = statement.rows(connection, ids, one=True) if statement is not None else None
    return bool(found) if found is not None else None


def values(
    template: ChainTemplate,
    rows: QuerySet[Any],
    connection: BaseDatabaseWrapper,
    ids: Sequence[Any],
    columns: tuple[str, ...],
    stop: int,
) -> list[dict[str, Any]] | None:
    """``rows.values(*columns)[:stop]`` of the filled template; None when the ORM must answer."""

    def query() -> Query:
        return QuerySet(template.query.model, query=template.query.clone()).values(*columns)[:stop].query

    statement = _statement(template, rows, connection, ("values", columns, stop), query)
    found = statement.rows(connection, ids) if statement is not None else None
    if found is None or statement is None:
        return None
    names = statement.names
    return [dict(zip(names, row, strict=True)) for row in found]


def instance(
    template: ChainTemplate, rows: QuerySet[Any], connection: BaseDatabaseWrapper, ids: Sequence[Any], *, lock: bool
) -> tuple[models.Model | None] | None:
    """``(the first row as a model instance or None,)``, locked if asked; None when the ORM must answer."""
    if lock and connection.get_autocommit():
        return None  # the ORM refuses a locking read outside a transaction, and says so
    model = template.query.model
    assert model is not None

    def query() -> Query:
        found: QuerySet[Any] = QuerySet(model, query=template.query.clone())
        return (locked(found, connection) if lock else found)[:1].query

    statement = _statement(template, rows, connection, ("instance", lock), query, instances=True)
    found = statement.rows(connection, ids, one=True) if statement is not None else None
    if found is None or statement is None:
        return None
    return (model.from_db(connection.alias, statement.names, found[0]) if found else None,)


def locked(queryset: QuerySet[Any], connection: BaseDatabaseWrapper | None = None) -> QuerySet[Any]:
    """Lock the rows read for the rest of the transaction (a no-op on SQLite, which serialises writers anyway)."""
    features = (connection or connections[queryset.db]).features
    if not features.has_select_for_update:
        return queryset
    return (
        queryset.select_for_update(of=("self",)) if features.has_select_for_update_of else queryset.select_for_update()
    )


def _statement(
    template: ChainTemplate,
    rows: QuerySet[Any],
    connection: BaseDatabaseWrapper,
    variant: Hashable,
    query: Any,
    *,
    instances: bool = False,
) -> ChainStatement | None:
    if type(rows) is not QuerySet:
        return None  # a queryset class of the manager's own may fetch rows its own way
    statements: dict[Any, ChainStatement | None] = connection.__dict__.setdefault(CACHE_ATTRIBUTE, {})
    key = (template, variant)
    if key not in statements:  # a connection belongs to one thread: no lock needed
        if len(statements) >= MAX_STATEMENTS:
            statements.clear()
        statement = ChainStatement.compile(template, query(), connection)
        if statement is not None and instances:
            statement = _as_instances(statement)
        statements[key] = statement
    return statements.get(key)


def _as_instances(statement: ChainStatement) -> ChainStatement | None:
    """The statement with the attnames ``Model.from_db`` takes, if it reads the model's own columns only."""
    compiler = statement.compiler
    info = compiler.klass_info
    if not info or info.get("related_klass_infos") or compiler.annotation_col_map:
        return None
    fields = info["select_fields"]
    if fields != list(range(compiler.col_count or 0)):
        return None
    names = tuple(selected[0].target.attname for selected in compiler.select[: compiler.col_count])
    return ChainStatement(
        statement.sql,
        statement.params,
        statement.slots,
        statement.fields,
        statement.ranges,
        compiler,
        statement.converters,
        names,
    )


def _db_value(field: models.Field[Any, Any], prepared: Any, connection: BaseDatabaseWrapper) -> Any:
    """A prepared ``value`` as an ``Exact`` lookup on ``field`` sends it to the database."""
    return field.get_db_prep_value(prepared, connection, prepared=True)


def _integer_range(field: models.Field[Any, Any], connection: BaseDatabaseWrapper) -> tuple[int, int] | None:
    if not isinstance(field, models.IntegerField | models.AutoField):
        return None
    low, high = connection.ops.integer_field_range(field.get_internal_type())
    return (low if low is not None else -(2**63), high if high is not None else 2**63 - 1)

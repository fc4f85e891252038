"""Name the constraint behind a database ``IntegrityError`` the same way on every backend.

PostgreSQL reports the constraint name; SQLite only reports the columns
(``UNIQUE constraint failed: business_costcenter.company_id, business_costcenter.code``).
Both are mapped onto the model's own declaration, so an API client sees one stable
``integrity:<name>`` code whatever the database:

* ``UniqueConstraint`` / ``CheckConstraint``: the constraint's ``name``;
* the primary key: ``<db_table>_pkey`` (PostgreSQL's own naming);
* ``unique=True`` on a field: ``<db_table>_<column>_key`` (PostgreSQL's own naming);
* ``unique_together``: ``<db_table>_<col1>_<col2>_key``;
* a foreign key djfapi checks before writing: ``<db_table>_<column>_fk``; one the
  database refuses (a row deleted meanwhile): ``foreign_key`` — SQLite does not say
  which one, so PostgreSQL's generated name is not passed on either;
* ``NOT NULL``: ``<db_table>_<column>_not_null``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from django.apps import apps
from django.db import IntegrityError, models

_SQLITE_COLUMNS = re.compile(r"^(UNIQUE|NOT NULL) constraint failed: (.+)$")
_SQLITE_CHECK = re.compile(r"^CHECK constraint failed: (.+)$")


def unique_field_constraint_name(model: type[models.Model], columns: list[str]) -> str:
    return f"{model._meta.db_table}_{'_'.join(columns)}_key"


def primary_key_constraint_name(model: type[models.Model]) -> str:
    return f"{model._meta.db_table}_pkey"


def foreign_key_constraint_name(model: type[models.Model], field: models.ForeignKey) -> str:
    return f"{model._meta.db_table}_{field.column}_fk"


def _columns(model: type[models.Model], names: Iterable[str]) -> list[str]:
    return [str(getattr(model._meta.get_field(name), "column", name)) for name in names]


@cache
def _unique_names_by_columns() -> dict[tuple[str, frozenset[str]], str]:
    """(db_table, columns) -> constraint name, for every unique rule of every model."""
    names: dict[tuple[str, frozenset[str]], str] = {}
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        for field in opts.local_concrete_fields:
            if field.primary_key:
                names[(opts.db_table, frozenset([str(field.column)]))] = primary_key_constraint_name(model)
            elif field.unique:
                names[(opts.db_table, frozenset([str(field.column)]))] = unique_field_constraint_name(
                    model, [str(field.column)]
                )
        for together in opts.unique_together:
            columns = _columns(model, together)
            names[(opts.db_table, frozenset(columns))] = unique_field_constraint_name(model, columns)
        for constraint in opts.constraints:
            if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
                columns = _columns(model, constraint.fields)
                names[(opts.db_table, frozenset(columns))] = constraint.name
    return names


@cache
def _known_constraint_names() -> dict[str, str]:
    """Database-side name -> djfapi name, for names PostgreSQL reports."""
    known: dict[str, str] = {}
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        known[primary_key_constraint_name(model)] = primary_key_constraint_name(model)
        for constraint in opts.constraints:
            known[constraint.name] = constraint.name
        for field in opts.local_concrete_fields:
            if field.unique and not field.primary_key:
                name = unique_field_constraint_name(model, [str(field.column)])
                known[name] = name
    return known


def constraint_name(error: IntegrityError) -> str:
    """The stable name of the constraint ``error`` violated, or ``"unknown"``."""
    cause = error.__cause__
    diag = getattr(cause, "diag", None)
    if diag is not None:  # psycopg
        db_name = diag.constraint_name
        if getattr(cause, "sqlstate", None) == "23503":
            return "foreign_key"
        if db_name:
            if db_name in _known_constraint_names():
                return _known_constraint_names()[db_name]
            if diag.table_name and diag.column_name and getattr(cause, "sqlstate", None) == "23502":
                return f"{diag.table_name}_{diag.column_name}_not_null"
            return db_name
        if getattr(cause, "sqlstate", None) == "23502" and diag.table_name and diag.column_name:
            return f"{diag.table_name}_{diag.column_name}_not_null"
    message = str(error).strip()
    if match := _SQLITE_CHECK.match(message):
        return match.group(1).strip()
    if match := _SQLITE_COLUMNS.match(message):
        kind, columns_text = match.groups()
        table_columns = [item.strip().rsplit(".", 1) for item in columns_text.split(",")]
        table = table_columns[0][0]
        columns = [column for _, column in table_columns]
        if kind == "NOT NULL":
            return f"{table}_{columns[0]}_not_null"
        return _unique_names_by_columns().get((table, frozenset(columns)), f"{table}_{'_'.join(columns)}_key")
    if "FOREIGN KEY" in message.upper():
        return "foreign_key"
    return "unknown"

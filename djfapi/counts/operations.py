"""``CreateRowCount``: the migration operation that gives a model maintained row counts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models, transaction
from django.db.migrations.operations.base import Operation

from djfapi.counts import ddl
from djfapi.counts.lookup import forget_counters

logger = logging.getLogger("djfapi.counts")


class CreateRowCount(Operation):
    """Keep the number of ``model_name``'s rows per combination of ``fields``' values in a table of its own.

    ``?total=true`` and ``count`` aggregates whose filters compare only these columns
    (the tenant, the parent, the soft-delete status, ``?status=``) then add up a few
    counter rows instead of reading one index entry per row. The counts are exact: the
    database's triggers change them in the transaction that changes the rows.

    ``fields`` are concrete, NOT NULL columns of the model (a tenant column, a foreign
    key, a choice field). Reversible. On a database other than PostgreSQL and
    SQLite it does nothing, and totals stay ``COUNT(*)``.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, fields: Sequence[str]):
        self.model_name = model_name
        self.fields = list(fields)
        if not self.fields:
            raise ImproperlyConfigured("CreateRowCount: name at least one field to count by")

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"model_name": self.model_name, "fields": self.fields}
        return self.__class__.__name__, [], kwargs

    def state_forwards(self, app_label: str, state: Any) -> None:
        """The counter is not a model: the project state does not change."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        connection = schema_editor.connection
        if connection.vendor not in ddl.SUPPORTED_VENDORS:
            logger.warning(
                "CreateRowCount(%r): %s has no row counts; totals stay COUNT(*)", self.model_name, connection.vendor
            )
            return
        fields = counted_fields(model, self.fields)
        # Dropped first: running it again rebuilds a counter whose triggers went missing
        # (SQLite drops them with the old table when a migration alters the model).
        statements = ddl.drop_statements(model, connection) + ddl.create_statements(model, fields, connection)
        # One transaction even in a non-atomic migration: the triggers' lock keeps writers out
        # until the rows already there are counted, so no row is counted twice or missed.
        with transaction.atomic(using=connection.alias):
            for statement in statements:
                schema_editor.execute(statement, params=None)
        forget_counters()

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor not in ddl.SUPPORTED_VENDORS:
            return
        for statement in ddl.drop_statements(model, schema_editor.connection):
            schema_editor.execute(statement, params=None)
        forget_counters()

    def describe(self) -> str:
        return f"Keep row counts of {self.model_name} by {', '.join(self.fields)}"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name.lower()}_row_counts"


class DropRowCount(CreateRowCount):
    """Stop keeping ``model_name``'s row counts: its counter table and triggers are dropped.

    Before a migration renames, retypes or drops a counted column on PostgreSQL (whose
    trigger function names the columns), drop the counter, and create it again after.
    ``fields`` are what migrating backwards creates again.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        super().database_backwards(app_label, schema_editor, to_state, from_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        super().database_forwards(app_label, schema_editor, to_state, from_state)

    def describe(self) -> str:
        return f"Stop keeping row counts of {self.model_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"drop_{self.model_name.lower()}_row_counts"


def counted_fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    """The model's fields by name or attname; refused: unknown, not a column, nullable, unique, repeated."""
    label = model._meta.label
    fields: list[models.Field] = []
    for name in names:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(f"CreateRowCount: {label} has no field {name!r}") from None
        if not isinstance(field, models.Field) or not field.concrete or field.column is None:
            raise ImproperlyConfigured(f"CreateRowCount: {label}.{name} is not a column of the table")
        if field.null:
            raise ImproperlyConfigured(
                f"CreateRowCount: {label}.{name} can be NULL; a counter keys on values, so count by NOT NULL columns"
            )
        if field.primary_key or field.unique:
            raise ImproperlyConfigured(
                f"CreateRowCount: {label}.{name} is unique: every count by it would be 1 "
                "(count by the columns lists filter on)"
            )
        if field in fields:
            raise ImproperlyConfigured(f"CreateRowCount: {label}.{name} is named twice")
        fields.append(field)
    return fields

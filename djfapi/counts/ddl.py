"""The counter table and the triggers that keep it, as SQL for PostgreSQL and SQLite.

A model's counter table holds rows per combination of the counted columns' values (on
PostgreSQL possibly several, in *slots*): ``SUM(djfapi_rows)`` over the rows a filter
selects is the number of the model's rows that filter selects, exactly, in every
snapshot — the triggers change it in the transaction that changes the rows.

PostgreSQL: statement-level triggers with transition tables, so that a bulk insert of a
million rows is one ``GROUP BY`` over them, not a million upserts, and an ``UPDATE``
that leaves the counted columns alone writes nothing (the ``HAVING``). A counter row a
transaction has changed stays locked until it ends: had every writer to a tenant to
change the same row, one long transaction (an import, a held-open request) would stop
all the others. So a writer adds to any row of its key that no other transaction holds
(``FOR UPDATE SKIP LOCKED``) or starts a new one, slotted by its transaction id: no
writer waits for another, and a key has at most as many rows as it ever had writers at
once.

SQLite: row-level triggers (SQLite has no others); one writer at a time, so one slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import truncate_name
from django.db.models import Field, Model

SLOT = "djfapi_slot"
ROWS = "djfapi_rows"
SUPPORTED_VENDORS = frozenset({"postgresql", "sqlite"})
Quote = Callable[[str], str]


@dataclass(frozen=True)
class CounterNames:
    """The names of a model's counter table, its trigger function and its triggers."""

    table: str
    function: str
    triggers: tuple[str, ...]

    @classmethod
    def of(cls, db_table: str, connection: BaseDatabaseWrapper) -> CounterNames:
        longest = connection.ops.max_name_length() or 200

        def name(suffix: str) -> str:
            return truncate_name(f"{db_table}_{suffix}", longest)

        return cls(
            table=name("counts"),
            function=name("counts_fn"),
            triggers=(name("counts_ins"), name("counts_del"), name("counts_upd"), name("counts_trunc")),
        )

    def triggers_on(self, vendor: str) -> tuple[str, ...]:
        """The triggers the vendor's counter has (SQLite has no TRUNCATE)."""
        return self.triggers if vendor == "postgresql" else self.triggers[:3]


def create_statements(model: type[Model], fields: Sequence[Field], connection: BaseDatabaseWrapper) -> list[str]:
    """CREATE the counter table and its triggers, then count the rows already there."""
    q = connection.ops.quote_name
    names = CounterNames.of(model._meta.db_table, connection)
    columns = [q(str(field.column)) for field in fields]  # concrete columns (operations.counted_fields)
    definitions = [
        f"{column} {_column_type(field, connection)} NOT NULL" for column, field in zip(columns, fields, strict=True)
    ]
    slot_type = "bigint" if connection.vendor == "postgresql" else "integer"
    statements = [
        f"CREATE TABLE {q(names.table)} ({', '.join(definitions)}, {q(SLOT)} {slot_type} NOT NULL, "
        f"{q(ROWS)} bigint NOT NULL, PRIMARY KEY ({', '.join(columns)}, {q(SLOT)}))"
    ]
    if connection.vendor == "postgresql":
        statements += _postgresql_triggers(model, columns, names, q)
    else:
        statements += _sqlite_triggers(model, columns, names, q)
    listed = ", ".join(columns)
    statements.append(
        f"INSERT INTO {q(names.table)} ({listed}, {q(SLOT)}, {q(ROWS)}) "
        f"SELECT {listed}, 0, COUNT(*) FROM {q(model._meta.db_table)} GROUP BY {listed}"
    )
    return statements


def drop_statements(model: type[Model], connection: BaseDatabaseWrapper) -> list[str]:
    q = connection.ops.quote_name
    names = CounterNames.of(model._meta.db_table, connection)
    table = q(model._meta.db_table)
    if connection.vendor == "postgresql":
        return [
            *(f"DROP TRIGGER IF EXISTS {q(trigger)} ON {table}" for trigger in names.triggers),
            f"DROP FUNCTION IF EXISTS {q(names.function)}()",
            f"DROP TABLE IF EXISTS {q(names.table)}",
        ]
    return [
        *(f"DROP TRIGGER IF EXISTS {q(trigger)}" for trigger in names.triggers_on("sqlite")),
        f"DROP TABLE IF EXISTS {q(names.table)}",
    ]


def _column_type(field: Field, connection: BaseDatabaseWrapper) -> str:
    """The column's own type (a foreign key's is its target's), with its collation: equal values group equally."""
    parameters = field.db_parameters(connection)
    column_type = parameters["type"]
    if column_type is None:
        raise ValueError(f"{field} has no column type on {connection.vendor}")
    collation = parameters.get("collation")
    if collation:
        column_type += f" COLLATE {connection.ops.quote_name(collation)}"
    return str(column_type)


def _postgresql_triggers(model: type[Model], columns: list[str], names: CounterNames, quote: Quote) -> list[str]:
    table, counter = quote(model._meta.db_table), quote(names.table)
    listed = ", ".join(columns)
    same_key = " AND ".join(f"counted.{column} = changed.{column}" for column in columns)
    values = ", ".join(f"changed.{column}" for column in columns)

    def add(changes: str) -> str:
        # Per key (keys whose changes cancel out are skipped): add to a counter row no other
        # transaction holds, or start one of this transaction's own. No writer ever waits for
        # another here, however long that one's transaction stays open.
        return f"""FOR changed IN
            SELECT {listed}, SUM(change) AS change FROM ({changes}) AS changes
            GROUP BY {listed} HAVING SUM(change) <> 0
        LOOP
            SELECT counted.ctid INTO free FROM {counter} AS counted
                WHERE {same_key} LIMIT 1 FOR UPDATE SKIP LOCKED;
            IF FOUND THEN
                UPDATE {counter} SET {quote(ROWS)} = {quote(ROWS)} + changed.change WHERE ctid = free;
            ELSE
                INSERT INTO {counter} AS counted ({listed}, {quote(SLOT)}, {quote(ROWS)})
                VALUES ({values}, txid_current(), changed.change)
                ON CONFLICT ({listed}, {quote(SLOT)}) DO UPDATE
                SET {quote(ROWS)} = counted.{quote(ROWS)} + EXCLUDED.{quote(ROWS)};
            END IF;
        END LOOP;"""

    added = f"SELECT {listed}, 1 AS change FROM djfapi_new"
    removed = f"SELECT {listed}, -1 AS change FROM djfapi_old"
    function = f"""CREATE FUNCTION {quote(names.function)}() RETURNS trigger LANGUAGE plpgsql AS $djfapi$
DECLARE
    changed record;
    free tid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        {add(added)}
    ELSIF TG_OP = 'DELETE' THEN
        {add(removed)}
    ELSIF TG_OP = 'UPDATE' THEN
        {add(f"{removed} UNION ALL {added}")}
    ELSE
        DELETE FROM {counter};
    END IF;
    RETURN NULL;
END
$djfapi$"""
    run = f"FOR EACH STATEMENT EXECUTE FUNCTION {quote(names.function)}()"
    inserted, deleted, updated, truncated = (quote(name) for name in names.triggers)
    return [
        function,
        f"CREATE TRIGGER {inserted} AFTER INSERT ON {table} REFERENCING NEW TABLE AS djfapi_new {run}",
        f"CREATE TRIGGER {deleted} AFTER DELETE ON {table} REFERENCING OLD TABLE AS djfapi_old {run}",
        f"CREATE TRIGGER {updated} AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS djfapi_old NEW TABLE AS djfapi_new {run}",
        f"CREATE TRIGGER {truncated} AFTER TRUNCATE ON {table} {run}",
    ]


def _sqlite_triggers(model: type[Model], columns: list[str], names: CounterNames, quote: Quote) -> list[str]:
    table, counter = quote(model._meta.db_table), quote(names.table)
    listed = ", ".join(columns)

    def add(row: str, change: str) -> str:
        values = ", ".join(f"{row}.{column}" for column in columns)
        return (
            f"INSERT INTO {counter} ({listed}, {quote(SLOT)}, {quote(ROWS)}) VALUES ({values}, 0, {change}) "
            f"ON CONFLICT ({listed}, {quote(SLOT)}) DO UPDATE SET {quote(ROWS)} = {quote(ROWS)} + ({change});"
        )

    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in columns)
    inserted, deleted, updated, _ = (quote(name) for name in names.triggers)
    return [
        f"CREATE TRIGGER {inserted} AFTER INSERT ON {table} BEGIN {add('NEW', '1')} END",
        f"CREATE TRIGGER {deleted} AFTER DELETE ON {table} BEGIN {add('OLD', '-1')} END",
        f"CREATE TRIGGER {updated} AFTER UPDATE OF {listed} ON {table} WHEN {changed} "
        f"BEGIN {add('OLD', '-1')} {add('NEW', '1')} END",
    ]

"""Which models have a kept counter, asked of the database once per process and database.

The counter's columns are read from its table, so that the migration is the one place
a counter is declared. A counter is used only when its table and all its triggers are
there: SQLite rebuilds a table to alter it (and drops its triggers with the old one),
and a counter nobody keeps would answer stale totals. Without one, totals are
``COUNT(*)``, and a warning says why, once.

The first count on a database costs two catalog queries for every model at once
(``find_counters()`` runs them ahead, e.g. in a test fixture that counts queries).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.db import connections
from django.db.models import Model

from djfapi.counts import ddl

logger = logging.getLogger("djfapi.counts")

_known: dict[tuple[str, str], dict[str, Counter | None]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Counter:
    """A model's counter table and the columns it counts by."""

    table: str
    columns: frozenset[str]


def counter_of(model: type[Model], alias: str) -> Counter | None:
    """The model's counter on database ``alias``, or None (no counter, or one that is not kept)."""
    known = _known.get(_database(alias))
    if known is None:
        known = find_counters(alias)
    if model._meta.db_table not in known:
        known = find_counters(alias, [model])
    return known.get(model._meta.db_table)


def find_counters(alias: str = "default", models: Iterable[type[Model]] | None = None) -> dict[str, Counter | None]:
    """Look up the counters of ``models`` (every installed model) on database ``alias``; keep the answer."""
    connection = connections[alias]
    models = list(models) if models is not None else list(apps.get_models())
    if connection.vendor in ddl.SUPPORTED_VENDORS:
        found = _scan(alias, models)
    else:
        found = dict.fromkeys((model._meta.db_table for model in models), None)
    with _lock:
        known = _known.setdefault(_database(alias), {})
        known.update(found)
        return dict(known)


def forget_counters() -> None:
    """Ask the database again on next use (after a migration created or dropped a counter)."""
    with _lock:
        _known.clear()


def _database(alias: str) -> tuple[str, str]:
    # The alias alone would mix a test database up with the one it was made for.
    return alias, str(connections[alias].settings_dict.get("NAME"))


def _scan(alias: str, models: list[type[Model]]) -> dict[str, Counter | None]:
    connection = connections[alias]
    names = {model._meta.db_table: ddl.CounterNames.of(model._meta.db_table, connection) for model in models}
    counter_tables = [counter.table for counter in names.values()]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE c.relname = ANY(%s) AND pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped",
                [counter_tables],
            )
            columns = cursor.fetchall()
            cursor.execute(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relname = ANY(%s) AND pg_table_is_visible(c.oid)",
                [list(names)],
            )
        else:
            placeholders = ", ".join(["%s"] * len(counter_tables)) or "NULL"
            cursor.execute(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "
                f"WHERE m.type = 'table' AND m.name IN ({placeholders})",
                counter_tables,
            )
            columns = cursor.fetchall()
            cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        triggers = set(cursor.fetchall())
    columns_of: dict[str, set[str]] = {}
    for table, column in columns:
        columns_of.setdefault(table, set()).add(column)
    return {
        db_table: _counter(db_table, counter, columns_of.get(counter.table, set()), triggers, connection.vendor)
        for db_table, counter in names.items()
    }


def _counter(
    db_table: str, names: ddl.CounterNames, columns: set[str], triggers: set[tuple[str, str]], vendor: str
) -> Counter | None:
    if not columns:
        return None
    missing = sorted(name for name in names.triggers_on(vendor) if (db_table, name) not in triggers)
    if missing or not {ddl.SLOT, ddl.ROWS} <= columns:
        logger.warning(
            "%s has a counter table %s without its triggers (%s): its totals are COUNT(*) until "
            "CreateRowCount runs again",
            db_table,
            names.table,
            ", ".join(missing) or f"columns {ddl.SLOT}, {ddl.ROWS}",
        )
        return None
    return Counter(names.table, frozenset(columns - {ddl.SLOT, ddl.ROWS}))

"""Maintained row counts: totals and count aggregates that do not read every row.

An exact ``COUNT(*)`` reads one index entry per row it counts: on a tenant of a hundred
thousand rows that is milliseconds, and it grows with the tenant. ``CreateRowCount``, a
migration operation, keeps the number of a model's rows per combination of a few
columns (the tenant, the status) in a table of its own, changed by database triggers in
the same transaction as the rows. ``?total=true`` and ``count`` aggregates whose
filters compare only those columns then add up a handful of counter rows.

* ``ddl``        — the counter table and its triggers, for PostgreSQL and SQLite;
* ``operations`` — ``CreateRowCount`` and ``DropRowCount``;
* ``lookup``     — which models have a kept counter (asked once per process);
* ``reading``    — a query's count from the counter, when its conditions allow.
"""

from djfapi.counts.lookup import find_counters, forget_counters
from djfapi.counts.operations import CreateRowCount, DropRowCount
from djfapi.counts.reading import counted_groups, counted_total

__all__ = ["CreateRowCount", "DropRowCount", "counted_groups", "counted_total", "find_counters", "forget_counters"]

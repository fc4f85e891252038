"""``?total=``: how many rows a list's filters select, exactly or as the planner estimates.

``total=true`` is ``SELECT COUNT(*)`` over the filtered rows and nothing else — no
ordering, no annotation, no column — so when an index holds every column the filters
compare (the advisor's djfapi.W114 asks for one), PostgreSQL counts from the index
alone. It still reads one index entry per row: on a tenant of millions, that is
milliseconds per hundred thousand rows.

``total=estimate`` asks the planner instead (``EXPLAIN``, no rows read): the body says
``"total_estimated": true``. An estimate under ``DJFAPI["EXACT_COUNT_BELOW"]`` (default
1000) is replaced by the exact count, which is cheap there (``"total_estimated":
false``), as is every total on a database without row estimates (SQLite).

Both first ask the model's row counter (``djfapi.counts.CreateRowCount``): when the
filters compare only the columns it counts by, the exact total is the sum of a few of
its rows, and neither reads the model's rows.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from django.db import connections
from django.db.models import QuerySet

from djfapi.conf import setting
from djfapi.counts import counted_total

TotalMode = bool | Literal["estimate"]
DEFAULT_EXACT_COUNT_BELOW = 1000


def exact_count_below() -> int:
    """``DJFAPI["EXACT_COUNT_BELOW"]``: estimates under it are replaced by the exact count."""
    return int(setting("EXACT_COUNT_BELOW", DEFAULT_EXACT_COUNT_BELOW))


def total_of(rows: QuerySet[Any], mode: TotalMode) -> tuple[int | None, bool | None]:
    """(total, estimated): ``(None, None)`` without ``?total``; ``estimated`` only for ``total=estimate``."""
    if mode is False:
        return None, None
    if mode is True:
        return exact_count(rows), None
    counted = counted_total(rows.order_by())
    if counted is not None:
        return counted, False  # exact, and as cheap as asking the planner
    estimate = planner_estimate(rows)
    if estimate is None or estimate < exact_count_below():
        return rows.order_by().count(), False  # the counter declined above
    return estimate, True


def exact_count(rows: QuerySet[Any]) -> int:
    """From the model's row counter when the filters allow, else ``COUNT(*)`` without ordering or annotations."""
    unordered = rows.order_by()
    counted = counted_total(unordered)
    return counted if counted is not None else unordered.count()


def planner_estimate(rows: QuerySet[Any]) -> int | None:
    """The rows PostgreSQL's planner expects the filters to select; None where there is no planner estimate."""
    connection = connections[rows.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = rows.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (document,) = cursor.fetchone()
    plans = json.loads(document) if isinstance(document, str) else document
    return int(plans[0]["Plan"]["Plan Rows"])

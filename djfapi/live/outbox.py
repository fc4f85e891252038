"""Reading and pruning the outbox: plain, synchronous ORM and SQL, run in worker threads."""

from __future__ import annotations

import bisect
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from djfapi.conf import setting

DEFAULT_RETENTION = 24 * 3600
PRUNE_BATCH = 10_000


def retention() -> float:
    """``DJFAPI["LIVE_RETENTION"]``: seconds an event stays resumable (default 86400, one day)."""
    return float(setting("LIVE_RETENTION", DEFAULT_RETENTION))


@dataclass(frozen=True, slots=True)
class Event:
    """An outbox row, detached from the ORM (shared by every stream of a process)."""

    id: int
    model: str
    object_id: str
    action: str
    tenant_id: str | None
    refs: Mapping[str, str | None]


@dataclass(frozen=True)
class Snapshot:
    """The PostgreSQL snapshot a read was made under, as 32-bit xids.

    ``running`` were in progress; ``xmax`` is one past the newest transaction that had
    ended. A transaction whose xid is ``xmax`` or newer may have been running too: the
    snapshot simply cannot see it, so only ``xid precedes xmax and not in running``
    proves that a transaction is over.

    ``writers`` is read only when the rows have a gap, just after the snapshot: the
    transactions then holding the outbox's write lock. The owner of a missing id took
    that lock before drawing the id and holds it until it ends, so if it was still
    running it is among them, and the gap is settled once every one of them is over —
    however long unrelated transactions elsewhere on the server take.
    """

    xmax: int
    running: frozenset[int] = frozenset()
    writers: frozenset[int] | None = None

    def is_over(self, xid: int) -> bool:
        """Whether transaction ``xid`` had ended when this snapshot was taken."""
        precedes = (xid - self.xmax) % 2**32 >= 2**31  # PostgreSQL's modular TransactionIdPrecedes
        return precedes and xid not in self.running


_FIELDS = ("id", "model", "object_id", "action", "tenant_id", "refs")


def _alias() -> str:
    from djfapi.live.models import ChangeEvent

    return router.db_for_read(ChangeEvent)


def _event(row: tuple[Any, ...]) -> Event:
    refs = row[5]
    if isinstance(refs, str):  # raw SQL on a backend that hands JSON back as text
        refs = json.loads(refs)
    return Event(int(row[0]), row[1], row[2], row[3], row[4], refs or {})


def read_after(after: int, limit: int) -> tuple[list[Event], Snapshot | None]:
    """Up to ``limit`` events after ``after`` in id order, with the snapshot they were read under.

    On PostgreSQL the rows and the snapshot come from one statement, so they agree: an
    id missing below a visible one belongs to a transaction that was still running in
    that very snapshot, or that rolled back.
    """
    from djfapi.live.models import ChangeEvent

    alias = _alias()
    connection = connections[alias]
    if connection.vendor != "postgresql":
        rows = ChangeEvent.objects.using(alias).filter(id__gt=after).order_by("id").values_list(*_FIELDS)[:limit]
        return [_event(row) for row in rows], None
    table = connection.ops.quote_name(ChangeEvent._meta.db_table)
    sql = (
        "WITH s AS (SELECT pg_current_snapshot() AS snap) "
        "SELECT pg_snapshot_xmax(s.snap)::text, "
        "array_to_string(ARRAY(SELECT pg_snapshot_xip(s.snap)), ','), "
        "e.id, e.model, e.object_id, e.action, e.tenant_id, e.refs "
        f"FROM s LEFT JOIN LATERAL (SELECT * FROM {table} WHERE id > %s ORDER BY id LIMIT %s) e ON true "
        "ORDER BY e.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [after, limit])
        rows = cursor.fetchall()
        events = [_event(row[2:]) for row in rows if row[2] is not None]
        ids = [event.id for event in events]
        has_gap = bool(ids) and ids != list(range(after + 1, after + 1 + len(ids)))
        writers = _outbox_writers(cursor, table) if has_gap else None
    xmax, running = rows[0][:2]
    xids = frozenset(int(xid) % 2**32 for xid in running.split(",") if xid)
    snapshot = Snapshot(int(xmax) % 2**32, xids, writers)
    return events, snapshot


def _outbox_writers(cursor: Any, table: str) -> frozenset[int]:
    """Xids of the transactions holding the outbox's write lock (``RowExclusiveLock``) now."""
    cursor.execute(
        "SELECT t.transactionid::text FROM pg_locks r JOIN pg_locks t ON t.pid = r.pid "
        "WHERE r.locktype = 'relation' AND r.relation = %s::regclass AND r.mode = 'RowExclusiveLock' "
        "AND r.granted AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted",
        [table],
    )
    return frozenset(int(row[0]) for row in cursor.fetchall())


@dataclass(frozen=True)
class Origin:
    """Where a stream that starts "now" starts: what the outbox held when it subscribed.

    ``after`` is a settled position; above it, ``through`` is the newest id then visible,
    and ``missing`` the runs of ids (first, last) in between that were not: drawn by
    transactions still open then (their events, if they commit, come after the
    subscription) or rolled back. Every other id up to ``through`` had committed before
    the subscription: history, not to be sent.
    """

    after: int
    through: int
    missing: tuple[tuple[int, int], ...] = ()

    @property
    def position(self) -> int:
        """The stream's first position: every id up to it had committed (or never will)."""
        return self.missing[0][0] - 1 if self.missing else self.through

    def settled(self, first_late: int | None) -> Origin:
        """This origin once its missing ids are final, ``first_late`` the lowest of them
        that committed after all (None: they were all rolled back)."""
        if first_late is None:
            return Origin(self.through, self.through)
        missing = tuple((max(first, first_late), last) for first, last in self.missing if last >= first_late)
        return Origin(first_late - 1, self.through, missing)

    def is_history(self, event_id: int) -> bool:
        """Whether an event had committed before the subscription (and must not be sent)."""
        if event_id <= self.after:
            return True
        if event_id > self.through:
            return False
        run = bisect.bisect_right(self.missing, event_id, key=lambda missing: missing[0]) - 1
        return run < 0 or self.missing[run][1] < event_id


def origin(after: int) -> Origin:
    """The ``Origin`` of a stream subscribing now, over a settled position ``after``.

    One statement, so one snapshot on PostgreSQL: an id missing below a visible one was
    not committed in that very snapshot. Only the runs of missing ids come back, not
    every visible id, however far the horizon lags behind an open gap.
    """
    from djfapi.live.models import ChangeEvent

    connection = connections[_alias()]
    table = connection.ops.quote_name(ChangeEvent._meta.db_table)
    sql = (
        "SELECT id, previous, newest FROM (SELECT id, LAG(id, 1, %s) OVER (ORDER BY id) AS previous, "
        f"MAX(id) OVER () AS newest FROM {table} WHERE id > %s) visible "
        "WHERE id > previous + 1 OR id = newest ORDER BY id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [after, after])
        rows = cursor.fetchall()
    if not rows:
        return Origin(after, after)
    missing = tuple((int(previous) + 1, int(event_id) - 1) for event_id, previous, _ in rows if event_id > previous + 1)
    return Origin(after, int(rows[0][2]), missing)


def first_late(origin: Origin) -> int | None:
    """The lowest id of ``origin.missing`` that is visible now (committed after the origin), if any."""
    from djfapi.live.models import ChangeEvent

    within = Q()
    for first, last in origin.missing:
        within |= Q(id__gte=first, id__lte=last)
    return ChangeEvent.objects.using(_alias()).filter(within).aggregate(first=Min("id"))["first"]


def read_page(model: str, after: int, through: int, limit: int) -> list[Event]:
    """Events of ``model`` in (``after``, ``through``], oldest first: a stream catching up."""
    from djfapi.live.models import ChangeEvent

    rows = (
        ChangeEvent.objects.using(_alias())
        .filter(model=model, id__gt=after, id__lte=through)
        .order_by("id")
        .values_list(*_FIELDS)[:limit]
    )
    return [_event(row) for row in rows]


def newest_id() -> int:
    """The highest event id there is (0 for an empty outbox)."""
    from djfapi.live.models import ChangeEvent

    return ChangeEvent.objects.using(_alias()).aggregate(newest=Max("id"))["newest"] or 0


def pruned_through() -> int:
    """Events up to this id may have been pruned: resuming from before it is a reset."""
    from djfapi.live.models import PruneMark

    mark = PruneMark.objects.using(_alias()).filter(id=1).values_list("pruned_through", flat=True).first()
    return mark or 0


def prune_events(older_than: float | None = None, *, now: datetime.datetime | None = None) -> int:
    """Delete events older than ``older_than`` seconds (default ``LIVE_RETENTION``); return how many.

    The newest event is always kept (it anchors the ids), and the prune mark is moved
    before the rows go, so a stream resuming from a pruned position is told to reload
    (``event: reset``) and never silently skips.
    """
    from djfapi.live.models import ChangeEvent, PruneMark

    alias = router.db_for_write(ChangeEvent)
    cutoff = (now or timezone.now()) - datetime.timedelta(seconds=retention() if older_than is None else older_than)
    events = ChangeEvent.objects.using(alias)
    bounds = events.aggregate(newest=Max("id"))
    old = events.filter(created_at__lt=cutoff).aggregate(last=Max("id"))["last"]
    if old is None:
        return 0
    bound = min(old, bounds["newest"] - 1)
    if bound <= 0:
        return 0
    with transaction.atomic(using=alias):
        mark, _ = PruneMark.objects.using(alias).select_for_update().get_or_create(id=1)
        if bound > mark.pruned_through:
            mark.pruned_through = bound
            mark.save(update_fields=["pruned_through"])
    deleted = 0
    while True:
        batch = list(events.filter(id__lte=bound).order_by("id").values_list("id", flat=True)[:PRUNE_BATCH])
        if not batch:
            return deleted
        count, _ = events.filter(id__gte=batch[0], id__lte=batch[-1]).delete()
        deleted += count

"""The hub: one per event loop (one per process under uvicorn), shared by all its streams.

It follows the outbox and keeps two things for its streams:

* the **horizon** (``settled_through``): every event id up to it is final — committed
  and visible, or never to appear. Ids are drawn when a transaction writes its event but
  become visible when it commits, so commit order is not id order: with T1 holding id 10
  and T2 committing id 11 first, a stream that delivered 11 and moved its position on
  would never see 10. Streams therefore only read up to the horizon, and the horizon
  stops at a missing id until that id is settled. On SQLite writers are serialised and
  ids committed in order, so a gap is settled at once. On PostgreSQL the owner of a
  missing id holds the outbox's write lock from before it drew the id until it ends;
  a gap is settled once every transaction that held that lock just after the gap was
  seen is over in a later snapshot (``outbox.Snapshot.is_over``): the owner then
  committed — and its row is read with the same statement — or rolled back. Unrelated
  long transactions on the server do not hold a gap back. This needs the owner to have
  had its xid before drawing the id, which ``capture`` makes sure of. (A snapshot's
  ``xmin``/``xmax`` alone cannot settle a gap: the owner's xid may be newer than the
  snapshot's ``xmax`` while it runs.) A gap still open after
  ``DJFAPI["LIVE_GAP_TIMEOUT"]`` seconds (default 30; a transaction left idle holds
  every gap back) is given up, with a warning; on other databases that is the only rule.
* the **tail**: the most recent settled events, so that streams which are up to date
  read new events from memory, one database read per wake-up for the whole process
  rather than one per stream. Streams further behind read their pages from the outbox.

The hub starts with its first stream and stops with its last: a wake-up listener (a
``LISTEN``-ing psycopg connection, or a Redis subscription), a safety poll every
``DJFAPI["LIVE_POLL_INTERVAL"]`` seconds (default 2) so that a lost wake-up never loses
an event, and the pruning of old events every ``DJFAPI["LIVE_PRUNE_INTERVAL"]`` seconds
(default 600). All database work runs in the feed's own worker threads (``workers``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from django.db import connections

from djfapi.conf import setting
from djfapi.errors import ServiceUnavailable
from djfapi.live import listeners, outbox, shutdown, wakeups
from djfapi.live.outbox import Event, Snapshot
from djfapi.live.workers import run_in_feed
from djfapi.utils.fastapi_django import request_signalling

logger = logging.getLogger("djfapi.live")

READ_BATCH = 1000  # rows per read of the outbox by the hub
TAIL_SIZE = 2048  # settled events kept in memory
STARTUP_WINDOW = 1000  # ids below the newest that a starting hub re-checks for open gaps
RETRY_MIN, RETRY_MAX = 0.02, 1.0  # re-reads while a gap is open, doubling


def poll_interval() -> float:
    return float(setting("LIVE_POLL_INTERVAL", 2.0))


def prune_interval() -> float:
    return float(setting("LIVE_PRUNE_INTERVAL", 600.0))


def gap_timeout() -> float:
    return float(setting("LIVE_GAP_TIMEOUT", 30.0))


@dataclass(frozen=True)
class _Gap:
    seen_at: float  # time.monotonic()
    writers: frozenset[int] | None = None  # PostgreSQL: outbox writers running just after it was seen


_read_after = request_signalling(outbox.read_after)
_read_page = request_signalling(outbox.read_page)
_newest_id = request_signalling(outbox.newest_id)
_prune = request_signalling(outbox.prune_events)


@request_signalling
def _vendor() -> str:
    return connections[outbox._alias()].vendor


class Hub:
    """The feed of one event loop (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.settled_through: int | None = None
        self.version = 0
        self.vendor = ""
        self._changed = asyncio.Event()
        self._tail: list[Event] = []
        self._tail_ids: list[int] = []
        self._tail_floor = 0
        self._gaps: dict[int, _Gap] = {}
        self._subscribers = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._refreshing: asyncio.Task[None] | None = None
        self._dirty = False
        self._retry = RETRY_MIN
        self._retry_handle: asyncio.TimerHandle | None = None
        self.shared: dict[Hashable, Any] = {}
        self._waker: Callable[[int | None], None] = self._wake_threadsafe
        #: Set when the process is asked to stop: streams end with ``server_shutdown``.
        self.closing = False
        shutdown.on_exit_signal(self.shut_down_threadsafe)

    # -- life cycle ------------------------------------------------------------------

    async def attach(self) -> None:
        """A stream starts: start the hub if it is the first, and wait until the horizon is known."""
        self._subscribers += 1
        restarted = self._subscribers == 1
        if restarted:
            self._start()
        try:
            await self.ready(fresh=restarted)  # a stopped hub's horizon may be old: read the outbox first
        except BaseException:
            self.detach()
            raise

    def detach(self) -> None:
        """A stream ended: stop the hub with the last one."""
        self._subscribers -= 1
        if self._subscribers == 0:
            self._stop()

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def shut_down(self) -> None:
        """Tell every stream to end (the process is stopping); wakes the waiting ones."""
        self.closing = True
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def shut_down_threadsafe(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: no stream is left
            self.loop.call_soon_threadsafe(self.shut_down)

    def _start(self) -> None:
        wakeups.add_local(self._waker)
        self._tasks = [self.loop.create_task(self._poll(), name="djfapi.live poll")]
        carrier = wakeups.carrier()
        if carrier == "postgresql":
            self._tasks.append(self.loop.create_task(listeners.listen_postgresql(self.wake), name="djfapi.live LISTEN"))
        elif carrier == "redis":
            self._tasks.append(self.loop.create_task(listeners.listen_redis(self.wake), name="djfapi.live Redis"))
        self.wake()

    def _stop(self) -> None:
        wakeups.remove_local(self._waker)
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None

    async def _poll(self) -> None:
        last_prune = time.monotonic()
        with contextlib.suppress(asyncio.CancelledError):
            await self._prune()
            while True:
                await asyncio.sleep(poll_interval())
                self.wake()
                if time.monotonic() - last_prune >= prune_interval():
                    last_prune = time.monotonic()
                    await self._prune()

    async def _prune(self) -> None:
        try:
            deleted = await run_in_feed(_prune)
        except Exception as error:  # pruning is housekeeping: the next round tries again
            logger.warning("djfapi.live: pruning the outbox failed: %s", error)
            return
        if deleted:
            logger.info("djfapi.live: pruned %d old change events", deleted)

    # -- wake-ups and the horizon ------------------------------------------------------

    def _wake_threadsafe(self, event_id: int | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self.loop.call_soon_threadsafe(self.wake, event_id)

    def wake(self, event_id: int | None = None) -> None:
        """New events may exist (up to ``event_id``): read the outbox, once, soon."""
        if event_id is not None and self.settled_through is not None and event_id <= self.settled_through:
            return
        if self._refreshing is not None and not self._refreshing.done():
            self._dirty = True
            return
        self._refreshing = self.loop.create_task(self._refresh())

    async def ready(self, *, fresh: bool = False) -> None:
        """Return once the horizon is known (``fresh``: after a read that starts now); 503 when it can't be."""
        if self.settled_through is not None and not fresh:
            return
        task = self._refreshing
        if task is None or task.done():
            self.wake()
            task = self._refreshing
        assert task is not None
        await asyncio.shield(task)
        if self.settled_through is None:
            raise ServiceUnavailable("The change feed cannot read its events right now; try again.")

    async def _refresh(self) -> None:
        blocked = False
        try:
            while True:
                self._dirty = False
                blocked = await self._read()
                if not self._dirty:
                    break
        except Exception as error:  # the database is away: the poll tries again
            logger.warning("djfapi.live: reading the outbox failed: %s", error)
        if blocked and self.running:
            if self._retry_handle is not None:
                self._retry_handle.cancel()
            self._retry_handle = self.loop.call_later(self._retry, self.wake)
            self._retry = min(self._retry * 2, RETRY_MAX)
        else:
            self._retry = RETRY_MIN

    async def _read(self) -> bool:
        """Advance the horizon as far as it goes; True when an open gap holds it back."""
        if self.settled_through is None:
            self.vendor = await run_in_feed(_vendor)
            newest = await run_in_feed(_newest_id)
            start = newest if self.vendor == "sqlite" else max(newest - STARTUP_WINDOW, 0)
            self._tail_floor = start
            self._advance(start, [])
        while True:
            assert self.settled_through is not None
            events, snapshot = await run_in_feed(_read_after, after=self.settled_through, limit=READ_BATCH)
            accepted, blocked = self._settle(events, snapshot)
            if accepted or blocked is not None:
                self._advance(blocked if blocked is not None else accepted[-1].id, accepted)
            if blocked is not None:
                return True
            if len(events) < READ_BATCH:
                return False

    def _settle(self, events: list[Event], snapshot: Snapshot | None) -> tuple[list[Event], int | None]:
        """The events that join the horizon, and where an open gap stops it (or None)."""
        assert self.settled_through is not None
        expected = self.settled_through + 1
        accepted: list[Event] = []
        for event in events:
            if event.id > expected and not self._gap_settled(expected, event.id - 1, snapshot):
                return accepted, expected - 1
            accepted.append(event)
            expected = event.id + 1
        return accepted, None

    def _gap_settled(self, first: int, last: int, snapshot: Snapshot | None) -> bool:
        if self.vendor == "sqlite":
            return True
        now = time.monotonic()
        gap = self._gaps.get(first)
        if gap is None:
            # The snapshot that shows a gap was taken before its writers were read, so only
            # a later read can tell that they are over.
            self._gaps[first] = _Gap(now, snapshot.writers if snapshot else None)
            return False
        if snapshot is not None and gap.writers is not None and all(snapshot.is_over(xid) for xid in gap.writers):
            self._gaps.pop(first, None)
            return True
        if now - gap.seen_at >= gap_timeout():
            self._gaps.pop(first, None)
            logger.warning(
                "djfapi.live: event ids %d..%d stayed missing for %.0f s; going on without them (a transaction "
                "that holds them for longer, e.g. one left idle, is not followed)",
                first,
                last,
                now - gap.seen_at,
            )
            return True
        return False

    def _advance(self, through: int, accepted: list[Event]) -> None:
        assert self.settled_through is None or through >= self.settled_through
        self._tail.extend(accepted)
        self._tail_ids.extend(event.id for event in accepted)
        if len(self._tail) > TAIL_SIZE:
            cut = len(self._tail) - TAIL_SIZE
            self._tail_floor = self._tail_ids[cut - 1]
            del self._tail[:cut]
            del self._tail_ids[:cut]
        for first in [first for first in self._gaps if first <= through]:
            del self._gaps[first]
        if through != self.settled_through:
            self.settled_through = through
            self.version += 1
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    # -- what streams read --------------------------------------------------------------

    async def wait(self, version: int, timeout: float) -> bool:
        """Wait until the horizon moves past ``version`` (True) or ``timeout`` passes (False)."""
        if self.version != version:
            return True
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return self.version != version
        return True

    async def events_after(
        self, position: int, model: str, limit: int, *, through: int | None = None
    ) -> tuple[list[Event], int]:
        """Up to ``limit`` settled events of ``model`` after ``position`` (up to ``through``, if given),
        and the position they reach."""
        assert self.settled_through is not None
        horizon = self.settled_through if through is None else min(through, self.settled_through)
        if position >= horizon:
            return [], position
        if position >= self._tail_floor:
            found: list[Event] = []
            first, last = bisect.bisect_right(self._tail_ids, position), bisect.bisect_right(self._tail_ids, horizon)
            for event in self._tail[first:last]:
                if event.model == model:
                    found.append(event)
                    if len(found) == limit:
                        return found, event.id
            return found, horizon
        page = await run_in_feed(_read_page, model=model, after=position, through=horizon, limit=limit)
        return page, (page[-1].id if len(page) == limit else horizon)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def current_hub() -> Hub:
    """The hub of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(loop)
    return hub

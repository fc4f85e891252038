"""Groups of subscribers and the work they share, per node and hub.

Streams of identical callers (``sharing.group_key``: same node, path, claims, grants)
form a ``Group``: one verdict per event for all of them. Groups are served by two
lanes per node, each one worker call at a time in the feed's own threads
(``workers``), each call batching every group that needs work:

* the **live lane** (``Fanout``): whenever the hub's horizon moves, the new events of the
  node's model (at most ``LIVE_BATCH`` per call) are evaluated for every group at once
  (``visibility.evaluate``: groups whose row filters answer alike share a visibility
  verdict, objects are rendered once per set of field scopes). A group then wakes its
  streams only if an event has something for them; the others stay asleep and move
  their position past those events when they next wake (a keep-alive, or a later
  event), without reading them again. A thousand subscribers cost one worker call per
  page of events and one wake-up per stream that receives something.
* the **catch-up lane** (``CatchUp``): streams behind their group — resuming from an old
  position, or slower than the events — ask for the verdicts they miss; requests that
  arrive together are evaluated together, up to ``CATCH_UP_EVENTS`` events per call, so
  a stream reading a backlog never holds up the live lane, nor does the live lane hold
  up a backlog.

A group remembers the verdicts of its last ``GROUP_CACHE`` events; a row filter that
raises fails that group's streams (as a database error fails the streams it hits),
never the other groups'.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from djfapi.live import sharing, visibility
from djfapi.live.capture import object_key
from djfapi.live.hub import Hub
from djfapi.live.outbox import Event
from djfapi.live.visibility import Request, Verdict
from djfapi.live.workers import run_in_feed
from djfapi.schemas.access import Access
from djfapi.utils.fastapi_django import request_signalling

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

logger = logging.getLogger("djfapi.live")

LIVE_BATCH = 100  # events of a node's model per live-lane call
LIVE_GROUPS = 128  # groups per live-lane call (more groups: more calls, the first groups' streams served first)
CATCH_UP_EVENTS = 500  # (group, event) pairs per catch-up call
GROUP_CACHE = 1024  # verdicts a group keeps from the live lane
CATCH_UP_CACHE = 256  # verdicts a group keeps from the catch-up lane
IDLE_WAIT = 60.0  # seconds the live lane sleeps between checks when nothing moves

_evaluate = request_signalling(visibility.evaluate)


class Group:
    """Identical subscribers of one node and path (see the module docstring)."""

    def __init__(
        self, node: DjangoRouterSchema, key: Hashable, access: Access | None, ids: Mapping[str, Any], through: int
    ) -> None:
        self.key = key
        self.access = access
        self.ids = dict(ids)
        self.parent_key = (
            (node.parent_field.attname, object_key(node.parent.model, ids[node.parent.id_name]))
            if node.parent is not None
            else None
        )
        self.streams = 0
        #: Every relevant event in (covered_from, through] has its verdict in ``verdicts``.
        self.covered_from = through
        self.through = through
        self.verdicts: OrderedDict[int, Verdict] = OrderedDict()
        self.frames: list[int] = []  # ids in (covered_from, through] whose verdict sends something
        self.caught_up: OrderedDict[int, Verdict] = OrderedDict()
        self.pending: dict[int, asyncio.Future[Verdict]] = {}
        self.failure: BaseException | None = None
        self.version = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._alarm: asyncio.Handle | None = None  # rings at the earliest of the waiters' timeouts
        self._alarm_at = 0.0  # (uvloop's timer handles do not tell when they ring)

    def relevant(self, events: Sequence[Event]) -> list[Event]:
        """The events under this group's path."""
        if self.parent_key is None:
            return list(events)
        attname, parent = self.parent_key
        return [event for event in events if event.refs.get(attname) == parent]

    def verdict(self, event_id: int) -> Verdict | None:
        return self.verdicts.get(event_id) or self.caught_up.get(event_id)

    def quiet_after(self, position: int) -> bool:
        """Whether nothing in (position, through] is for these subscribers (known without reading)."""
        return position >= self.covered_from and (not self.frames or self.frames[-1] <= position)

    def advance(self, through: int, verdicts: Mapping[int, Verdict]) -> None:
        """The live lane evaluated every relevant event up to ``through``."""
        framed = False
        for event_id in sorted(verdicts):
            verdict = verdicts[event_id]
            self.verdicts[event_id] = verdict
            if verdict.frame is not None:
                self.frames.append(event_id)
                framed = True
        while len(self.verdicts) > GROUP_CACHE:
            forgotten, _ = self.verdicts.popitem(last=False)
            self.covered_from = max(self.covered_from, forgotten)
        if self.frames and self.frames[0] <= self.covered_from:
            del self.frames[: bisect.bisect_right(self.frames, self.covered_from)]
        self.through = max(self.through, through)
        if framed:
            self.wake()

    def remember(self, verdicts: Mapping[int, Verdict]) -> None:
        """Verdicts the catch-up lane found, for the group's other streams that are behind."""
        self.caught_up.update(verdicts)
        while len(self.caught_up) > CATCH_UP_CACHE:
            self.caught_up.popitem(last=False)

    def fail(self, error: BaseException) -> None:
        self.failure = error
        self.wake()

    def wake(self) -> None:
        self.version += 1
        if self._alarm is not None:  # the woken streams set it again, for their own timeouts
            self._alarm.cancel()
            self._alarm = None
        self._release()

    def waiter(self, version: int, timeout: float) -> asyncio.Future[None] | None:
        """A future done when the group wakes after ``version`` or ``timeout`` seconds pass, whichever
        is first; None when it woke already or the timeout is over. Give it back with ``forget``.

        Waiting is what the feed does most: a thousand streams wait again after every event
        that reaches them, and whatever lives across a wait outlives the garbage collector's
        young generations, so that the full collections, each a pause of every stream in the
        process, come the sooner the more a wait allocates. A wait is therefore one bare
        future, and the group's streams share one timer, set for the earliest of their
        timeouts: when it rings, every waiter wakes and those not yet due wait again.
        """
        if self.version != version or timeout <= 0:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.add(waiter)
        if self._alarm is None or deadline < self._alarm_at:
            if self._alarm is not None:
                self._alarm.cancel()
            self._alarm, self._alarm_at = loop.call_at(deadline, self._ring), deadline
        return waiter

    def forget(self, waiter: asyncio.Future[None]) -> None:
        """A stream stopped waiting (woken, or cancelled while waiting)."""
        self._waiters.discard(waiter)
        if not self._waiters and self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None

    def _ring(self) -> None:
        self._alarm = None
        self._release()

    def _release(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Fanout:
    """The groups of one node on one hub, and its live lane (see the module docstring)."""

    def __init__(self, hub: Hub, node: DjangoRouterSchema) -> None:
        self.hub = hub
        self.node = node
        self.label = node.model._meta.label_lower
        self.groups: dict[Hashable, Group] = {}
        self.catch_up = CatchUp(node)
        self._task: asyncio.Task[None] | None = None

    def join(self, access: Access | None, ids: Mapping[str, Any]) -> Group:
        """A stream starts: its group (made if it is the first), served from the hub's horizon on."""
        key = sharing.group_key(self.node, access, ids)
        group = self.groups.get(key)
        if group is None or group.failure is not None:  # a failed group's streams are ending: start afresh
            horizon = self.hub.settled_through
            assert horizon is not None
            group = self.groups[key] = Group(self.node, key, access, ids, horizon)
        group.streams += 1
        if self._task is None or self._task.done():
            self._task = self.hub.loop.create_task(self._follow(), name=f"djfapi.live fan-out {self.label}")
        return group

    def leave(self, group: Group) -> None:
        """A stream ended: forget its group with its last stream, stop the lane with the last group."""
        group.streams -= 1
        if group.streams <= 0 and self.groups.get(group.key) is group:
            del self.groups[group.key]
        if not self.groups:
            if self._task is not None:
                self._task.cancel()
                self._task = None
            self.hub.shared.pop(_slot(self.node), None)

    async def _follow(self) -> None:
        hub = self.hub
        version: int | None = None
        with contextlib.suppress(asyncio.CancelledError):
            while self.groups:
                if hub.closing:
                    for group in list(self.groups.values()):
                        group.wake()
                    return
                if version == hub.version:
                    await hub.wait(version, IDLE_WAIT)
                    continue
                version = hub.version
                try:
                    await self._advance()
                except Exception as error:  # a bug here must end the streams, not leave them waiting forever
                    logger.exception("djfapi.live: the fan-out of %s failed", self.label)
                    for group in list(self.groups.values()):
                        group.fail(error)

    async def _advance(self) -> None:
        """Evaluate what the horizon added for every group, a batch at a time."""
        while True:
            horizon = self.hub.settled_through
            assert horizon is not None
            behind = [g for g in self.groups.values() if g.failure is None and g.through < horizon]
            if not behind:
                return
            try:
                events, reached = await self.hub.events_after(min(g.through for g in behind), self.label, LIVE_BATCH)
            except Exception as error:
                self._fail(behind, error)
                continue
            for start in range(0, len(behind), LIVE_GROUPS):
                await self._evaluate(behind[start : start + LIVE_GROUPS], events, reached)

    async def _evaluate(self, groups: list[Group], events: list[Event], reached: int) -> None:
        """One worker call for ``groups``; each then moves to ``reached`` and wakes if something is for it."""
        requests = [
            Request(group.key, group.access, group.ids, mine)
            for group in groups
            if (mine := [event for event in group.relevant(events) if event.id > group.through])
        ]
        try:
            outcomes = await run_in_feed(_evaluate, node=self.node, requests=requests) if requests else {}
        except Exception as error:
            self._fail(groups, error)
            return
        for group in groups:
            outcome = outcomes.get(group.key, {})
            if isinstance(outcome, Exception):
                group.fail(outcome)
            else:
                group.advance(reached, outcome)

    def _fail(self, groups: list[Group], error: Exception) -> None:
        """The database is away: these groups' streams end (as each would have), clients reconnect."""
        logger.warning("djfapi.live: evaluating events of %s failed: %s", self.label, error)
        for group in groups:
            group.fail(error)


class CatchUp:
    """Verdicts for streams behind their group, batched across groups (see the module docstring)."""

    def __init__(self, node: DjangoRouterSchema) -> None:
        self.node = node
        self.queue: dict[Group, dict[int, Event]] = {}
        self._task: asyncio.Task[None] | None = None

    async def verdicts(self, group: Group, events: Sequence[Event]) -> dict[int, Verdict]:
        """The verdicts of ``events`` for ``group``, evaluated with other groups' requests of the moment."""
        loop = asyncio.get_running_loop()
        futures: dict[int, asyncio.Future[Verdict]] = {}
        for event in events:
            future = group.pending.get(event.id)
            if future is None:
                future = group.pending[event.id] = loop.create_future()
                future.add_done_callback(_retrieved)
                self.queue.setdefault(group, {})[event.id] = event
            futures[event.id] = future
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="djfapi.live catch-up")
        await asyncio.wait(futures.values())  # not cancelled with this stream: others may wait for them too
        return {event_id: future.result() for event_id, future in futures.items()}

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the streams woken together ask together
        while self.queue:
            batch: dict[Group, dict[int, Event]] = {}
            size = 0
            while self.queue and size < CATCH_UP_EVENTS:
                group = next(iter(self.queue))
                batch[group] = self.queue.pop(group)
                size += len(batch[group])
            requests = [
                Request(id(group), group.access, group.ids, list(events.values())) for group, events in batch.items()
            ]
            try:
                outcomes: Mapping[Hashable, Any] = await run_in_feed(_evaluate, node=self.node, requests=requests)
            except Exception as error:
                outcomes = {id(group): error for group in batch}
            for group, events in batch.items():
                outcome = outcomes[id(group)]
                if not isinstance(outcome, Exception):
                    group.remember(outcome)
                for event_id in events:
                    future = group.pending.pop(event_id)
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome[event_id])


def _retrieved(future: asyncio.Future[Verdict]) -> None:
    if not future.cancelled():
        future.exception()  # whoever waits reads it; nobody left waiting is no error to log


def _slot(node: DjangoRouterSchema) -> Hashable:
    return ("fanout", id(node))


def fanout(hub: Hub, node: DjangoRouterSchema) -> Fanout:
    """The fan-out of ``node`` on ``hub`` (made on first use)."""
    slot = _slot(node)
    found = hub.shared.get(slot)
    if found is None:
        found = hub.shared[slot] = Fanout(hub, node)
    assert isinstance(found, Fanout)
    return found

"""One subscription's stream: where it starts, what it reads next, what it sends.

Delivery is pull-based. A stream keeps a single number, its position (the last event
id it has dealt with), and reads the settled events after it from the hub — from the
hub's in-memory tail when it is up to date, from the outbox in pages of at most 100
when it is behind. Nothing is queued per stream, so a slow reader costs one page of
memory, not a growing backlog; a reader that cannot take a page within
``DJFAPI["LIVE_SEND_TIMEOUT"]`` seconds (default 30) is closed (``slow_consumer``) and
resumes from its last event id.

A stream belongs to the group of identical callers (``fanout.Group``), whose verdicts
are worked out once for all of them by the node's live lane, together with every other
group's (see ``djfapi.live.fanout`` and ``djfapi.live.sharing``). The group wakes the
stream only when an event is for it; a stream moves its position past events that
were not for it when it next wakes, without reading them again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.db import Error as DatabaseError

from djfapi.conf import setting
from djfapi.errors import ServiceUnavailable
from djfapi.live import outbox
from djfapi.live.capture import DELETE
from djfapi.live.fanout import Fanout, Group, fanout
from djfapi.live.hub import Hub, current_hub
from djfapi.live.outbox import Event, Origin
from djfapi.routing import queries
from djfapi.schemas.access import Access, AccessToken
from djfapi.utils.fastapi_django import request_signalling, run_signalled

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

PAGE = 100
SETTLE_WAIT = 1.0  # seconds a new stream waits for ids missing at its start to settle, to name its position
SETTLE_RUNS = 64  # runs of missing ids beyond which it does not try
SHOWN_LIMIT = 10_000  # objects a stream remembers having shown (for hard deletes under a custom filter)


def heartbeat() -> float:
    """``DJFAPI["LIVE_HEARTBEAT"]``: seconds between keep-alives on an idle stream (default 15)."""
    return float(setting("LIVE_HEARTBEAT", 15.0))


def send_timeout() -> float:
    """``DJFAPI["LIVE_SEND_TIMEOUT"]``: seconds a client may take to accept a page (default 30)."""
    return float(setting("LIVE_SEND_TIMEOUT", 30.0))


class SlowConsumer(Exception):
    """The client did not take what was sent within the send timeout."""


class Transport(Protocol):
    """SSE or WebSocket framing of a stream's messages."""

    async def send_event(self, event_id: int, action: str, payload: bytes) -> None: ...

    async def send_control(self, name: str, position: int | None, payload: dict[str, Any]) -> None: ...

    async def send_ping(self, position: int) -> None: ...

    async def close(self, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class Start:
    """Where a stream starts, decided before it is opened."""

    requested: int | None  # the client's Last-Event-ID / since, if any
    pruned_through: int = 0
    newest: int = 0


def prepare(
    node: DjangoRouterSchema,
    token: AccessToken | None,
    scopes: tuple[str, ...] | None,
    ids: Mapping[str, Any],
    requested: int | None,
) -> tuple[Access | None, Start]:
    """The caller's access (403), the path's ancestors (404) and the outbox's bounds: in a worker thread."""
    security = node.security
    access = security.authorize(token, scopes) if security is not None and token is not None else None
    queries.require_parent(node, access, ids)
    if requested is None:
        return access, Start(None)
    return access, Start(requested, outbox.pruned_through(), outbox.newest_id())


prepare_signalled = request_signalling(prepare)
_origin = request_signalling(outbox.origin)
_first_late = request_signalling(outbox.first_late)


class Stream:
    """One subscriber's stream (see the module docstring)."""

    def __init__(
        self,
        node: DjangoRouterSchema,
        access: Access | None,
        ids: Mapping[str, Any],
        start: Start,
        *,
        leeway: float = 0.0,
    ) -> None:
        self.node = node
        self.access = access
        self.ids = dict(ids)
        self.start = start
        self.label = node.model._meta.label_lower
        self.deadline = access.token.exp + leeway if access is not None else None
        self.shown: OrderedDict[str, None] | None = OrderedDict() if node.has_custom_filter else None
        self.hub: Hub | None = None
        self.fanout: Fanout | None = None
        self.group: Group | None = None
        self.position = 0
        self.reset: str | None = None  # why the requested position cannot be resumed from
        self.origin: Origin | None = None  # a stream that starts now: what is history

    # -- opening and closing ---------------------------------------------------------

    async def open(self) -> None:
        """Join the hub and find where the stream starts (503 if the outbox cannot be read); nothing is sent yet.

        A stream without a position (or one that has to be reset) starts at the moment
        it subscribes: every event committed by then is history, even one whose id is
        above an event that commits later (ids are drawn before commit). The hub's
        horizon lags behind commits (a wake-up on its way, a gap held open by another
        writer), so the outbox is read once more here, after the horizon was taken.
        """
        hub = current_hub()
        await hub.attach()
        self.hub = hub
        self.fanout = fanout(hub, self.node)
        self.group = self.fanout.join(self.access, self.ids)
        horizon = hub.settled_through
        assert horizon is not None
        self.reset = self._reset_reason(horizon)
        if self.start.requested is not None and self.reset is None:
            return
        try:
            origin = await run_signalled(_origin, after=horizon)
            self.origin = await self._settle(hub, origin) if origin.missing else origin
        except DatabaseError as error:
            self.close()
            raise ServiceUnavailable("The change feed cannot read its events right now; try again.") from error
        except BaseException:
            self.close()
            raise

    async def _settle(self, hub: Hub, origin: Origin) -> Origin:
        """The origin with its missing ids final, if the hub settles them within ``SETTLE_WAIT``.

        A rolled-back id settles within milliseconds; then ``ready`` names the position
        after it rather than before (which would make a client that resumes from it
        receive the events committed above it). An id still open keeps the origin as it is.
        """
        deadline = time.monotonic() + SETTLE_WAIT
        while (horizon := hub.settled_through) is None or horizon < origin.through:
            left = deadline - time.monotonic()
            if left <= 0 or len(origin.missing) > SETTLE_RUNS:
                return origin
            await hub.wait(hub.version, left)
        return origin.settled(await run_signalled(_first_late, origin=origin))

    def _reset_reason(self, horizon: int) -> str | None:
        requested = self.start.requested
        if requested is None:
            return None
        if requested < self.start.pruned_through:
            return "retention"
        if requested > max(self.start.newest, horizon):
            return "unknown_position"
        return None

    def close(self) -> None:
        if self.group is not None and self.fanout is not None:
            self.fanout.leave(self.group)
            self.group = None
        if self.hub is not None:
            self.hub.detach()
            self.hub = None

    # -- running -----------------------------------------------------------------------

    async def run(self, transport: Transport) -> None:
        """Send ``ready`` (or ``reset``), then events and keep-alives until the token expires.

        Raises ``SlowConsumer`` when the client stops taking what is sent.
        """
        hub = self.hub
        assert hub is not None and hub.settled_through is not None
        requested = self.start.requested
        if self.origin is not None:
            self.position = self.origin.position
        else:
            assert requested is not None
            self.position = requested
        if self.reset == "retention":
            await transport.send_control(
                "reset",
                self.position,
                {
                    "reason": "retention",
                    "message": f"Events after {requested} are no longer kept; reload the data, then carry on from "
                    f"this event's id.",
                },
            )
        elif self.reset == "unknown_position":
            await transport.send_control(
                "reset",
                self.position,
                {
                    "reason": "unknown_position",
                    "message": f"There is no event {requested}; reload the data, then carry on from this event's id.",
                },
            )
        else:
            await transport.send_control("ready", self.position, {})
        await self._follow(hub, transport)

    async def _follow(self, hub: Hub, transport: Transport) -> None:
        group = self.group
        assert group is not None
        interval = heartbeat()
        next_ping = time.monotonic() + interval
        while True:
            if hub.closing:
                await transport.close("server_shutdown", "The server is stopping; reconnect with the last id you saw.")
                return
            if self.deadline is not None and time.time() >= self.deadline:
                await transport.close("token_expired", "The token has expired; reconnect with a new one.")
                return
            if group.failure is not None:
                raise group.failure
            version = group.version
            if not self._up_to_date(group):
                if await self._read_and_deliver(hub, group, transport):
                    next_ping = time.monotonic() + interval
                continue
            # Nothing made per pass lives across the wait (see ``Group.waiter``): no list here.
            timeout = next_ping - time.monotonic()
            if self.deadline is not None:
                timeout = min(timeout, self.deadline - time.time())
            waiter = group.waiter(version, timeout)
            if waiter is not None:
                try:
                    await waiter
                finally:
                    group.forget(waiter)
            moved = group.version != version
            if not moved and time.monotonic() >= next_ping:
                self._up_to_date(group)
                await transport.send_ping(self.position)
                next_ping = time.monotonic() + interval

    async def _read_and_deliver(self, hub: Hub, group: Group, transport: Transport) -> int:
        """Send the next page after the position; how many events were sent."""
        events, reached = await hub.events_after(self.position, self.label, PAGE, through=group.through)
        if self.origin is not None:
            origin = self.origin
            events = [event for event in events if not origin.is_history(event.id)]
            if reached >= origin.through:
                self.origin = None  # past what was history: nothing more to skip
        sent = await self._deliver(group, events, transport) if events else 0
        self.position = max(self.position, reached)
        return sent

    def _up_to_date(self, group: Group) -> bool:
        """Whether nothing up to the group's position is left to send; moves past what was not for us."""
        if self.position < group.through and group.quiet_after(self.position):
            self.position = group.through
            if self.origin is not None and self.position >= self.origin.through:
                self.origin = None
        return self.position >= group.through

    async def _deliver(self, group: Group, events: list[Event], transport: Transport) -> int:
        events = group.relevant(events)
        if not events:
            return 0
        verdicts = {event.id: verdict for event in events if (verdict := group.verdict(event.id)) is not None}
        missing = [event for event in events if event.id not in verdicts]
        if missing:
            assert self.fanout is not None
            verdicts.update(await self.fanout.catch_up.verdicts(group, missing))
        sent = 0
        for event in events:
            verdict = verdicts[event.id]
            if verdict.frame is None:
                continue
            if verdict.if_shown and (self.shown is None or event.object_id not in self.shown):
                continue
            await transport.send_event(event.id, event.action, verdict.frame)
            sent += 1
            self._remember(event)
        return sent

    def _remember(self, event: Event) -> None:
        if self.shown is None:
            return
        if event.action == DELETE:
            self.shown.pop(event.object_id, None)
            return
        self.shown[event.object_id] = None
        self.shown.move_to_end(event.object_id)
        if len(self.shown) > SHOWN_LIMIT:
            self.shown.popitem(last=False)

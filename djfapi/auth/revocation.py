"""Revoked tokens, checked on every request without a query.

Every process keeps the revoked ``jti`` values and token families that could still be
presented (not yet expired) in memory; ``JWTToken`` refuses a token whose ``jti`` or
``fam`` claim is among them (401 ``token_revoked``). The set is loaded once from the
database when the first request of an event loop needs it and then kept current:

* **in this process** at once (already before the revoking transaction commits: one that
  rolls back is forgotten at the next reload, failing closed for that moment);
* **in other processes** by a message on ``DJFAPI["AUTH_CHANNEL"]`` (default
  ``djfapi_revocations``) carrying the revoked id — Redis pub/sub when
  ``DJFAPI["AUTH_REDIS_URL"]`` (else ``LIVE_REDIS_URL``) is set, else PostgreSQL
  ``NOTIFY`` sent in the revoking transaction — through the same listeners as the change
  feed's wake-ups (``djfapi.live.listeners``): typically within milliseconds;
* **at worst** by the safety reload every ``DJFAPI["AUTH_REVOCATION_POLL_INTERVAL"]``
  seconds (default 5), which also covers SQLite (no carrier between processes) and
  messages lost while a listener reconnects (it reloads on every reconnection too).

So a revocation is seen by every process within ``AUTH_REVOCATION_POLL_INTERVAL``
seconds at most (plus one query's time), and usually at once. The reload is one query
per process per interval, never one per request.

A loop may also live for one request only: Starlette's ``TestClient`` used outside
``with`` runs each request in an event loop of its own and runs no lifespan. A follower
that listened at once would open a ``LISTEN`` connection, and read the set again, for
every such request, only to be cancelled as the loop closes. So a follower started by a
request (not by the app's start-up) waits ``FOLLOW_AFTER`` seconds before it listens;
a request on a loop whose follower is not yet listening reads the set itself when it is
older than the interval, which keeps the bound above for every loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from djfapi.conf import setting
from djfapi.schemas.access import AccessToken

logger = logging.getLogger("djfapi.auth")

DEFAULT_CHANNEL = "djfapi_revocations"


def channel() -> str:
    return str(setting("AUTH_CHANNEL", DEFAULT_CHANNEL))


def redis_url() -> str | None:
    return setting("AUTH_REDIS_URL") or setting("LIVE_REDIS_URL") or None


def poll_interval() -> float:
    return float(setting("AUTH_REVOCATION_POLL_INTERVAL", 5.0))


class RevocationCache:
    """The revoked jtis and families of this process: id -> expiry (epoch seconds)."""

    def __init__(self) -> None:
        self.jtis: dict[str, float] = {}
        self.families: dict[str, float] = {}
        self.loaded_at: float | None = None
        self._lock = threading.Lock()
        self._added: list[tuple[float, str, str, float]] = []  # (monotonic, kind, id, exp), during a reload
        self.checks = 0  # lookups answered from memory (the metrics' revocation-cache hits)
        self.reloads = 0

    def is_revoked(self, token: AccessToken) -> bool:
        """The hot path: two dictionary lookups."""
        self.checks += 1
        jti = token.jti
        if jti is not None and jti in self.jtis:
            return True
        family = (token.model_extra or {}).get("fam")
        return isinstance(family, str) and family in self.families

    def add(self, kind: str, value: str, expires: float) -> None:
        with self._lock:
            (self.jtis if kind == "j" else self.families)[value] = expires
            self._added.append((time.monotonic(), kind, value, expires))
            del self._added[:-1000]

    def replace(self, jtis: dict[str, float], families: dict[str, float], started: float) -> None:
        """Install a reload that began at ``started`` (monotonic), keeping what arrived meanwhile."""
        now = time.time()
        with self._lock:
            for at, kind, value, expires in self._added:
                if at >= started:
                    (jtis if kind == "j" else families)[value] = expires
            self.jtis = {k: v for k, v in jtis.items() if v > now}
            self.families = {k: v for k, v in families.items() if v > now}
            self.loaded_at = time.monotonic()
            self.reloads += 1

    def clear(self) -> None:
        with self._lock:
            self.jtis, self.families, self.loaded_at = {}, {}, None
            self._added.clear()


cache = RevocationCache()


def load() -> None:
    """Read every revocation that is not yet expired (one query per table) into the cache."""
    from djfapi.auth.models import RevokedToken, TokenFamily

    started = time.monotonic()
    now = timezone.now()
    jtis = {
        jti: exp.timestamp()
        for jti, exp in RevokedToken.objects.filter(expires_at__gt=now).values_list("jti", "expires_at")
    }
    families = {
        fam: exp.timestamp()
        for fam, exp in TokenFamily.objects.filter(revoked_at__isnull=False, expires_at__gt=now).values_list(
            "id", "expires_at"
        )
    }
    cache.replace(jtis, families, started)


# -- sending -------------------------------------------------------------------------------


def announce(kind: str, values: Iterable[tuple[str, datetime.datetime]], *, using: str | None = None) -> None:
    """Tell every process, once the current transaction commits, that these ids are revoked.

    ``kind`` is ``"j"`` (token ids) or ``"f"`` (families). On PostgreSQL without Redis the
    NOTIFY is sent in the transaction itself, so PostgreSQL delivers it at commit.
    """
    items = [(value, expires.timestamp()) for value, expires in values]
    if not items:
        return
    alias = using or router.db_for_write(_model(kind))
    payloads = [f"{kind}:{expires:.0f}:{value}" for value, expires in items]

    # This process refuses the ids at once, before the commit: a revocation rolled back is
    # forgotten at the next reload (failing closed for a moment rather than open).
    for value, expires in items:
        cache.add(kind, value, expires)

    def broadcast() -> None:
        url = redis_url()
        if url is not None:
            from djfapi.live.wakeups import _redis_client

            for payload in payloads:
                try:
                    _redis_client(url).publish(channel(), payload)
                except Exception as error:  # the other processes' safety reload finds it anyway
                    logger.warning("djfapi.auth: could not publish a revocation to Redis: %s", error)

    if redis_url() is None and connections[alias].vendor == "postgresql":
        with connections[alias].cursor() as cursor:
            for payload in payloads:
                cursor.execute("SELECT pg_notify(%s, %s)", [channel(), payload])
    transaction.on_commit(broadcast, using=alias)


def _model(kind: str) -> Any:
    from djfapi.auth.models import RevokedToken, TokenFamily

    return RevokedToken if kind == "j" else TokenFamily


def _listener_name(alias: str) -> str:
    """The LISTEN connection's ``application_name``: the app's, marked, so it is told apart from request work."""
    base = connections[alias].settings_dict.get("OPTIONS", {}).get("application_name") or "djfapi"
    return f"{base}:revocations"[:63]


def apply_message(payload: Any) -> bool:
    """Add a revocation message (``kind:exp:id``) to the cache; False when it is not one."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    if not isinstance(payload, str):
        return False
    kind, _, rest = payload.partition(":")
    expires, _, value = rest.partition(":")
    if kind not in ("j", "f") or not value or not expires.isdigit():
        return False
    cache.add(kind, value, float(expires))
    return True


# -- following, per event loop ---------------------------------------------------------------

_followers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()
#: The loops whose follower listens and reloads (past its ``FOLLOW_AFTER``).
_following: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
#: Held by the request reloading a stale set; concurrent ones go on with the set they have.
_reloading = threading.Lock()


#: Whether processes follow revocations from other processes, by a follower or by a request's own
#: reload (the test suite's own process does not: its tests revoke in-process, and a reload would
#: query at moments the tests count).
FOLLOW = True
#: Seconds a follower started by a request waits before it listens (see the module docstring).
FOLLOW_AFTER = 1.0


async def ensure_ready(*, at_startup: bool = False) -> None:
    """Load the cache if it is not (or, on a loop nobody follows on yet, if it is older than the
    interval), and follow revocations on this event loop. Cheap once done: no query."""
    loop = asyncio.get_running_loop()
    if cache.loaded_at is None:
        await _reload()
    elif FOLLOW and loop not in _following and time.monotonic() - cache.loaded_at > poll_interval():
        await _reload_unless_running()
    if FOLLOW and loop not in _followers:
        wait = 0.0 if at_startup else FOLLOW_AFTER
        _followers[loop] = loop.create_task(_follow(wait), name="djfapi-revocations")


async def startup() -> None:
    """``ensure_ready`` at the start of an app (its loop serves every request: the follower listens
    at once); a database that does not answer yet is no reason not to start (the first request that
    carries a token loads the revoked ids instead)."""
    try:
        await ensure_ready(at_startup=True)
    except Exception as error:
        logger.warning("djfapi.auth: could not load the revoked tokens at start-up (%s); loading them later", error)


async def _reload() -> None:
    from djfapi.utils.fastapi_django import request_signalling, run_signalled

    await run_signalled(request_signalling(load))


async def _reload_or_keep() -> None:
    """Reload; when the database does not answer, keep the last known set (the next try comes at the
    next interval, from the follower or a request)."""
    try:
        await _reload()
    except Exception as error:
        logger.warning("djfapi.auth: could not reload the revoked tokens: %s", error)


async def _reload_unless_running() -> None:
    """A request's own reload of a stale set, skipped while another request reloads."""
    if not _reloading.acquire(blocking=False):
        return
    try:
        await _reload_or_keep()
    finally:
        _reloading.release()


async def _follow(wait: float) -> None:
    """After ``wait`` seconds, listen for revocation messages and reload every poll interval, until
    the loop ends."""
    from djfapi.live import listeners

    await asyncio.sleep(wait)  # a loop made for one request ends here, before any connection
    loop = asyncio.get_running_loop()

    def wake(payload: Any) -> None:
        if payload is None or not apply_message(payload):
            reload_soon.set()  # (re)connected, or a message we cannot read: read everything again

    reload_soon = asyncio.Event()
    listener: asyncio.Task[None] | None = None
    url = redis_url()
    alias = router.db_for_read(_model("j"))
    if url is not None:
        listener = asyncio.create_task(
            listeners.listen_redis(wake, channel=channel(), url=url, raw=True), name="djfapi-revocations Redis"
        )
    elif connections[alias].vendor == "postgresql":
        listener = asyncio.create_task(
            listeners.listen_postgresql(
                wake, channel=channel(), alias=alias, raw=True, application_name=_listener_name(alias)
            ),
            name="djfapi-revocations LISTEN",
        )
    try:
        _following.add(loop)  # from here until the loop ends, requests leave reloading to this task
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_interval()):
                    await reload_soon.wait()
            reload_soon.clear()
            await _reload_or_keep()
    finally:
        _following.discard(loop)
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener

"""Wake-ups, the sending side: "there are new events (up to id N)", never the events.

Three carriers, from the cheapest that reaches every process:

* PostgreSQL: ``pg_notify`` issued in the writing transaction (``capture``), which
  PostgreSQL delivers to every ``LISTEN``-ing process at commit and drops on rollback;
* Redis (``DJFAPI["LIVE_REDIS_URL"]``): a pub/sub message published after commit;
* in-process: the hubs of this process, woken after commit, always (it is free and
  saves a round trip through the database or Redis for local subscribers).

A lost wake-up only delays delivery until the hub's safety poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import connection as default_connection

from djfapi.conf import setting

logger = logging.getLogger("djfapi.live")

DEFAULT_CHANNEL = "djfapi_live"

Waker = Callable[[int | None], None]
_local: set[Waker] = set()
_local_lock = threading.Lock()


def channel() -> str:
    """``DJFAPI["LIVE_CHANNEL"]``: the NOTIFY channel and Redis channel name (default ``djfapi_live``)."""
    return str(setting("LIVE_CHANNEL", DEFAULT_CHANNEL))


def redis_url() -> str | None:
    return setting("LIVE_REDIS_URL") or None


def notify_in_transaction() -> bool:
    """Whether writers on PostgreSQL send a NOTIFY (not when Redis carries the wake-ups)."""
    return redis_url() is None


def carrier(vendor: str | None = None) -> str:
    """``"redis"``, ``"postgresql"`` or ``"local"``: what carries wake-ups between processes."""
    if redis_url() is not None:
        return "redis"
    if (vendor or default_connection.vendor) == "postgresql":
        return "postgresql"
    return "local"


def add_local(waker: Waker) -> None:
    """Call ``waker(event_id)`` (from any thread) whenever an event commits in this process."""
    with _local_lock:
        _local.add(waker)


def remove_local(waker: Waker) -> None:
    with _local_lock:
        _local.discard(waker)


def committed(event_id: int) -> None:
    """Runs after the commit of an event (``transaction.on_commit``), in the writer's thread."""
    with _local_lock:
        wakers = list(_local)
    for waker in wakers:
        waker(event_id)
    url = redis_url()
    if url is not None:
        try:
            _redis_client(url).publish(channel(), str(event_id))
        except Exception as error:  # a wake-up is a hint: the hubs' safety poll finds the event anyway
            logger.warning("djfapi.live: could not publish a wake-up to Redis: %s", error)


_clients: dict[str, Any] = {}


def _redis_client(url: str) -> Any:
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client

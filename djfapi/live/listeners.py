"""Wake-ups, the receiving side: one listener per hub, reconnecting until the hub stops.

The PostgreSQL listener is an async psycopg connection built from Django's
``DATABASES`` entry (same server, credentials and options, ``application_name``
included), in autocommit, doing nothing but ``LISTEN``. ``LISTEN`` belongs to a
session, so behind a transaction-pooling PgBouncer it must bypass the pooler:
``DJFAPI["LIVE_LISTEN_DSN"]`` (e.g. ``"host=db-primary port=5432"``) overrides those
connection parameters for the listener alone. The Redis listener is a
``redis.asyncio`` pub/sub subscription. Each wakes the hub on every message and once
after every (re)connection, since wake-ups sent while it was away are lost; the hub's
safety poll covers the time in between.

The token revocations (``djfapi.auth.revocation``) use the same listeners on a channel of
their own, with ``raw=True``: their messages carry the revoked ids, handed over as they came.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from djfapi.conf import setting
from djfapi.live import wakeups

logger = logging.getLogger("djfapi.live")

Wake = Callable[[int | None], None]
BACKOFF_MIN, BACKOFF_MAX = 0.5, 10.0


def _event_id(payload: Any) -> int | None:
    if isinstance(payload, bytes):
        payload = payload.decode("ascii", "replace")
    return int(payload) if isinstance(payload, str) and payload.isdigit() else None


def listen_dsn() -> str | None:
    """``DJFAPI["LIVE_LISTEN_DSN"]``: where the listener connects instead (conninfo or URL), if set."""
    return setting("LIVE_LISTEN_DSN") or None


def postgresql_params(alias: str | None = None) -> dict[str, Any]:
    """Connection keywords for psycopg, from the Django settings of ``alias`` (default: the outbox's database).

    The parameters ``LIVE_LISTEN_DSN`` names replace Django's (the others, the database
    name among them unless it names one, stay), so a listener reaches the same
    database by a direct route, past a transaction pooler.
    """
    from django.db import connections
    from psycopg.conninfo import conninfo_to_dict

    if alias is None:
        from djfapi.live.outbox import _alias

        alias = _alias()
    params = dict(connections[alias].get_connection_params())
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)  # Django's sync cursor and adapters; LISTEN needs neither
    dsn = listen_dsn()
    if dsn is not None:
        params.update(conninfo_to_dict(dsn))
    return params


async def listen_postgresql(
    wake: Callable[[Any], None],
    *,
    channel: str | None = None,
    alias: str | None = None,
    raw: bool = False,
    application_name: str | None = None,
) -> None:
    """``LISTEN`` on ``channel`` (default: the feed's); ``wake(payload)`` per message (an event id
    unless ``raw``), ``wake(None)`` after every (re)connection."""
    import psycopg
    from psycopg import sql

    backoff = BACKOFF_MIN
    while True:
        try:
            params = postgresql_params(alias)
            if application_name is not None:
                params["application_name"] = application_name
            async with await psycopg.AsyncConnection.connect(**params, autocommit=True) as connection:
                await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel or wakeups.channel())))
                backoff = BACKOFF_MIN
                wake(None)
                async for notify in connection.notifies():
                    wake(notify.payload if raw else _event_id(notify.payload))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("djfapi.live: the LISTEN connection failed (%s); reconnecting in %.1f s", error, backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX)


async def listen_redis(
    wake: Callable[[Any], None], *, channel: str | None = None, url: str | None = None, raw: bool = False
) -> None:
    """Subscribe to ``channel`` on ``url`` (defaults: the feed's); messages as in ``listen_postgresql``."""
    import redis.asyncio

    backoff = BACKOFF_MIN
    while True:
        target = url or wakeups.redis_url()
        if target is None:
            return
        client = redis.asyncio.Redis.from_url(target, socket_connect_timeout=5)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel or wakeups.channel())
                backoff = BACKOFF_MIN
                wake(None)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message.get("data")
                        wake(data if raw else _event_id(data))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("djfapi.live: the Redis subscription failed (%s); reconnecting in %.1f s", error, backoff)
        finally:
            await client.aclose()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX)

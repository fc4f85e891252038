"""Live data: a scoped, tenant-filtered change feed of router schemas (SSE and WebSocket).

Add ``"djfapi.live"`` to ``INSTALLED_APPS`` (and migrate), then give a node
``subscribe=True``: it gains ``GET .../subscribe`` (Server-Sent Events) and a WebSocket
at the same path, guarded like its ``GET``. How it fits together:

* ``capture``: saves and deletes of subscribed models write a ``ChangeEvent`` row (the
  outbox, ``models``) in the same transaction, and wake the streams after commit;
* ``wakeups`` / ``listeners``: PostgreSQL ``NOTIFY``, Redis pub/sub or in-process
  wake-ups saying "new events", never carrying them;
* ``hub``: per process, follows the outbox up to the id below which nothing can
  still appear, and keeps the newest events in memory;
* ``fanout`` / ``sharing`` / ``visibility``: groups of identical subscribers, which of
  them may share a verdict or a rendering (the sharing rule), and what each may see —
  evaluated for all groups of a node at once, in the feed's own threads (``workers``);
* ``stream`` / ``transports`` / ``routes``: one subscriber's position, how it is
  framed, and the routes;
* ``outbox``: reading and pruning (``prune_events``, ``manage.py djfapi_prune_events``).

Settings (``DJFAPI``): ``LIVE_HEARTBEAT``, ``LIVE_RETENTION``, ``LIVE_SEND_TIMEOUT``,
``LIVE_REDIS_URL``, ``LIVE_POLL_INTERVAL``, ``LIVE_PRUNE_INTERVAL``,
``LIVE_GAP_TIMEOUT``, ``LIVE_CHANNEL``, ``LIVE_THREADS``, ``LIVE_LISTEN_DSN`` (see ``djfapi.conf``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime

    from django.db import models

__all__ = ["prune_events", "publish"]


def publish(
    target: models.Model | type[models.Model],
    object_id: Any = None,
    action: str = "UPDATE",
    *,
    using: str | None = None,
) -> int:
    """Publish a change the ORM did not signal (``QuerySet.update()``, ``bulk_create()``); see ``capture.publish``."""
    from djfapi.live.capture import publish as publish_change

    return publish_change(target, object_id, action, using=using)


def prune_events(older_than: float | None = None, *, now: datetime.datetime | None = None) -> int:
    """Delete events older than ``older_than`` seconds (default ``LIVE_RETENTION``); see ``outbox.prune_events``."""
    from djfapi.live.outbox import prune_events as prune

    return prune(older_than, now=now)

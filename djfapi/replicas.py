"""Read replicas: a Django database router for generated reads, with read-your-writes.

Install it and name the replicas::

    DATABASE_ROUTERS = ["djfapi.replicas.ReplicaRouter"]
    DJFAPI = {"READ_REPLICAS": ["replica"], "REPLICA_PIN_SECONDS": 5}

A streaming replica is a little behind its primary, so "read from the replica" is only
safe where a stale answer is harmless. The router therefore sends a read to a replica
only when all of these hold, and to the primary otherwise:

* it is made by a generated endpoint (or a custom route of a tree) answering a
  ``GET``, ``HEAD`` or ``OPTIONS`` request: the change feed, the admin, management
  commands and your own code read from the primary, as does every write (a write reads
  its parent and reads its row back, and must see the newest data);
* no transaction is open on the primary in this thread (reads inside ``atomic`` belong
  to the transaction);
* the caller (the token's tenant and user) has not written within the last
  ``REPLICA_PIN_SECONDS`` (default 5): after a write, the same caller's reads are
  pinned to the primary, so that they see their own writes however far the replica
  lags. Other callers may see the change a little later, as replication delivers it.

The pins live in a Django cache (``DJFAPI["REPLICA_PIN_CACHE"]``, default
``"default"``): the default local-memory cache holds them per process, which is right
for one worker; with several workers or hosts use a shared cache (Redis, memcached) so
that a write on one worker pins the caller's reads on every other. The window must be
longer than the replica's lag for read-your-writes to hold; the docs' "Deploying past
one process" page shows how to measure the lag. A route without ``security`` has no
caller to pin: its reads always go to a replica.

Every write goes to the primary (``DJFAPI["PRIMARY_DATABASE"]``, default ``"default"``);
migrations run only there.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.signals import request_finished
from django.db import connections

from djfapi.conf import setting
from djfapi.ops.context import caller_of, current_request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_KEY = "djfapi_replica"
DEFAULT_PIN_SECONDS = 5.0


def primary() -> str:
    """``DJFAPI["PRIMARY_DATABASE"]``: the alias that takes every write (default ``"default"``)."""
    return str(setting("PRIMARY_DATABASE", "default"))


def replicas() -> list[str]:
    """``DJFAPI["READ_REPLICAS"]``: aliases of ``DATABASES`` that generated reads may use."""
    return list(setting("READ_REPLICAS", []))


def pin_seconds() -> float:
    """``DJFAPI["REPLICA_PIN_SECONDS"]``: how long a caller's reads stay on the primary after a write."""
    return float(setting("REPLICA_PIN_SECONDS", DEFAULT_PIN_SECONDS))


@dataclass
class _RequestRoute:
    """What one request decided: the replica it reads from (None: the primary), and whether it wrote."""

    replica: str | None = None
    decided: bool = False
    wrote: bool = False


def _pin_key(scope: MutableMapping[str, Any]) -> str | None:
    caller = caller_of(scope)
    if caller.user_id is None and caller.tenant_id is None:
        return None
    # Hashed: tenant and user ids come from tokens and may hold anything a cache key may not.
    identity = f"{caller.tenant_id}\x00{caller.user_id}".encode()
    return "djfapi:replica-pin:" + hashlib.sha256(identity).hexdigest()


def _cache() -> Any:
    return caches[str(setting("REPLICA_PIN_CACHE", "default"))]


def pin(scope: MutableMapping[str, Any]) -> None:
    """Keep the reads of this request's caller on the primary for ``REPLICA_PIN_SECONDS`` from now."""
    key = _pin_key(scope)
    if key is not None:
        _cache().set(key, 1, timeout=pin_seconds())


def is_pinned(scope: MutableMapping[str, Any]) -> bool:
    """Whether this request's caller wrote within the pin window."""
    key = _pin_key(scope)
    return key is not None and _cache().get(key) is not None


def _route(scope: MutableMapping[str, Any]) -> _RequestRoute:
    state = scope.setdefault("state", {})
    route = state.get(STATE_KEY)
    if route is None:
        route = state[STATE_KEY] = _RequestRoute()
    return route


class ReplicaRouter:
    """Generated reads to a replica unless they must see the newest data; everything else to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        scope = current_request()
        names = replicas()
        if scope is None or not names or scope.get("method") not in SAFE_METHODS:
            return primary()
        if connections[primary()].in_atomic_block:
            return primary()
        route = _route(scope)
        if not route.decided:
            # Decided once the caller is known (the security dependency may read users
            # before that): the same replica, or the primary, for the rest of the request.
            if caller_of(scope).user_id is not None or caller_of(scope).tenant_id is not None:
                route.decided = True
            route.replica = None if is_pinned(scope) else random.choice(names)
        return route.replica or primary()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        scope = current_request()
        if scope is not None and replicas():
            _route(scope).wrote = True
            pin(scope)
        return primary()

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        known = {primary(), *replicas()}
        if obj1._state.db in known and obj2._state.db in known:
            return True  # the same data, wherever it was read from
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        return False if db in replicas() else None


def _pin_after_write(**kwargs: Any) -> None:
    """At the end of a request that wrote, start the caller's pin window again, from its commit."""
    scope = current_request()
    if scope is None:
        return
    route = scope.get("state", {}).get(STATE_KEY)
    if route is not None and route.wrote:
        pin(scope)


request_finished.connect(_pin_after_write, dispatch_uid="djfapi.replicas.pin_after_write")

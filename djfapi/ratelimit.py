"""Rate limits per node and method, counted by the ``limits`` library.

A node declares them by ``SecurityScopes`` entry (``"*"``: every route of the node)::

    DjangoRouterSchema(..., rate_limits={"get": "100/minute", "post": RateLimit("10/minute", key="tenant")})

``get`` covers ``list`` and ``aggregate`` too, and ``patch`` covers ``put``, unless they
have their own entry: one declaration is one budget, shared by the routes it covers.
Limits are not inherited by children. A limit is counted per **key**:

* ``"subject"`` (default): the token's ``sub``; the client address for anonymous callers;
* ``"tenant"``: the token's ``ten``; else its ``sub``; else the client address;
* ``"address"``: the client address (``request.client.host``: behind a proxy, run
  uvicorn with ``--proxy-headers --forwarded-allow-ips=...`` so that it is the caller's);
* a function ``key(request, token) -> str`` (``token`` is ``None`` for anonymous callers).

The counters live in ``DJFAPI["RATE_LIMIT_STORAGE"]``: ``"redis://host:6379/0"`` shares
them between every process and host (the ``[redis]`` extra, through ``redis.asyncio``;
other ``async+...`` URIs of ``limits`` work too), and the default ``"memory://"`` keeps
them in the process, which is right for one worker only: with N workers each one counts
on its own, so a client may get up to N times the limit. ``DJFAPI["RATE_LIMIT_STRATEGY"]``
picks the algorithm: ``"sliding-window-counter"`` (default), ``"fixed-window"`` or
``"moving-window"``. ``DJFAPI["RATE_LIMITS_ENABLED"] = False`` turns every limit off.

A request over a limit is a 429 ``rate_limited`` with ``Retry-After`` (seconds), once
its token and input are checked and before its handler takes a thread or a query.
Every limited response carries the IETF
``RateLimit-Policy`` (``"<name>";q=<quota>;w=<window seconds>``) and ``RateLimit``
(``"<name>";r=<remaining>;t=<seconds to reset>``) headers (draft-ietf-httpapi-ratelimit-headers).
When the shared store does not answer, requests are let through and a warning is logged
(``DJFAPI["RATE_LIMIT_FAIL_OPEN"]``, default ``True``; ``False`` answers 503 instead).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from starlette.requests import HTTPConnection

from djfapi.conf import setting
from djfapi.errors import APIError, ServiceUnavailable
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.schemas.access import AccessToken
from djfapi.schemas.errors import Error

__all__ = ["RateLimit", "TooManyRequests", "limiter", "rate_limit_headers"]

logger = logging.getLogger("djfapi.ratelimit")

KeyFunction = Callable[[HTTPConnection, AccessToken | None], str]
KEYS = ("subject", "tenant", "address")
ENTRIES = ("get", "list", "aggregate", "post", "patch", "put", "delete")
_COVERED_BY = {"list": "get", "aggregate": "get", "put": "patch"}
STRATEGIES = ("sliding-window-counter", "fixed-window", "moving-window")


class TooManyRequests(APIError):
    """429: over a rate limit; ``Retry-After`` says when to come back."""

    status_code = 429
    error_type = "too_many_requests"
    default_code = "rate_limited"
    default_message = "Too many requests."


@dataclass(frozen=True)
class RateLimit:
    """``limit`` as ``limits`` parses it (``"100/minute"``, ``"10 per second"``, ``"5/15 minutes"``), per ``key``."""

    limit: str
    key: str | KeyFunction = "subject"
    #: The policy's name in the RateLimit headers and its counters; default: derived from the route.
    name: str | None = None
    item: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from limits import parse

        try:
            object.__setattr__(self, "item", parse(self.limit))
        except ValueError:
            raise SchemaDefinitionError(
                f"rate limit {self.limit!r} is not a limit such as '100/minute' or '10 per second'"
            ) from None
        if isinstance(self.key, str) and self.key not in KEYS:
            raise SchemaDefinitionError(
                f"rate limit {self.limit!r}: key={self.key!r}; choose from {', '.join(KEYS)} or pass a function "
                f"key(request, token) -> str"
            )

    @property
    def quota(self) -> int:
        return int(self.item.amount)

    @property
    def window(self) -> int:
        return int(self.item.get_expiry())

    @property
    def key_name(self) -> str:
        return self.key if isinstance(self.key, str) else getattr(self.key, "__name__", "custom")

    def key_value(self, request: HTTPConnection, token: AccessToken | None) -> str:
        if not isinstance(self.key, str):
            return "f:" + str(self.key(request, token))
        if token is not None:
            if self.key == "tenant" and token.ten is not None:
                return "t:" + token.ten
            if self.key in ("tenant", "subject"):
                return "s:" + token.sub
        client = request.client
        return "a:" + (client.host if client is not None else "unknown")

    def describe(self) -> str:
        per = {"subject": "token subject", "tenant": "tenant", "address": "client address"}.get(
            self.key_name, self.key_name
        )
        return f"{self.item.amount} per {self.window} s per {per}"


def coerce(value: RateLimit | str | Sequence[RateLimit | str], where: str) -> tuple[RateLimit, ...]:
    if isinstance(value, RateLimit | str):
        items: Iterable[Any] = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise SchemaDefinitionError(f"{where}: expected '100/minute', RateLimit(...) or a list of them, got {value!r}")
    result = []
    for item in items:
        if isinstance(item, str):
            item = RateLimit(item)
        if not isinstance(item, RateLimit):
            raise SchemaDefinitionError(f"{where}: expected '100/minute' or RateLimit(...), got {item!r}")
        result.append(item)
    return tuple(result)


def resolve_declarations(name: str, value: Mapping[str, Any] | None) -> dict[str, tuple[RateLimit, ...]]:
    """``rate_limits=`` of a node, checked: entry -> its limits."""
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise SchemaDefinitionError(
            f"router schema {name!r}: rate_limits must map SecurityScopes entries (or '*') to limits, got {value!r}"
        )
    declared: dict[str, tuple[RateLimit, ...]] = {}
    for entry, limits in value.items():
        if entry != "*" and entry not in ENTRIES:
            raise SchemaDefinitionError(
                f"router schema {name!r}: rate_limits key {entry!r} is not a SecurityScopes entry; choose from "
                f"'*', {', '.join(ENTRIES)}"
            )
        declared[entry] = coerce(limits, f"router schema {name!r}: rate_limits[{entry!r}]")
    return declared


@dataclass(frozen=True)
class Policy:
    """One limit applied to a route: its counter's name and the limit."""

    name: str
    limit: RateLimit


@dataclass(frozen=True)
class RouteLimits:
    """The policies of one route, checked by ``limiter.check``."""

    policies: tuple[Policy, ...]

    def openapi(self) -> dict[str, Any]:
        """The 429 response and the ``x-rate-limits`` extension for the route's operation."""
        described = "; ".join(f"`{p.name}`: {p.limit.describe()}" for p in self.policies)
        header = {"schema": {"type": "string"}}
        return {
            "responses": {
                429: {
                    "model": Error,
                    "description": f"Over a rate limit ({described}); retry after `Retry-After` seconds.",
                    "headers": {
                        "Retry-After": {**header, "description": "Seconds until the limit allows the request"},
                        "RateLimit": {**header, "description": "Remaining quota and seconds to reset, per policy"},
                        "RateLimit-Policy": {**header, "description": "Quota and window (seconds) of each policy"},
                    },
                }
            },
            "x-rate-limits": [
                {
                    "name": p.name,
                    "limit": p.limit.limit,
                    "quota": p.limit.quota,
                    "window": p.limit.window,
                    "key": p.limit.key_name,
                }
                for p in self.policies
            ],
        }

    @property
    def description(self) -> str:
        return "Rate limited: " + "; ".join(p.limit.describe() for p in self.policies) + "."


def route_limits(declared: Mapping[str, tuple[RateLimit, ...]], entry: str, prefix: str) -> RouteLimits | None:
    """The policies a route guarded by ``entry`` is counted against."""
    policies: list[Policy] = []
    own = entry if entry in declared else _COVERED_BY.get(entry)
    if own is not None and own in declared:
        policies += [Policy(limit.name or f"{prefix}.{own}", limit) for limit in declared[own]]
    policies += [Policy(limit.name or f"{prefix}.all", limit) for limit in declared.get("*", ())]
    named: dict[str, int] = {}
    unique = []
    for policy in policies:  # two limits of one entry ("10/second", "1000/hour") need two names
        count = named.get(policy.name, 0)
        named[policy.name] = count + 1
        unique.append(policy if count == 0 else Policy(f"{policy.name}.{count}", policy.limit))
    return RouteLimits(tuple(unique)) if unique else None


def rate_limit_headers(states: Sequence[tuple[Policy, int, float]]) -> dict[str, str]:
    """``RateLimit-Policy`` and ``RateLimit`` for ``(policy, remaining, reset epoch)`` states."""
    now = time.time()
    policy = ", ".join(f'"{p.name}";q={p.limit.quota};w={p.limit.window}' for p, _, _ in states)
    current = ", ".join(f'"{p.name}";r={max(r, 0)};t={max(math.ceil(reset - now), 0)}' for p, r, reset in states)
    return {"RateLimit-Policy": policy, "RateLimit": current}


class Limiter:
    """The counters of this process: storage and strategy from the settings, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[Any, bool] | None = None  # (strategy, is_async)
        # An asyncio Redis client belongs to the event loop that made it: one strategy per loop.
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def reset(self) -> None:
        with self._lock:
            self._state = None
            self._per_loop = weakref.WeakKeyDictionary()

    def enabled(self) -> bool:
        return bool(setting("RATE_LIMITS_ENABLED", True))

    def _resolve(self) -> tuple[Any, bool]:
        state = self._state
        if state is not None:
            return state
        with self._lock:
            if self._state is None:
                self._state = _make_strategy(
                    str(setting("RATE_LIMIT_STORAGE", "memory://")),
                    str(setting("RATE_LIMIT_STRATEGY", "sliding-window-counter")),
                )
            return self._state

    def check_configuration(self) -> None:
        self.reset()
        self._resolve()

    def _strategy(self) -> tuple[Any, bool]:
        strategy, is_async = self._resolve()
        if not is_async:
            return strategy, False
        loop = asyncio.get_running_loop()
        own = self._per_loop.get(loop)
        if own is None:
            own = self._per_loop[loop] = _make_strategy(
                str(setting("RATE_LIMIT_STORAGE", "memory://")),
                str(setting("RATE_LIMIT_STRATEGY", "sliding-window-counter")),
            )[0]
        return own, True

    async def check(
        self,
        limits: RouteLimits,
        request: HTTPConnection,
        token: AccessToken | None,
        *,
        keys: Mapping[str, str | None] | None = None,
    ) -> dict[str, str]:
        """Count this request against every policy; the headers to send, or TooManyRequests (429).

        ``keys`` gives some policies (by name) the key to count against, instead of their own.
        """
        strategy, is_async = self._strategy()
        states: list[tuple[Policy, int, float]] = []
        refused: Policy | None = None
        try:
            for policy in limits.policies:
                item = policy.limit.item
                key = keys.get(policy.name) if keys else None
                identifiers = (policy.name, key or policy.limit.key_value(request, token))
                if is_async:
                    allowed = await strategy.hit(item, *identifiers)
                    stats = await strategy.get_window_stats(item, *identifiers)
                else:
                    allowed = strategy.hit(item, *identifiers)
                    stats = strategy.get_window_stats(item, *identifiers)
                states.append((policy, stats.remaining, stats.reset_time))
                if not allowed and refused is None:
                    refused = policy
        except Exception as error:
            if isinstance(error, TooManyRequests):
                raise
            if not setting("RATE_LIMIT_FAIL_OPEN", True):
                raise ServiceUnavailable(
                    "The rate limit store is not answering.", code="rate_limit_store_unavailable"
                ) from error
            logger.warning("djfapi.ratelimit: the rate limit store failed (%s); letting the request through", error)
            return {}
        headers = rate_limit_headers(states)
        if refused is not None:
            from djfapi.ops.metrics import rate_limited

            rate_limited(refused.name)
            reset = max(reset for policy, remaining, reset in states if remaining <= 0 or policy is refused)
            headers["Retry-After"] = str(max(math.ceil(reset - time.time()), 1))
            raise TooManyRequests(
                f"Too many requests: the limit {refused.limit.limit} ({refused.name}) is reached; retry after "
                f"{headers['Retry-After']} s.",
                detail={"policy": refused.name, "limit": refused.limit.limit},
                headers=headers,
            )
        return headers


def _make_strategy(uri: str, name: str) -> tuple[Any, bool]:
    if name not in STRATEGIES:
        raise ImproperlyConfigured(f"DJFAPI['RATE_LIMIT_STRATEGY'] = {name!r}; choose from {', '.join(STRATEGIES)}")
    scheme = uri.partition("://")[0]
    if scheme == "memory":
        from limits import storage, strategies

        sync_classes = {
            "sliding-window-counter": strategies.SlidingWindowCounterRateLimiter,
            "fixed-window": strategies.FixedWindowRateLimiter,
            "moving-window": strategies.MovingWindowRateLimiter,
        }
        return sync_classes[name](storage.MemoryStorage()), False  # type: ignore[abstract]
    from limits.aio import storage as aio_storage
    from limits.aio import strategies as aio_strategies

    if scheme in ("redis", "rediss", "redis+unix"):
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:
            raise ImproperlyConfigured("DJFAPI['RATE_LIMIT_STORAGE'] on Redis needs the [redis] extra") from None
        made: Any = aio_storage.RedisStorage(
            "async+" + uri, implementation="redispy", socket_timeout=1, socket_connect_timeout=1
        )
    elif scheme.startswith("async+"):
        from limits.storage import storage_from_string

        made = storage_from_string(uri)
    else:
        raise ImproperlyConfigured(
            f"DJFAPI['RATE_LIMIT_STORAGE'] = {uri!r}: use 'memory://' (one process) or 'redis://host:6379/0' (shared)"
        )
    async_classes = {
        "sliding-window-counter": aio_strategies.SlidingWindowCounterRateLimiter,
        "fixed-window": aio_strategies.FixedWindowRateLimiter,
        "moving-window": aio_strategies.MovingWindowRateLimiter,
    }
    return async_classes[name](made), True  # type: ignore[abstract]


#: The process's limiter.
limiter = Limiter()


def _forget(setting: str, **_: Any) -> None:
    if setting == "DJFAPI":
        limiter.reset()


setting_changed.connect(_forget)

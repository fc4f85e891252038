"""Per-request SQL statement counts and peak memory, reported in response headers.

Only for the untimed pass: ``benchmarks.serve`` wraps a contender in ``Instrumented``
when ``BENCH_COUNT_QUERIES`` (and/or ``BENCH_TRACE_MEMORY``) is set, so timed servers
carry none of this. Queries are counted with a ``connection.execute_wrapper``
installed on every connection as it is created; the request's counter travels in a
context variable, which both FastAPI's thread pool and Django's ``sync_to_async`` copy
into the thread that runs the ORM. Transaction control (``BEGIN``, savepoints) is
counted apart from data queries. Memory is tracemalloc's peak above what was allocated
when the request arrived, after a full garbage collection so that earlier requests'
garbage neither counts nor gets freed during this one; requests must then be made one
at a time.

A contender that is not an ASGI app (django-bolt) counts with ``install`` and
``counted`` around its database work and sets ``statement_headers`` itself; its
memory is not measured.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db.backends.signals import connection_created

from benchmarks.config import MEMORY_HEADER, QUERIES_HEADER, TX_HEADER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
R = TypeVar("R")
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

_counts: ContextVar[list[int] | None] = ContextVar("bench_query_counts", default=None)
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    counts = _counts.get()
    if counts is not None:
        counts[1 if sql.lstrip()[:9].upper().startswith(_TRANSACTION_CONTROL) else 0] += 1
    return execute(sql, params, many, context)


def _install(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def install() -> None:
    """Count the statements of every database connection this process opens from now on."""
    connection_created.connect(_install, weak=False, dispatch_uid="benchmarks.instrument")


def counted(func: Callable[..., R], *args: Any) -> tuple[R, list[int]]:
    """``func(*args)`` and the statements it ran in this thread: ``[data queries, transaction control]``."""
    counts = [0, 0]
    token = _counts.set(counts)
    try:
        return func(*args), counts
    finally:
        _counts.reset(token)


def statement_headers(counts: list[int]) -> dict[str, str]:
    return {QUERIES_HEADER: str(counts[0]), TX_HEADER: str(counts[1])}


class Instrumented:
    """ASGI middleware adding the query counts and the memory peak to every response."""

    def __init__(self, app: ASGIApp, *, count_queries: bool, trace_memory: bool) -> None:
        self.app = app
        self.count_queries = count_queries
        self.trace_memory = trace_memory
        if count_queries:
            install()
        if trace_memory and not tracemalloc.is_tracing():
            tracemalloc.start()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counts = [0, 0]
        token = _counts.set(counts)
        before = 0
        if self.trace_memory:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()

        async def reporting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if self.count_queries:
                    headers.append((QUERIES_HEADER.encode(), str(counts[0]).encode()))
                    headers.append((TX_HEADER.encode(), str(counts[1]).encode()))
                if self.trace_memory:
                    peak = tracemalloc.get_traced_memory()[1] - before
                    headers.append((MEMORY_HEADER.encode(), str(peak).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, reporting_send)
        finally:
            _counts.reset(token)

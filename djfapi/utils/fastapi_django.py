"""Django's request signals for code that FastAPI runs.

Django closes stale database connections when it sees ``request_started`` and
``request_finished``; FastAPI sends neither, so a sync endpoint running in the thread
pool leaves its connection open — for good when ``CONN_MAX_AGE=0`` expected it to be
closed. ``request_signalling`` sends both signals around one call, in the thread that
runs it, also when the call raises.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from django.core.signals import request_finished, request_started

from djfapi.conf import setting

P = ParamSpec("P")
R = TypeVar("R")


def request_signalling(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap a sync callable so that it runs between Django's request signals.

    Use it on sync FastAPI endpoints (and anything else run in a worker thread) that
    touch the ORM. Async callables are refused: their ORM work would run in other
    threads than the signals.
    """
    if (
        inspect.iscoroutinefunction(func)
        or inspect.isasyncgenfunction(func)
        or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - an object with an async __call__
        )
    ):
        raise TypeError(
            f"request_signalling wraps sync callables only, and {getattr(func, '__qualname__', func)!r} is async. "
            f"Make it a plain 'def' (FastAPI runs it in a worker thread) or call sync_to_async/run_in_threadpool "
            f"on a sync function wrapped with request_signalling."
        )

    @functools.wraps(func)
    def signalled(*args: P.args, **kwargs: P.kwargs) -> R:
        global _running
        with _running_lock:
            _running += 1
        request_started.send(sender=signalled)
        try:
            return func(*args, **kwargs)
        finally:
            request_finished.send(sender=signalled)
            with _running_lock:
                _running -= 1

    return signalled


_running = 0
_running_lock = threading.Lock()


def signalled_calls() -> int:
    """Signalled calls running now in this process (each holds at most one connection per database)."""
    return _running


DEFAULT_THREADPOOL_SIZE = 40
_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def threadpool_size() -> int:
    """``DJFAPI["THREADPOOL_SIZE"]``: how many generated endpoints of one process run at once.

    Each running endpoint holds at most one database connection, so a process never
    opens more than this many connections per database (workers x this in all).
    """
    return int(setting("THREADPOOL_SIZE", DEFAULT_THREADPOOL_SIZE))


def worker_threads(name: str = "djfapi", size: int | None = None) -> ThreadPoolExecutor:
    """A process-wide pool of long-lived worker threads (one per name and size).

    Its threads never retire: a persistent connection (``CONN_MAX_AGE > 0``) belongs to
    the thread that opened it, and a thread that exits without closing it leaves it open
    until the garbage collector notices — beyond the bound of one per thread. anyio's
    own pool retires threads that sat idle for ten seconds; this one does not.
    """
    size = size if size is not None else threadpool_size()
    with _pools_lock:
        pool = _pools.get((name, size))
        if pool is None:
            pool = _pools[(name, size)] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        return pool


async def run_signalled(func: Callable[..., R], /, *, pool: ThreadPoolExecutor | None = None, **kwargs: Any) -> R:
    """Run an already ``request_signalling``-wrapped callable in djfapi's thread pool.

    At most ``THREADPOOL_SIZE`` calls run at once; more wait for a thread. The call runs
    in a copy of the caller's context (as ``run_in_threadpool`` does), so context
    variables such as Sentry's scope reach it. A cancelled request (the client went
    away) does not abandon a call that has started: it finishes, ``request_finished`` is
    sent and its connection handled as usual; one that has not started never runs.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, **kwargs)
    return await loop.run_in_executor(pool or worker_threads(), call)

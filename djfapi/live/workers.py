"""The feed's own worker threads, so that its database work never takes a thread a request needs.

The generated endpoints run in djfapi's pool of ``THREADPOOL_SIZE`` threads; if the feed
ran its reads and evaluations there, a busy feed would make writes wait for a thread.
It has a pool of its own instead, of ``DJFAPI["LIVE_THREADS"]`` threads (default 2),
which also bounds how much of the process's CPU and how many database connections
(one per thread with persistent connections) the feed can take at once. The hub's
reads of the outbox, the evaluations of events and pruning run here; opening a stream
(checking the token and the path) is a request like any other and runs in the
endpoints' pool.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from djfapi.conf import setting
from djfapi.utils.fastapi_django import run_signalled, worker_threads

R = TypeVar("R")

DEFAULT_THREADS = 2


def threads() -> int:
    """``DJFAPI["LIVE_THREADS"]``: worker threads of the feed per process (default 2)."""
    return max(int(setting("LIVE_THREADS", DEFAULT_THREADS)), 1)


def pool() -> ThreadPoolExecutor:
    return worker_threads("djfapi-live", threads())


async def run_in_feed(func: Callable[..., R], /, **kwargs: Any) -> R:
    """Run a ``request_signalling``-wrapped callable in the feed's pool (see ``run_signalled``)."""
    return await run_signalled(func, pool=pool(), **kwargs)

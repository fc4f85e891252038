"""The server of the feed benchmarks: ``uvicorn benchmarks.live.app:app``.

The demo app (``testproject.app.create_app``), plus the time each outbox event's
transaction committed: djfapi wakes the process's feed right after a commit, from the
committing thread (``djfapi.live.wakeups``); a waker of our own registered next to the
hub's notes ``time.monotonic()`` per event id at that moment. ``GET
/bench/live/events?after=N`` hands the outbox rows with those times to the benchmark,
whose subscribers stamp arrivals with the same (machine-wide) monotonic clock, so
latency is measured from the commit rather than from a response the writer reads
later.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Query

from testproject.app import create_app

app = create_app()

from djfapi.live import wakeups  # noqa: E402  (needs Django set up by create_app)
from djfapi.live.models import ChangeEvent  # noqa: E402
from djfapi.utils.fastapi_django import request_signalling, run_signalled  # noqa: E402

_commits: dict[int, float] = {}


def _note_commit(event_id: int | None) -> None:
    if event_id is not None:
        _commits.setdefault(event_id, time.monotonic())


wakeups.add_local(_note_commit)


@request_signalling
def _events(after: int) -> list[list[Any]]:
    rows = ChangeEvent.objects.filter(id__gt=after).order_by("id").values_list("id", "action", "object_id", "tenant_id")
    return [[*row, _commits.get(row[0])] for row in rows]


async def events(after: int = Query(0, ge=0)) -> list[list[Any]]:
    """The outbox after ``after``: ``[id, action, object_id, tenant_id, committed]`` per event."""
    return await run_signalled(_events, after=after)


app.add_api_route("/bench/live/events", events, methods=["GET"], include_in_schema=False)


def _log_collections() -> None:
    """``BENCH_GC_LOG=1``: log every full garbage collection that takes over 10 ms (to tell its pauses)."""
    import gc
    import logging
    import os

    if not os.environ.get("BENCH_GC_LOG"):
        return
    log = logging.getLogger("djfapi.live")
    started: dict[str, float] = {}

    def timing(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started["at"] = time.perf_counter()
        elif (spent := time.perf_counter() - started.get("at", time.perf_counter())) > 0.01:
            log.warning(
                "bench: gc generation %s took %.0f ms (%s collected)",
                info["generation"],
                spent * 1000,
                info["collected"],
            )

    gc.callbacks.append(timing)


_log_collections()


async def collections() -> dict[str, Any]:
    """Objects the garbage collector tracks, by generation and the most common types of the oldest."""
    import collections as counting
    import gc

    oldest = gc.get_objects(2)
    kinds = counting.Counter(type(item).__qualname__ for item in oldest)
    return {
        "threshold": gc.get_threshold(),
        "count": gc.get_count(),
        "stats": gc.get_stats(),
        "sizes": [len(gc.get_objects(generation)) for generation in range(3)],
        "oldest": kinds.most_common(40),
    }


app.add_api_route("/bench/live/gc", collections, methods=["GET"], include_in_schema=False)


def _freeze() -> None:
    """``BENCH_GC_FREEZE=1``: ``gc.freeze()`` once the app is loaded (the collector's thresholds are the
    demo's ``DJFAPI["GC_THRESHOLD"]``: ``DJFAPI_GC_THRESHOLD=N`` or ``=default`` changes them)."""
    import gc
    import os

    if os.environ.get("BENCH_GC_FREEZE"):
        gc.collect()
        gc.freeze()


_freeze()

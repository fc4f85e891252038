"""The garbage collector's thresholds for a serving process: ``DJFAPI["GC_THRESHOLD"]``.

CPython's cyclic collector runs a young collection every 700 net allocations of
container objects (its default threshold). A request in flight, a stream waiting for
its next event, a query being built in a worker thread: whatever is alive at that
moment survives and, after the second young collection, lands in the oldest
generation. Once the oldest generation has grown by a quarter, it is collected as a
whole, and that pause stops every request and stream of the process — with 1,000 open
change-feed streams about 170 ms on the benchmark machine, every few seconds. A larger
young threshold lets the short-lived objects die before anyone looks at them, so the
oldest generation grows, and is collected, far more rarely; nothing else changes
(reference counting frees everything that is not a cycle either way).

djfapi does not touch the interpreter unless told to: a process-wide setting is the
project's to choose. ``create_app`` applies it, once per process; an app built by hand
calls ``apply_gc_threshold()`` at start-up. The system check ``djfapi.E003`` refuses a
value that would turn automatic collection off or is not a threshold at all.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from djfapi.conf import setting

logger = logging.getLogger("djfapi")

SETTING = "GC_THRESHOLD"


def configured_threshold() -> tuple[int, ...] | None:
    """The thresholds ``DJFAPI["GC_THRESHOLD"]`` asks for (None: leave the interpreter's).

    An integer sets the young generation's threshold and keeps the older two; a list of
    one to three integers is passed to ``gc.set_threshold`` as it is.
    """
    value = setting(SETTING)
    if value is None:
        return None
    problem = threshold_problem(value)
    if problem is not None:
        raise ValueError(f'DJFAPI["{SETTING}"] {problem}')
    if isinstance(value, int):
        return (value, *gc.get_threshold()[1:])
    return tuple(value)


def threshold_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable ``GC_THRESHOLD`` (None when it is)."""
    numbers = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(numbers, list | tuple) or not 1 <= len(numbers) <= 3:
        return f"must be an integer or a list of one to three integers, not {value!r}"
    if any(isinstance(number, bool) or not isinstance(number, int) for number in numbers):
        return f"must hold integers only, not {value!r}"
    if numbers[0] < 1:
        return "must not be 0 or less: that turns automatic collection off, and reference cycles would never be freed"
    if any(number < 1 for number in numbers[1:]):
        return f"must hold positive integers only, not {value!r}"
    return None


def apply_gc_threshold() -> tuple[int, ...]:
    """Set the thresholds ``DJFAPI["GC_THRESHOLD"]`` asks for, if any; the thresholds now in effect."""
    wanted = configured_threshold()
    if wanted is not None and wanted != gc.get_threshold()[: len(wanted)]:
        gc.set_threshold(*wanted)
        logger.info("djfapi: garbage collector thresholds set to %s (DJFAPI[%r])", gc.get_threshold(), SETTING)
    return gc.get_threshold()

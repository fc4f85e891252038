"""How a stream waits for its group (``fanout.Group.waiter``): one bare future per wait and one
timer per group, however many streams wait — a wait that allocates more brings the
collector's full pauses sooner (``djfapi.ops.collector``). Each stream still wakes at its
own timeout (its keep-alive), at the group's next event, and never after being cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from djfapi.live.fanout import Group
from testproject.api import companies


def group() -> Group:
    return Group(companies, ("test", 1), None, {}, through=0)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_a_wait_is_refused_when_the_group_moved_on_or_the_time_is_up() -> None:
    async def scenario() -> None:
        waits = group()
        version = waits.version
        waits.wake()
        assert waits.waiter(version, 1.0) is None  # it woke since: read, do not wait
        assert waits.waiter(waits.version, 0.0) is None
        assert waits.waiter(waits.version, -1.0) is None
        assert waits.waiter(waits.version, 1.0) is not None

    run(scenario)


def test_many_waiting_streams_share_one_timer() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        waits = group()
        scheduled = len(loop._scheduled)  # type: ignore[attr-defined]  # asyncio's timer heap
        futures = [waits.waiter(waits.version, 10.0 + index / 100) for index in range(500)]
        assert all(future is not None for future in futures)
        assert len(loop._scheduled) == scheduled + 1  # type: ignore[attr-defined]
        earliest = waits.waiter(waits.version, 5.0)  # an earlier timeout moves the one timer
        assert len([handle for handle in loop._scheduled if not handle.cancelled()]) == scheduled + 1  # type: ignore[attr-defined]
        waits.wake()
        assert all(future is not None and future.done() for future in [*futures, earliest])
        assert not [handle for handle in loop._scheduled if not handle.cancelled()][scheduled:]  # type: ignore[attr-defined]

    run(scenario)


def test_each_stream_wakes_at_its_own_timeout_not_the_others() -> None:
    async def stream(waits: Group, timeout: float) -> float:
        loop = asyncio.get_running_loop()
        started, deadline = loop.time(), loop.time() + timeout
        version = waits.version
        while (left := deadline - loop.time()) > 0:
            waiter = waits.waiter(version, left)
            if waiter is None:
                break
            try:
                await waiter
            finally:
                waits.forget(waiter)
        return loop.time() - started

    async def scenario() -> None:
        waits = group()
        early, late = await asyncio.gather(stream(waits, 0.05), stream(waits, 0.3))
        assert 0.05 <= early < 0.25
        assert 0.3 <= late < 0.6

    run(scenario)


def test_an_event_wakes_every_waiting_stream_at_once() -> None:
    async def scenario() -> None:
        waits = group()
        futures = [waits.waiter(waits.version, 30.0) for _ in range(3)]
        asyncio.get_running_loop().call_later(0.02, waits.wake)
        done, pending = await asyncio.wait([f for f in futures if f is not None], timeout=1.0)
        assert len(done) == 3 and not pending

    run(scenario)


def test_a_cancelled_stream_is_forgotten_and_takes_its_timer_with_it() -> None:
    async def waiting(waits: Group) -> None:
        waiter = waits.waiter(waits.version, 30.0)
        assert waiter is not None
        try:
            await waiter
        finally:
            waits.forget(waiter)

    async def scenario() -> None:
        waits = group()
        task = asyncio.create_task(waiting(waits))
        await asyncio.sleep(0.01)
        assert waits._alarm is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not waits._waiters and waits._alarm is None
        waits.wake()  # nothing left to release, and nothing raised

    run(scenario)

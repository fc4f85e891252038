"""What every feed benchmark does around its phases: the client's loop lag, waiting for
deliveries, the server log's problems, tokens, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.live.database import SETTINGS_MODULE
from benchmarks.live.sse import Subscriber

DUPLICATE_GRACE = 1.0  # seconds to keep listening once everything arrived
EVENTS_PATH = "/bench/live/events"  # served by benchmarks.live.app
BUSY_MACHINE = 0.25  # share of the CPUs other processes may use before the report warns


async def monitor_lag(samples: list[float], interval: float = 0.01) -> None:
    """Event-loop lag of this (client) process: how late a 10 ms sleep wakes up."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(interval)
        samples.append(time.monotonic() - before - interval)


async def wait_delivered(
    subscribers: Sequence[Subscriber], expected: Callable[[Subscriber], int], deadline: float
) -> None:
    """Until every subscriber has its ``expected`` changes (or failed), then ``DUPLICATE_GRACE``.

    At most ``deadline`` seconds.
    """
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if all(s.changes >= expected(s) or s.failed for s in subscribers):
            await asyncio.sleep(DUPLICATE_GRACE)
            return
        await asyncio.sleep(0.01)


def log_problems(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(r"error|warning|traceback|exception", line, re.I)][:50]


def setup_django() -> None:
    """Django with the demo's settings in this process (to mint tokens with the server's key)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    import django

    django.setup()


def mint(tenant: str, user: str, scopes: Iterable[str], expires: int = 4 * 3600) -> str:
    setup_django()
    from testproject.tokens import mint_token

    return mint_token(tenant=tenant, user=user, scopes=tuple(scopes), expires=expires)


def busy_warning(other_cores: float, nproc: int | None) -> list[str]:
    if other_cores > BUSY_MACHINE * (nproc or 1):
        return [
            f"  ! other processes kept {other_cores:.2f} of {nproc} CPUs busy: these figures measure a shared machine"
        ]
    return []


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: server stopped, database dropped


def stop_cleanly_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _terminate)


@dataclass(frozen=True)
class OutboxEvent:
    """An outbox row as ``benchmarks.live.app`` reports it, with the time its transaction committed."""

    id: int
    action: str
    object_id: str
    tenant_id: str | None
    committed: float | None  # time.monotonic() in the server, just after COMMIT


async def fetch_events(base_url: str, after: int = 0) -> list[OutboxEvent]:
    """The outbox after ``after`` with commit times, from the instrumented server."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:
        response = await client.get(EVENTS_PATH, params={"after": after})
        response.raise_for_status()
        return [OutboxEvent(*row) for row in response.json()]

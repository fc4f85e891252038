"""The writers: API writes sent on a fixed schedule, open loop.

Each write goes out at its time whether or not the earlier ones were answered (up to
``WRITER_CONNECTIONS`` in flight), so a slow server does not lower the offered rate.
Each write's send time and the time its response came back are recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

WRITER_CONNECTIONS = 16  # writes in flight at most


@dataclass(frozen=True)
class WriteSpec:
    """One write to send: ``method path`` with a JSON body, as the holder of ``token``."""

    method: str
    path: str
    body: dict[str, Any]
    token: str
    tag: Any = None  # what the benchmark needs to know about it (tenant, owner ...)


@dataclass(frozen=True)
class Write:
    index: int
    spec: WriteSpec
    status: int | None
    object_id: str | None  # the written object's id, from the response
    sent: float
    done: float

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)

    @property
    def roundtrip(self) -> float:
        return self.done - self.sent


async def write_schedule(base_url: str, specs: Sequence[WriteSpec], rate: float) -> list[Write]:
    """``specs`` at ``rate`` per second on a fixed schedule, open loop."""
    limits = httpx.Limits(max_connections=WRITER_CONNECTIONS, max_keepalive_connections=WRITER_CONNECTIONS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        start = time.monotonic()
        tasks: list[asyncio.Task[Write]] = []
        for index, spec in enumerate(specs):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_write_one(client, index, spec)))
        return list(await asyncio.gather(*tasks))


async def _write_one(client: httpx.AsyncClient, index: int, spec: WriteSpec) -> Write:
    sent = time.monotonic()
    headers = {"Authorization": f"Bearer {spec.token}"}
    try:
        response = await client.request(spec.method, spec.path, json=spec.body, headers=headers)
    except httpx.HTTPError:
        return Write(index, spec, None, None, sent, time.monotonic())
    done = time.monotonic()
    object_id = response.json().get("id") if response.status_code in (200, 201) else None
    return Write(index, spec, response.status_code, object_id, sent, done)

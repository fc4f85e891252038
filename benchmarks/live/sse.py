"""The subscribers' side: one SSE stream per TCP connection, on plain asyncio sockets.

A thousand streams are read by one Python process on the same two CPUs as the server,
so the client's own cost must stay small: no HTTP library on the hot path. A
subscriber sends one ``GET`` and then only appends what arrives, stamps each read
with ``time.monotonic()`` and counts the change-event markers (to know when it has
everything); the HTTP chunked framing and the SSE frames are taken apart only after
the phase, each frame stamped with the read that completed it. ``CLOCK_MONOTONIC`` is
one clock for every process of a Linux machine, so these stamps compare with the
server's commit times (``benchmarks.live.app``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from dataclasses import dataclass, field

CHANGE_MARKS = (b"event: INSERT\n", b"event: UPDATE\n", b"event: DELETE\n")
READY_MARK = b"event: ready\n"
READ_SIZE = 65536


@dataclass(frozen=True)
class Frame:
    event: str | None
    id: int | None
    data: str
    arrived: float


@dataclass
class Subscriber:
    """One SSE subscription: raw bytes and read times while running, frames afterwards."""

    index: int
    token: str
    path: str
    body: bytearray = field(default_factory=bytearray)
    stamps: list[tuple[float, int]] = field(default_factory=list)  # (arrival, body length after the read)
    changes: int = 0
    status: int | None = None
    error: str | None = None
    ended: bool = False
    chunked: bool = True
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _scanned: int = 0

    async def run(self, host: str, port: int) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
            writer.write(
                f"GET {self.path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {self.token}\r\n"
                f"Accept: text/event-stream\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            self.status = int(head.split(b" ", 2)[1])
            self.chunked = b"transfer-encoding: chunked" in head.lower()
            if self.status != 200:
                self.error = f"HTTP {self.status}: {(await reader.read(300))!r}"
                return
            while data := await reader.read(READ_SIZE):
                self._feed(data)
            self.ended = True  # the server ended the stream
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.ready.set()  # never leave the phase waiting for a failed subscriber
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    def _feed(self, data: bytes) -> None:
        """The hot path: keep the bytes, stamp the read, count change markers."""
        self.body += data
        self.stamps.append((time.monotonic(), len(self.body)))
        start = max(self._scanned - len(CHANGE_MARKS[0]) + 1, 0)
        self.changes += sum(self.body.count(mark, start) for mark in CHANGE_MARKS)
        self._scanned = len(self.body)
        if not self.ready.is_set() and READY_MARK in self.body:
            self.ready.set()

    @property
    def failed(self) -> bool:
        return self.error is not None or self.ended

    def _decoded(self) -> tuple[bytes, list[tuple[int, int]]]:
        """The body without HTTP chunk framing, and (decoded length, raw end) after each chunk."""
        raw = self.body
        if not self.chunked:
            return bytes(raw), [(end, end) for _, end in self.stamps]
        decoded = bytearray()
        marks: list[tuple[int, int]] = []
        position = 0
        while (line_end := raw.find(b"\r\n", position)) != -1:
            size = int(bytes(raw[position:line_end]).split(b";")[0], 16)
            start, end = line_end + 2, line_end + 2 + size
            if size == 0 or end > len(raw):
                break
            decoded += raw[start:end]
            marks.append((len(decoded), end))
            position = end + 2
        return bytes(decoded), marks

    def frames(self) -> list[Frame]:
        """Every complete frame, stamped with the arrival of the read that completed it."""
        decoded, marks = self._decoded()
        decoded_ends = [length for length, _ in marks]
        read_ends = [end for _, end in self.stamps]
        frames: list[Frame] = []
        start = 0
        while (stop := decoded.find(b"\n\n", start)) != -1:
            end = stop + 2
            raw_end = marks[bisect.bisect_left(decoded_ends, end)][1]
            arrived = self.stamps[bisect.bisect_left(read_ends, raw_end)][0]
            frames.append(parse_block(decoded[start:stop].decode(), arrived))
            start = end
        return frames


def parse_block(block: str, arrived: float) -> Frame:
    event: str | None = None
    event_id: int | None = None
    data: list[str] = []
    for line in block.split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "id":
            event_id = int(value)
        elif name == "data":
            data.append(value)
    return Frame(event, event_id, "\n".join(data), arrived)


async def open_all(
    subscribers: list[Subscriber], host: str, port: int, timeout: float, *, concurrency: int = 50
) -> list[asyncio.Task[None]]:
    """Start every subscription (at most ``concurrency`` connecting at once); return once all are ready."""
    gate = asyncio.Semaphore(concurrency)

    async def start(subscriber: Subscriber) -> None:
        async with gate:
            task = asyncio.create_task(subscriber.run(host, port))
            tasks.append(task)
            await subscriber.ready.wait()

    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.wait_for(asyncio.gather(*(start(s) for s in subscribers)), timeout)
    except BaseException:
        await close_all(tasks)
        raise
    return tasks


async def close_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

"""Test support for the change feed (``djfapi.live``): SSE parsing and stream readers.

``SSEReader`` reads a Server-Sent Events response in a background thread and parses
it as a browser would (``id:``, ``event:``, ``data:``, ``: comments``), so that a test
can wait for frames with a deadline instead of blocking on a socket forever. It reads
both Starlette's ``TestClient`` streams and real ``httpx`` streams against uvicorn.

``HeldWriter`` is a concurrent writer whose event id is drawn but not yet committed:
the out-of-order commits the feed's gaps are about.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, transaction

from tests.factories import make_company

#: Short intervals so that the tests see heartbeats, polls and timeouts quickly.
FAST = {
    "LIVE_HEARTBEAT": 0.3,
    "LIVE_POLL_INTERVAL": 0.5,
    "LIVE_SEND_TIMEOUT": 5.0,
}


@dataclass
class Frame:
    """One dispatched block of an event stream (a comment-only block has ``event`` None)."""

    event: str | None = None
    id: int | None = None
    data: Any = None
    comments: list[str] = field(default_factory=list)
    received_at: float = 0.0

    @property
    def is_change(self) -> bool:
        return self.event in ("INSERT", "UPDATE", "DELETE")


def parse_lines(lines: Iterator[str]) -> Iterator[Frame]:
    """Frames of an event stream, one per blank-line-terminated block."""
    frame = Frame()
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or frame.event or frame.id is not None or frame.comments:
                frame.data = json.loads("\n".join(data)) if data else None
                frame.received_at = time.monotonic()
                yield frame
            frame, data = Frame(), []
            continue
        if line.startswith(":"):
            frame.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            frame.event = value
        elif name == "id":
            frame.id = int(value)
        elif name == "data":
            data.append(value)


class SSEReader:
    """Frames of one SSE response, collected by a background thread."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.frames: queue.Queue[Frame | None] = queue.Queue()
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, name="sse reader", daemon=True)
        self._thread.start()

    def _lines(self) -> Iterator[str]:
        buffer = ""
        for chunk in self.response.iter_text():
            buffer += chunk
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                yield line.rstrip("\r")

    def _read(self) -> None:
        try:
            for frame in parse_lines(self._lines()):
                self.frames.put(frame)
        except Exception:  # the test closed the stream under us
            pass
        finally:
            self.ended.set()
            self.frames.put(None)

    def next(self, timeout: float = 10.0) -> Frame | None:
        """The next frame, or None when the stream ended; fails the test after ``timeout``."""
        try:
            return self.frames.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no frame within {timeout} s")

    def until(self, predicate: Callable[[Frame], bool], timeout: float = 10.0) -> list[Frame]:
        """Frames up to and including the first that matches ``predicate``."""
        deadline = time.monotonic() + timeout
        seen: list[Frame] = []
        while True:
            frame = self.next(max(deadline - time.monotonic(), 0.01))
            if frame is None:
                pytest.fail(f"the stream ended before the expected frame; got {[(f.event, f.id) for f in seen]}")
            seen.append(frame)
            if predicate(frame):
                return seen

    def changes(self, count: int, timeout: float = 10.0) -> list[Frame]:
        """The next ``count`` change events (INSERT/UPDATE/DELETE), skipping keep-alives."""
        found: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            frames = self.until(lambda f: f.is_change, max(deadline - time.monotonic(), 0.01))
            found.append(frames[-1])
        return found

    def quiet(self, seconds: float) -> list[Frame]:
        """Every change event that arrives within ``seconds`` (a test that expects none)."""
        deadline = time.monotonic() + seconds
        found: list[Frame] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.frames.get(timeout=left)
            except queue.Empty:
                break
            if frame is None:
                break
            if frame.is_change:
                found.append(frame)
        return found

    def drain_until_end(self, timeout: float = 10.0) -> list[Frame]:
        """Every frame until the server ends the stream."""
        frames: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(max(deadline - time.monotonic(), 0.01))
            if frame is None:
                return frames
            frames.append(frame)


@contextmanager
def subscribe(client: Any, path: str, **kwargs: Any) -> Iterator[SSEReader]:
    """``GET path`` as an event stream (200 expected), read by an ``SSEReader``; closed afterwards."""
    with client.stream("GET", path, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SSEReader(response)
        try:
            yield reader
        finally:
            response.close()
            reader.ended.wait(10)


def ready(reader: SSEReader) -> Frame:
    """The stream's first frame, which must be ``ready`` (or ``reset``)."""
    frame = reader.next()
    assert frame is not None and frame.event in ("ready", "reset"), frame
    return frame


def feed_client(app: Any, settings: Any) -> Iterator[Any]:
    """A ``TestClient`` of the demo with short feed intervals, for a module's ``feed`` fixture.

    Use it on ``transactional_db``: streams need committed rows and transactions of their
    own, and the ``shared_connection`` trick (one test transaction for every thread)
    cannot show what a stream sees.
    """
    from fastapi.testclient import TestClient

    settings.DJFAPI = {**settings.DJFAPI, **FAST}
    with TestClient(app) as client:
        yield client


class HeldWriter:
    """A thread that creates a company in a transaction and holds it open until told to finish."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.drawn = threading.Event()
        self.finish = threading.Event()
        self.commit = True
        self.company_id: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"held writer {name}")

    def _run(self) -> None:
        try:
            try:
                with transaction.atomic():
                    company = make_company(name=self.name)
                    self.company_id = str(company.pk)
                    self.drawn.set()  # its event id is drawn, its row not yet visible
                    self.finish.wait(30)
                    if not self.commit:
                        transaction.set_rollback(True)
            finally:
                self.drawn.set()
        finally:
            connection.close()

    def __enter__(self) -> HeldWriter:
        self.thread.start()
        assert self.drawn.wait(10)
        assert self.company_id is not None, "the held writer failed"
        return self

    def release(self, *, commit: bool) -> None:
        self.commit = commit
        self.finish.set()
        self.thread.join(10)

    def __exit__(self, *exc: object) -> None:
        self.release(commit=self.commit)

"""``python -m benchmarks profile``: where a djfapi request spends its time.

pyinstrument samples one thread, and a generated endpoint runs partly in the event
loop (routing, parameters, token) and partly in a worker thread (authorisation, ORM,
rendering). So the profile runs the contender's ASGI app in this process with the
worker-thread hop made inline — ``anyio.to_thread.run_sync`` (Starlette's thread
pool) and the event loop's ``run_in_executor`` (djfapi's own pool) replaced by direct
calls, ``DJANGO_ALLOW_ASYNC_UNSAFE`` set for that — and calls the app directly with
ASGI messages: no HTTP server and no client in the samples. Everything else is
exactly what the server runs.

For each workload it prints the CPU time per request without the profiler (best of three
passes) and the wall time with it, the share of self time by layer
(djfapi, Django ORM, database driver, pydantic, FastAPI/Starlette, JWT, ...), the
functions with the most self time and with the most inclusive time, and writes
pyinstrument's full tree (text and HTML) to the work directory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.config import SCOPES, TENANT, USER, ensure_work_dir, setup_django

WARMUP_REQUESTS = 50
UNPROFILED_PASSES = 3
_LAYERS: tuple[tuple[str, str], ...] = (
    ("/benchmarks/", "benchmark harness"),
    ("/djfapi/", "djfapi"),
    ("/testproject/", "testproject"),
    ("/django/db/models/sql/", "Django ORM: SQL compilation"),
    ("/django/db/backends/", "database backend + driver (query execution)"),
    ("sqlite3", "database backend + driver (query execution)"),
    ("psycopg", "database backend + driver (query execution)"),
    ("/django/db/models/", "Django ORM: querysets, instances, prefetch"),
    ("/django/", "Django: other (signals, connections, utils)"),
    ("/pydantic", "pydantic (validation, serialisation)"),
    ("/fastapi/", "FastAPI (routing, dependencies, params)"),
    ("/starlette/", "Starlette"),
    ("/jwt/", "PyJWT + cryptography"),
    ("/cryptography/", "PyJWT + cryptography"),
    ("/json/", "json (stdlib)"),
    ("/asyncio/", "asyncio / anyio"),
    ("/anyio/", "asyncio / anyio"),
)
_APPLICATION_LAYERS = {"djfapi", "testproject"}


async def _inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
    return func(*args)


def _inline_executor(loop: asyncio.AbstractEventLoop) -> Callable[..., asyncio.Future[Any]]:
    """A ``run_in_executor`` for ``loop`` that runs the call at once, in this thread."""

    def run_in_executor(executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        future = loop.create_future()
        try:
            future.set_result(func(*args))
        except BaseException as error:  # handed to the awaiting caller, as an executor would
            future.set_exception(error)
        return future

    return run_in_executor


async def call(app: Any, method: str, path: str, body: bytes, token: str) -> tuple[int, bytes]:
    """Send one request straight to an ASGI app; return its status and body."""
    route, _, query = path.partition("?")
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    response: dict[str, Any] = {"status": 0, "body": []}

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response["status"] = message["status"]
        elif message["type"] == "http.response.body":
            response["body"].append(message.get("body", b""))

    await app(scope, receive, send)
    return response["status"], b"".join(response["body"])


def layer(file_path: str) -> str:
    for marker, name in _LAYERS:
        if marker in file_path:
            return name
    return "other (stdlib, C builtins)"


def _frames(session: Any) -> list[tuple[list[tuple[str, str, str]], float]]:
    """The session's samples as (stack of (function, file, line), seconds)."""
    from pyinstrument.frame_info import parse_frame_info

    samples = []
    for stack, seconds in session.frame_records:
        frames = []
        for info in stack:
            identifier, _ = parse_frame_info(info)
            parts = identifier.split("\x00")
            if len(parts) == 3:
                frames.append((parts[0], parts[1], parts[2]))
        if frames:
            samples.append((frames, seconds))
    return samples


def _short(function: str, path: str, line: str | int | None) -> str:
    short = (path or "").split("site-packages/")[-1].split("/work/main/")[-1]
    return f"{function} ({short}:{line})"


def summarise(session: Any, requests: int, top: int = 12) -> list[str]:
    """Time per request, self time by layer, the heaviest functions, and the tree of the signalled call."""
    samples = _frames(session)
    total = sum(seconds for _, seconds in samples) or 1e-9
    by_layer: dict[str, float] = defaultdict(float)
    outside: dict[str, float] = defaultdict(float)
    self_time: dict[tuple[str, str, str], float] = defaultdict(float)
    for frames, seconds in samples:
        leaf = frames[-1]
        by_layer[layer(leaf[1])] += seconds
        self_time[leaf] += seconds
        if not any(function == SIGNALLED for function, path, _ in frames if path.endswith(SIGNALLED_FILE)):
            outside[layer(leaf[1])] += seconds

    lines = [f"{total / requests * 1000:.2f} ms per request sampled ({requests} requests)"]
    lines.append("  self time by layer:")
    for label, seconds in sorted(by_layer.items(), key=lambda item: -item[1]):
        lines.append(f"    {seconds / total * 100:5.1f}%  {label}")
    spent_outside = sum(outside.values())
    lines.append(
        f"  outside the signalled call (event loop: middleware, routing, parameters, token, response): "
        f"{spent_outside / total * 100:.1f}%, of which "
        + ", ".join(
            f"{label} {seconds / total * 100:.1f}%"
            for label, seconds in sorted(outside.items(), key=lambda item: -item[1])
            if seconds / total >= 0.005
        )
    )
    lines.append("  most self time:")
    for (function, path, line), seconds in sorted(self_time.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"    {seconds / total * 100:5.1f}%  {_short(function, path, line)}")
    inside: dict[Any, Any] = {}
    for frames, seconds in samples:
        below = _below_signalled(frames)
        if below is not None:
            _insert(inside, below, seconds)
    if inside:
        lines.append("  inside the signalled call (inclusive time; calls of 2% or more):")
        _render(inside, total, 0, lines)
    return lines


SIGNALLED = "signalled"
SIGNALLED_FILE = "djfapi/utils/fastapi_django.py"
TREE_DEPTH = 8
TREE_THRESHOLD = 0.02

Frame = tuple[str, str, str]


def _below_signalled(frames: list[Frame]) -> list[Frame] | None:
    """The stack from the (outermost) ``request_signalling`` wrapper down, or None outside it."""
    for index, (function, path, _) in enumerate(frames):
        if function == SIGNALLED and path.endswith(SIGNALLED_FILE):
            return frames[index:]
    return None


def _insert(tree: dict[Any, Any], frames: list[Frame], seconds: float) -> None:
    """Add one sample to a call tree: {frame: [inclusive seconds, {children}]}."""
    node = tree
    for frame in frames:
        entry = node.setdefault(frame, [0.0, {}])
        entry[0] += seconds
        node = entry[1]


def _render(tree: dict[Any, Any], total: float, depth: int, lines: list[str]) -> None:
    for (function, path, line), (seconds, children) in sorted(tree.items(), key=lambda item: -item[1][0]):
        if seconds / total < TREE_THRESHOLD:
            continue
        lines.append(f"    {'  ' * depth}{seconds / total * 100:5.1f}%  {_short(function, path, line)}")
        if depth < TREE_DEPTH:
            _render(children, total, depth + 1, lines)


def profile(contender: str, workloads: Sequence[str], requests: int, companies: int) -> int:
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM now runs on the event loop's thread, on purpose
    from benchmarks.contenders import CONTENDERS

    os.environ.update(CONTENDERS[contender].environment)  # as its server is started (rate limits off for djfapi)
    setup_django()
    import anyio.to_thread
    from django.db import DEFAULT_DB_ALIAS, connections
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer

    from benchmarks.seed import restore, seed
    from benchmarks.workloads import build
    from testproject.tokens import mint_token

    ensure_work_dir()
    seed(companies)
    module_name, _, function = CONTENDERS[contender].factory.partition(":")
    app = getattr(__import__(module_name, fromlist=[function]), function)()
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    token = mint_token(tenant=TENANT, user=USER, scopes=SCOPES, expires=3600)
    available = build()

    async def drive(key: str, count: int) -> None:
        loop = asyncio.get_running_loop()
        loop.run_in_executor = _inline_executor(loop)  # type: ignore[method-assign]
        # With a running loop Django's connections live in context variables; djfapi runs
        # each call in a copy of the context, so the connection must exist before the
        # copies, or every request would open (and profile) a new one — which a worker
        # thread of the real server never does.
        connections[DEFAULT_DB_ALIAS].ensure_connection()
        workload = available[key]
        for number in range(count):
            request = workload.requests[number % len(workload.requests)]
            status, body = await call(app, request.method, request.path, request.encoded_body(), token)
            if status != workload.status:
                raise RuntimeError(f"{key}: status {status}: {body[:300]!r}")

    for key in workloads:
        try:
            asyncio.run(drive(key, WARMUP_REQUESTS))
            # The same requests unprofiled: the profiler's per-call hook slows call-heavy
            # code (ORM instances) more than the rest, so the two times say how far to trust the
            # shares. CPU time, best of a few passes: the machine may be shared.
            passes = []
            for _ in range(UNPROFILED_PASSES):
                started = time.process_time()
                asyncio.run(drive(key, requests))
                passes.append(time.process_time() - started)
            unprofiled = min(passes)
            profiler = Profiler(interval=0.0002, async_mode="disabled")
            started = time.perf_counter()
            profiler.start()
            asyncio.run(drive(key, requests))
            profiler.stop()
            elapsed = time.perf_counter() - started
        finally:
            if available[key].writes:
                restore(out=lambda _: None)
        session = profiler.last_session
        base = ensure_work_dir() / f"profile-{contender}-{key}"
        base.with_suffix(".txt").write_text(ConsoleRenderer(unicode=True, color=False, show_all=False).render(session))
        base.with_suffix(".html").write_text(HTMLRenderer().render(session))
        print(
            f"\n{contender} {key} {available[key].title}: {unprofiled / requests * 1000:.2f} ms CPU per request "
            f"unprofiled (best of {UNPROFILED_PASSES}), {elapsed / requests * 1000:.2f} ms wall profiled "
            f"(in-process, one request at a time)"
        )
        print("\n".join(summarise(session, requests)))
        print(f"  full tree: {base.with_suffix('.txt')} (and .html)")
    return 0

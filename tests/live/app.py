"""The ASGI app of the live tests: ``uvicorn tests.live.app:app``.

It is the demo app (``testproject.app.create_app``: the generated API, djfapi's error
handlers, the admin) plus a small router of hand-written endpoints under ``/live`` that
the generated tree cannot offer:

* ``GET /live/ping``: answers without touching the database (readiness probe).
* ``GET /live/pid``: the worker process that answered (with uvicorn ``--workers``, a
  keep-alive connection stays with the worker that accepted it).
* ``GET /live/raise``: runs a query, then raises; signalled and run in djfapi's thread
  pool exactly like a generated endpoint, so it is "a handler that raises".
* ``GET /live/slow?seconds=``: holds a connection in ``pg_sleep``; signalled likewise.
  Clients that give up on it are the "disconnected mid-request" case.
* ``GET /live/unsignalled``: the same kind of query in a plain sync endpoint *without*
  ``request_signalling``, the mistake the connection tests must be able to detect.
* ``GET /live/pool``: the state of Django's connection pool, when one is configured.
* ``POST /live/companies?tenant=&count=``: creates ``count`` companies in one
  transaction straight through the ORM (published by the feed's capture), a backlog
  for the change-feed tests that does not depend on the generated routes.
* ``GET /live/feed``: the feed's streams on this process, the event loop's tasks and
  the process's threads outside djfapi's worker pool: what a stream could leak.

``CancelOnDisconnect`` wraps the whole app: a GET whose client goes away is cancelled,
as some servers and middlewares do. Uvicorn alone lets the handler run to its end;
with cancellation the endpoint's ``await`` is interrupted too, which is the case
``run_signalled`` must survive without giving up its thread (and its connection) early.

The signalled endpoints go through ``run_signalled`` so that they share djfapi's
bounded pool of ``THREADPOOL_SIZE`` worker threads with the generated endpoints: the
bound on connections the tests assert is then the bound of the whole app.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
django.setup()

import anyio  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402  (needs the app registry loaded)
from fastapi import APIRouter, FastAPI, Query  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from djfapi.live.hub import current_hub  # noqa: E402
from djfapi.utils.fastapi_django import request_signalling, run_signalled  # noqa: E402
from testproject.app import create_app  # noqa: E402
from testproject.business.models import Company  # noqa: E402


class HandlerFailure(RuntimeError):
    """What ``/live/raise`` raises after its query: a bug in a handler."""


@request_signalling
def query_then_raise() -> None:
    Company.objects.count()  # opens this thread's connection first
    raise HandlerFailure("a handler that raises")


@request_signalling
def sleep_in_the_database(seconds: float) -> dict[str, float]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return {"slept": seconds}


@request_signalling
def create_companies(tenant: str, count: int) -> dict[str, int]:
    with transaction.atomic():
        for number in range(count):
            Company.objects.create(tenant_id=tenant, name=f"Live {number}")
    return {"created": count}


def pool_state() -> dict[str, Any]:
    pool = connections["default"].pool
    if pool is None:
        return {"pooled": False}
    stats = pool.get_stats()
    size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
    return {
        "pooled": True,
        "max_size": pool.max_size,
        "size": size,
        "available": available,
        "checked_out": size - available,
        "waiting": stats.get("requests_waiting", 0),
    }


live = APIRouter(prefix="/live", tags=["live tests"])


@live.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


@live.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@live.get("/raise")
async def raise_after_a_query() -> None:
    await run_signalled(query_then_raise)


@live.get("/slow")
async def slow(seconds: float = Query(0.5, ge=0, le=10)) -> dict[str, float]:
    return await run_signalled(sleep_in_the_database, seconds=seconds)


@live.get("/unsignalled")
def unsignalled() -> dict[str, int]:
    # Deliberately without request_signalling: FastAPI runs this in its own thread pool,
    # and nothing ever tells Django that the request is over.
    return {"companies": Company.objects.count()}


@live.get("/pool")
async def pool() -> dict[str, Any]:
    return pool_state()


@live.post("/companies")
async def companies(tenant: str = Query(...), count: int = Query(1, ge=1, le=5000)) -> dict[str, int]:
    return await run_signalled(create_companies, tenant=tenant, count=count)


@live.get("/feed")
async def feed() -> dict[str, Any]:
    threads = [thread.name for thread in threading.enumerate() if not thread.name.startswith("djfapi")]
    return {
        "streams": current_hub()._subscribers,
        "tasks": len(asyncio.all_tasks()),
        "threads": sorted(threads),
    }


def stop_with_the_test_session() -> None:
    """Terminate this server when the pytest process that started it is gone.

    The fixtures stop their servers, but a test session killed outright cannot; then the
    server would keep running (and holding connections) with nobody to stop it.
    """
    parent = int(os.environ.get("DJFAPI_LIVE_PARENT_PID", "0"))
    if not parent:
        return

    def alive() -> bool:
        # Not os.getppid() == parent: under ``--workers`` the parent is uvicorn's supervisor.
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return False
        return True

    def watch() -> None:
        while alive():
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


class CancelOnDisconnect:
    """Cancel a GET request's handling as soon as its client disconnects."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        request = await receive()  # a GET: one message with an empty body
        replayed = False

        async def app_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return request
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        async with anyio.create_task_group() as tasks:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tasks.cancel_scope.cancel()

            tasks.start_soon(watch)
            try:
                await self.app(scope, app_receive, send)
            finally:
                tasks.cancel_scope.cancel()


def create_live_app() -> FastAPI:
    app = create_app()
    app.include_router(live)
    app.add_middleware(CancelOnDisconnect)
    return app


stop_with_the_test_session()
app = create_live_app()

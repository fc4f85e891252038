"""Health endpoints for load balancers and orchestrators.

``GET /health`` is liveness: the process answers, no I/O. ``GET /health/ready`` is
readiness: every configured database answers ``SELECT 1`` within a timeout, else a 503
with the usual error body naming the failing databases. Neither needs a token, and
neither appears in the business API's OpenAPI document unless asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
from django.db import connections
from fastapi import APIRouter
from starlette.responses import JSONResponse

from djfapi.conf import setting
from djfapi.errors import ServiceUnavailable
from djfapi.utils.fastapi_django import request_signalling, run_signalled, worker_threads

DEFAULT_TIMEOUT = 2.0
# Readiness probes get threads of their own: a busy API must not make them time out,
# and probes stuck on an unreachable database must not starve the API.
PROBE_THREADS = 4


@request_signalling
def _ping(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


async def _check(alias: str, timeout: float) -> str | None:
    """None when ``alias`` answered in time, else what went wrong (no secrets, no SQL)."""
    try:
        with anyio.fail_after(timeout):
            # A probe that times out is not waited for; its thread finishes on its own.
            await run_signalled(_ping, pool=worker_threads("djfapi-health", PROBE_THREADS), alias=alias)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as error:  # any failure means "not ready"; its class is enough to say why
        return type(error).__name__
    return None


def health_router(
    *,
    databases: Sequence[str] | None = None,
    timeout: float | None = None,
    include_in_schema: bool = False,
    prefix: str = "/health",
) -> APIRouter:
    """``GET {prefix}`` (liveness) and ``GET {prefix}/ready`` (readiness) — no auth.

    ``databases`` defaults to every configured alias, ``timeout`` to
    ``DJFAPI["HEALTH_TIMEOUT"]`` (2 s).
    """
    router = APIRouter(prefix=prefix, tags=["health"], include_in_schema=include_in_schema)

    @router.get("", summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="Readiness: the databases answer",
        responses={503: {"description": "A database did not answer in time"}},
    )
    async def ready() -> Any:
        limit = float(timeout if timeout is not None else setting("HEALTH_TIMEOUT", DEFAULT_TIMEOUT))
        aliases = list(databases) if databases is not None else list(connections)
        results: dict[str, str | None] = {}

        async def check(alias: str) -> None:
            results[alias] = await _check(alias, limit)

        async with anyio.create_task_group() as group:
            for alias in aliases:
                group.start_soon(check, alias)
        failing = {alias: problem for alias, problem in results.items() if problem is not None}
        if failing:
            error = ServiceUnavailable("A database is not answering.", code="not_ready", detail={"databases": failing})
            return JSONResponse({"detail": error.body()}, status_code=503)
        return {"status": "ok", "databases": {alias: "ok" for alias in aliases}}

    return router

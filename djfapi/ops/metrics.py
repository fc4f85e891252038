"""Prometheus metrics: ``GET /metrics`` through ``prometheus-client`` (the ``[metrics]`` extra).

``create_app(metrics=True)`` (or ``install_metrics(app)``) counts every HTTP request and
serves the text format at ``/metrics``:

=============================================  ==========================================================
``djfapi_requests_total``                      counter: ``method``, ``route``, ``status``
``djfapi_request_duration_seconds``            histogram: ``method``, ``route``
``djfapi_feed_subscribers``                    gauge: open change-feed streams of this process
``djfapi_db_connections_in_use``               gauge: requests holding a database connection now (one
                                               per signalled call), per ``database`` with the pool's
                                               own figures when Django's pool is on
``djfapi_revocation_cache_checks_total``       counter: tokens checked against the revoked ids in memory
``djfapi_revocation_cache_reloads_total``      counter: full reloads (start, reconnections, safety poll)
``djfapi_revoked_tokens``                      gauge: revoked ids held in memory, by ``kind``
``djfapi_rate_limited_total``                  counter: 429 answers, by ``policy``
=============================================  ==========================================================

Label values are bounded: ``route`` is the route's path template (``/companies/{company_id}``,
never an id), ``"unmatched"`` for a path no route serves (so scanners cannot grow the
series); ``method`` is one of the HTTP methods or ``"other"``; ``status`` the status code;
``policy`` a declared limit's name. No tenant, user or id is a label — unless
``DJFAPI["METRICS_TENANT_LABEL"] = True`` adds ``tenant`` to ``djfapi_requests_total``, for
deployments with few tenants (every tenant is then a series per route, method and status).

The metrics live in ``prometheus_client``'s default registry, so the process and platform
collectors and the project's own metrics are served too. With several worker processes
each serves its own figures; aggregate them in Prometheus (or use ``prometheus_client``'s
multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from djfapi.conf import setting

__all__ = ["MetricsMiddleware", "install_metrics"]

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_metrics: dict[str, Any] = {}


def _require() -> Any:
    try:
        import prometheus_client
    except ImportError:  # pragma: no cover - the extra is missing
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("djfapi metrics need prometheus-client: pip install 'djfapi[metrics]'") from None
    return prometheus_client


def _registered() -> dict[str, Any]:
    """The metrics, registered once per process."""
    if _metrics:
        return _metrics
    prometheus_client = _require()
    labels = ["method", "route", "status"]
    if setting("METRICS_TENANT_LABEL", False):
        labels.append("tenant")
    _metrics["tenant_label"] = "tenant" in labels
    _metrics["requests"] = prometheus_client.Counter(
        "djfapi_requests", "HTTP requests by route template, method and status", labels
    )
    _metrics["duration"] = prometheus_client.Histogram(
        "djfapi_request_duration_seconds",
        "Time from the request's arrival to the end of its response, by route template and method",
        ["method", "route"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    )
    _metrics["rate_limited"] = prometheus_client.Counter(
        "djfapi_rate_limited", "Requests refused (429) by a rate limit, by policy", ["policy"]
    )
    prometheus_client.REGISTRY.register(_StateCollector())
    return _metrics


def rate_limited(policy: str) -> None:
    """Count a 429 (called by ``djfapi.ratelimit``; a no-op until metrics are installed)."""
    if _metrics:
        _metrics["rate_limited"].labels(policy).inc()


class _StateCollector:
    """Figures read when Prometheus scrapes: streams, connections, the revocation cache."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        subscribers = GaugeMetricFamily("djfapi_feed_subscribers", "Open change-feed streams (SSE and WebSocket)")
        subscribers.add_metric([], _feed_subscribers())
        yield subscribers

        in_use = GaugeMetricFamily(
            "djfapi_db_connections_in_use",
            "Database connections in use: signalled calls running now (each holds one connection per database "
            "it uses); with Django's pool, the pool's connections lent out",
            labels=["database"],
        )
        for database, count in _connections_in_use().items():
            in_use.add_metric([database], count)
        yield in_use

        from djfapi.auth import revocation

        checks = CounterMetricFamily(
            "djfapi_revocation_cache_checks", "Tokens checked against the revoked ids held in memory (no query)"
        )
        checks.add_metric([], revocation.cache.checks)
        yield checks
        reloads = CounterMetricFamily(
            "djfapi_revocation_cache_reloads", "Full reloads of the revoked ids from the database"
        )
        reloads.add_metric([], revocation.cache.reloads)
        yield reloads
        held = GaugeMetricFamily("djfapi_revoked_tokens", "Revoked ids held in memory", labels=["kind"])
        held.add_metric(["jti"], len(revocation.cache.jtis))
        held.add_metric(["family"], len(revocation.cache.families))
        yield held


def _feed_subscribers() -> int:
    try:
        from djfapi.live import hub
    except Exception:  # djfapi.live is not installed
        return 0
    return sum(getattr(h, "_subscribers", 0) for h in list(hub._hubs.values()))


def _connections_in_use() -> dict[str, int]:
    from django.db import connections

    from djfapi.utils.fastapi_django import signalled_calls

    figures: dict[str, int] = {}
    for alias in connections:
        connection = connections[alias]
        pool = getattr(connection, "pool", None) if connection.settings_dict.get("OPTIONS", {}).get("pool") else None
        if pool is not None:
            stats = pool.get_stats()
            figures[alias] = int(stats.get("pool_size", 0)) - int(stats.get("pool_available", 0))
        else:
            figures[alias] = signalled_calls()
    return figures


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        metrics = _registered()
        self.requests = metrics["requests"]
        self.duration = metrics["duration"]
        self.tenant_label = metrics["tenant_label"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            matched = scope.get("route")
            route = getattr(matched, "path_format", None) or getattr(matched, "path", None)
            route = route if isinstance(route, str) else "unmatched"
            labels: list[str] = [method, route, str(status)]
            if self.tenant_label:
                from djfapi.ops.context import STATE_KEY

                caller = scope.get("state", {}).get(STATE_KEY)
                labels.append(str(getattr(caller, "tenant_id", None) or ""))
            self.requests.labels(*labels).inc()
            self.duration.labels(method, route).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI, path: str = "/metrics") -> None:
    """Count ``app``'s requests and serve the metrics at ``path`` (left out of the API docs)."""
    prometheus_client = _require()
    _registered()
    app.add_middleware(MetricsMiddleware)

    @app.get(path, include_in_schema=False)
    def metrics() -> Response:
        return Response(prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

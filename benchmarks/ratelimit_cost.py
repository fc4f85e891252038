"""What counting a request against a rate limit costs, in-process: ``python -m benchmarks.ratelimit_cost``.

The HTTP comparison (``python -m benchmarks --contenders baseline,djfapi,limits``) measures
the whole server, and on a shared machine its noise is larger than the difference sought.
This times ``limiter.check`` alone, as the routes call it (one policy, keyed by the token's
subject), for each strategy with the in-process store and, when Redis answers at
``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/14``), with Redis; median of 5 runs
of N calls each. Compare the microseconds with a request's CPU time (``server`` CPU over
requests/s in the benchmark's tables).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid

CALLS = int(os.environ.get("BENCH_CALLS", "20000"))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django
    from django.conf import settings

    django.setup()
    from django.test import override_settings
    from starlette.requests import Request

    from djfapi.ratelimit import Limiter, Policy, RateLimit, RouteLimits
    from djfapi.schemas.access import AccessToken

    token = AccessToken(exp=int(time.time()) + 3600, sub="bench-user", ten="alpha")
    request = Request({"type": "http", "headers": [], "client": ("127.0.0.1", 1)})

    async def run(limiter: Limiter, limits: RouteLimits, calls: int) -> float:
        await limiter.check(limits, request, token)  # connect, warm up
        started = time.perf_counter()
        for _ in range(calls):
            await limiter.check(limits, request, token)
        return (time.perf_counter() - started) / calls * 1e6

    stores = [("memory", "memory://")]
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        stores.append(("redis", REDIS_URL))
    except Exception as error:
        print(f"(Redis not measured: {error})")
    print(f"limiter.check, one policy, µs per call (median of 5 runs of {CALLS}):")
    for strategy in ("sliding-window-counter", "fixed-window", "moving-window"):
        for store, uri in stores:
            calls = CALLS if store == "memory" else max(CALLS // 10, 500)
            runs = []
            for _ in range(5):
                limits = RouteLimits((Policy(f"bench-{uuid.uuid4().hex}", RateLimit("1000000000/minute")),))
                config = {**settings.DJFAPI, "RATE_LIMIT_STORAGE": uri, "RATE_LIMIT_STRATEGY": strategy}
                with override_settings(DJFAPI=config):
                    runs.append(asyncio.run(run(Limiter(), limits, calls)))
            print(f"  {strategy:24} {store:7} {statistics.median(runs):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Serve one contender under uvicorn: ``python -m benchmarks.serve NAME --port PORT``.

One process, one worker (``--workers N``: uvicorn's worker processes, each building
the app with ``worker_app``; ``benchmarks.workers`` compares them), uvicorn's defaults
otherwise (its fastest installed event loop and HTTP parser; no access log). Django
is set up with ``benchmarks.settings`` before the contender's module is imported.
With ``BENCH_COUNT_QUERIES`` or ``BENCH_TRACE_MEMORY`` in the environment the app is
wrapped in ``benchmarks.instrument.Instrumented``.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Sequence

from benchmarks.config import SETTINGS_MODULE


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in {"", "0", "false", "no"}


def _build(name: str) -> object:
    """Set Django up for contender ``name`` and build its ASGI app (instrumented when asked)."""
    from benchmarks.contenders import get

    contender = get(name)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    if contender.urlconf:
        os.environ["BENCH_URLCONF"] = contender.urlconf
        os.environ["BENCH_DJANGO_ASGI"] = "1"  # see benchmarks.settings: connections per request

    import django

    django.setup()
    module_name, _, function = contender.factory.partition(":")
    app = getattr(importlib.import_module(module_name), function)()
    count_queries, trace_memory = _flag("BENCH_COUNT_QUERIES"), _flag("BENCH_TRACE_MEMORY")
    if count_queries or trace_memory:
        from benchmarks.instrument import Instrumented

        app = Instrumented(app, count_queries=count_queries, trace_memory=trace_memory)
    return app


def worker_app() -> object:
    """The app of one of several uvicorn workers (``BENCH_CONTENDER`` names the contender)."""
    return _build(os.environ["BENCH_CONTENDER"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("contender")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)

    from benchmarks.contenders import get

    contender = get(args.contender)
    if contender.launcher:
        parser.error(f"{contender.name} runs its own server ({contender.launcher}), not uvicorn")

    import uvicorn

    if args.workers > 1:
        # Each worker process imports the app on its own: uvicorn needs an import string.
        os.environ["BENCH_CONTENDER"] = args.contender
        uvicorn.run(
            "benchmarks.serve:worker_app",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
        )
        return
    app = _build(args.contender)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

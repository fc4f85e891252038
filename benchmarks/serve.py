"""Serve one contender: ``python -m benchmarks.serve NAME --port PORT [--workers N]``.

On the contender's ASGI server: uvicorn with its defaults (its fastest installed event
loop and HTTP parser; no access log), or Granian (its Rust HTTP stack, the asyncio loop
on uvloop) for a contender that names it. One worker process unless ``--workers N``
(``benchmarks.workers`` compares 1 and 2): each worker then builds the app itself
through ``worker_app``. Django is set up with ``benchmarks.settings`` before the
contender's module is imported. With ``BENCH_COUNT_QUERIES`` or ``BENCH_TRACE_MEMORY``
in the environment the app is wrapped in ``benchmarks.instrument.Instrumented``.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.config import SETTINGS_MODULE

_CONTENDER_VARIABLE = "BENCH_SERVE_CONTENDER"  # how a worker process learns what to build
_WORKER_APP = "benchmarks.serve:worker_app"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in {"", "0", "false", "no"}


def build(name: str) -> Callable[..., Any]:
    """The contender's ASGI app, Django set up first (and instrumented when asked)."""
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


def worker_app() -> Callable[..., Any]:
    """The app of one worker process (uvicorn with several workers, or Granian): built there."""
    return build(os.environ[_CONTENDER_VARIABLE])


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
        parser.error(f"{contender.name} runs its own server ({contender.launcher}), not benchmarks.serve")
    os.environ[_CONTENDER_VARIABLE] = contender.name
    if contender.server == "granian":
        _serve_granian(args.host, args.port, args.workers)
        return

    import uvicorn

    if args.workers > 1:  # each worker process imports the app on its own: uvicorn needs an import string
        uvicorn.run(
            _WORKER_APP,
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
        )
        return
    uvicorn.run(build(contender.name), host=args.host, port=args.port, log_level="warning", access_log=False)


def _serve_granian(host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        _WORKER_APP,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        log_level=LogLevels.warning,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()

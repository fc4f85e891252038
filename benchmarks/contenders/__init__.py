"""The contenders, each served in its own process: ASGI apps by ``benchmarks.serve``, bolt by itself.

``baseline`` is the careful hand-written limit (every ratio is to it), ``djfapi`` the
testproject as generated, ``bolt`` django-bolt on the baseline's database work (its
own Rust server, in its own virtualenv), ``drf`` and ``ninja`` the alternatives users
would otherwise pick. ``instances``, the earlier baseline that builds model
instances, and ``djfapi-granian``, the same djfapi app served by Granian instead of
uvicorn (the serving option ``docs/deployment.md`` describes), run only when named.
``trivial`` is not a contender but the empty app that measures the load generator's
ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    factory: str  # "module:function" returning the ASGI app; Django is set up before it is imported
    urlconf: str | None = None  # for contenders served by Django's own ASGI handler
    launcher: str | None = None  # "module:function(host, port) -> argv" for a server of its own (not uvicorn)
    environment: tuple[tuple[str, str], ...] = ()  # set for its server process
    default: bool = True  # part of a run that names no contenders
    server: str = "uvicorn"  # the ASGI server of ``benchmarks.serve``: "uvicorn" or "granian"


CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Contender("baseline", "hand-written FastAPI + ORM", "benchmarks.contenders.baseline:create"),
        Contender(
            "djfapi",
            "djfapi (testproject)",
            "benchmarks.contenders.djfapi_app:create",
            environment=(("DJFAPI_RATE_LIMITS_ENABLED", "0"),),
        ),
        # The same app with its rate limits counted (in-process store), quotas too high to refuse:
        # what counting costs. Compare it with "djfapi" in one run (--contenders baseline,djfapi,limits).
        Contender(
            "limits",
            "djfapi (testproject) with rate limits counted in-process",
            "benchmarks.contenders.djfapi_app:create",
            environment=(
                ("DJFAPI_RATE_LIMITS_ENABLED", "1"),
                ("DJFAPI_DEMO_READ_LIMIT", "1000000000/minute"),
                ("DJFAPI_DEMO_WRITE_LIMIT", "1000000000/minute"),
            ),
            default=False,
        ),
        Contender(
            "limits-redis",
            "djfapi (testproject) with rate limits counted in Redis",
            "benchmarks.contenders.djfapi_app:create",
            environment=(
                ("DJFAPI_RATE_LIMITS_ENABLED", "1"),
                ("DJFAPI_RATE_LIMIT_STORAGE", "redis://127.0.0.1:6379/14"),
                ("DJFAPI_DEMO_READ_LIMIT", "1000000000/minute"),
                ("DJFAPI_DEMO_WRITE_LIMIT", "1000000000/minute"),
            ),
            default=False,
        ),
        Contender(
            "bolt",
            "django-bolt",
            "benchmarks.contenders.bolt.api:api",
            launcher="benchmarks.contenders.bolt.venv:command",
            environment=(("BENCH_BOLT", "1"),),
        ),
        Contender(
            "drf",
            "Django REST framework",
            "benchmarks.contenders.drf:create",
            urlconf="benchmarks.contenders.drf.urls",
        ),
        Contender(
            "ninja",
            "django-ninja",
            "benchmarks.contenders.ninja_api:create",
            urlconf="benchmarks.contenders.ninja_api",
        ),
        Contender(
            "djfapi-granian",
            "djfapi (testproject) on Granian",
            "benchmarks.contenders.djfapi_app:create",
            default=False,
            server="granian",
        ),
        Contender(
            "instances",
            "hand-written FastAPI + ORM with model instances (the earlier baseline)",
            "benchmarks.contenders.instances:create",
            default=False,
        ),
    )
}

DEFAULT_CONTENDERS = tuple(name for name, contender in CONTENDERS.items() if contender.default)

TRIVIAL = Contender("trivial", "bare ASGI app", "benchmarks.contenders.trivial:create")


def get(name: str) -> Contender:
    return TRIVIAL if name == TRIVIAL.name else CONTENDERS[name]

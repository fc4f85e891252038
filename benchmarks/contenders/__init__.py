"""The contenders: each an ASGI app factory, served by ``benchmarks.serve`` in its own process.

``baseline`` is the hand-written limit, ``djfapi`` the testproject as generated, ``drf``
and ``ninja`` the alternatives users would otherwise pick; ``trivial`` is not a
contender but the empty app that measures the load generator's ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    factory: str  # "module:function" returning the ASGI app; Django is set up before it is imported
    urlconf: str | None = None  # for contenders served by Django's own ASGI handler


CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Contender("baseline", "hand-written FastAPI + ORM", "benchmarks.contenders.baseline:create"),
        Contender("djfapi", "djfapi (testproject)", "benchmarks.contenders.djfapi_app:create"),
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
    )
}

TRIVIAL = Contender("trivial", "bare ASGI app", "benchmarks.contenders.trivial:create")


def get(name: str) -> Contender:
    return TRIVIAL if name == TRIVIAL.name else CONTENDERS[name]

"""Django settings of every contender, of the seeding and of the checks.

They extend ``testproject.settings`` (same models, same JWT settings) with what DRF
needs, and one database for all: an SQLite file in the work directory unless
``DATABASE_URL`` is set. ``BENCH_URLCONF`` selects the URL conf of a contender served
through Django's own ASGI handler; ``BENCH_BOLT`` (set by the django-bolt contender,
which runs in its own virtualenv without DRF) swaps ``rest_framework`` for
``django_bolt`` and names its API (``BOLT_API``).

Connections, so that the tables measure the frameworks rather than connection set-up:

* PostgreSQL, ``BENCH_PG_CONNECTIONS=persistent`` (the default): what djfapi's
  deployment guide documents for production, ``CONN_MAX_AGE`` (``BENCH_CONN_MAX_AGE``,
  default 60 s) with ``CONN_HEALTH_CHECKS``, for every contender whose worker threads
  outlive a request (baseline, djfapi, bolt): each thread keeps its connection.
  Django's ASGI handler (DRF, ninja) runs each request in a new thread, where a kept
  connection is never used again — those contenders would connect once per request
  (measured: W2 one request at a time, 72 against 124 req/s on the pool) — so they
  use Django's own connection pool instead, Django's advice under ASGI.
* PostgreSQL, ``BENCH_PG_CONNECTIONS=pool``: every contender uses Django's own
  psycopg connection pool, returning its connection when the request ends.
* SQLite (no pool in Django): the contenders with long-lived worker threads
  (FastAPI's, django-bolt's) keep each thread's connection for ``BENCH_CONN_MAX_AGE``
  seconds (default 60); contenders in Django's ASGI handler (``BENCH_DJANGO_ASGI``)
  close it (``CONN_MAX_AGE=0``), as Django's documentation says to under ASGI.

Logs: uvicorn's access log is off for every contender (``benchmarks.serve``), so
djfapi's own per-request line (the testproject logs each request on ``djfapi.access``
at INFO) and django-bolt's (``django_bolt`` at INFO) are off too, or they alone would
pay for formatting and writing a log line; ``BENCH_ACCESS_LOG_LEVEL=INFO`` brings
them back.

The garbage collector: every contender runs with the interpreter's thresholds. The
testproject raises its young threshold (``DJFAPI["GC_THRESHOLD"]``), which only djfapi's
``create_app`` would apply; the tables compare frameworks, not collector settings.
``BENCH_GC_THRESHOLD=N`` gives djfapi that threshold again.
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url

import testproject.settings as base
from benchmarks.config import SQLITE_PATH
from testproject.settings import *  # noqa: F403
from testproject.settings import INSTALLED_APPS

DEBUG = False

BOLT = os.environ.get("BENCH_BOLT") == "1"

INSTALLED_APPS = [*INSTALLED_APPS, "django_bolt" if BOLT else "rest_framework"]

BOLT_API = ["benchmarks.contenders.bolt.api:api"]

ROOT_URLCONF = os.environ.get("BENCH_URLCONF", "testproject.urls")


PG_CONNECTIONS = ("persistent", "pool")


def postgres_connections() -> str:
    """How contenders hold PostgreSQL connections: ``persistent`` (default) or ``pool``."""
    mode = os.environ.get("BENCH_PG_CONNECTIONS", "persistent")
    if mode not in PG_CONNECTIONS:
        raise ValueError(f"BENCH_PG_CONNECTIONS={mode!r}: choose from {', '.join(PG_CONNECTIONS)}")
    return mode


def _database() -> dict[str, Any]:
    config: dict[str, Any] = dict(dj_database_url.config(default=f"sqlite:///{SQLITE_PATH}"))
    django_asgi = os.environ.get("BENCH_DJANGO_ASGI") == "1"
    if config["ENGINE"].endswith("postgresql"):
        if postgres_connections() == "pool" or django_asgi:
            config["CONN_MAX_AGE"] = 0  # the pool keeps the connections
            config.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 16, "timeout": 30}
        else:
            config["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "60"))
            config["CONN_HEALTH_CHECKS"] = True
    elif config["ENGINE"].endswith("sqlite3"):
        config["CONN_MAX_AGE"] = 0 if django_asgi else int(os.environ.get("BENCH_CONN_MAX_AGE", "60"))
        # What a server on SQLite needs: readers beside a writer (WAL), and write
        # transactions that take the lock up front instead of failing to upgrade it.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    return config


DATABASES = {"default": _database()}


def _logging(config: dict[str, Any] | None) -> dict[str, Any]:
    """The testproject's logging with the per-request loggers at ``BENCH_ACCESS_LOG_LEVEL``.

    djfapi's ``djfapi.access`` and django-bolt's ``django_bolt`` (its request log).
    """
    config = dict(config or {"version": 1, "disable_existing_loggers": False})
    level = os.environ.get("BENCH_ACCESS_LOG_LEVEL", "WARNING")
    access = {"djfapi.access": {"level": level}, "django_bolt": {"level": level}}
    config["loggers"] = {**config.get("loggers", {}), **access}
    return config


LOGGING = _logging(getattr(base, "LOGGING", None))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["benchmarks.contenders.drf.auth.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["benchmarks.contenders.drf.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

DJFAPI = {key: value for key, value in base.DJFAPI.items() if key != "GC_THRESHOLD"}
if os.environ.get("BENCH_GC_THRESHOLD"):
    DJFAPI["GC_THRESHOLD"] = int(os.environ["BENCH_GC_THRESHOLD"])

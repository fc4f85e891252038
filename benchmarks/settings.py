"""Django settings of every contender, of the seeding and of the checks.

They extend ``testproject.settings`` (same models, same JWT settings) with what DRF
needs, and one database for all: an SQLite file in the work directory unless
``DATABASE_URL`` is set. ``BENCH_URLCONF`` selects the URL conf of a contender served
through Django's own ASGI handler.

Connections, so that the tables measure the frameworks rather than connection set-up:

* PostgreSQL: every contender uses Django's own psycopg connection pool (Django's
  advice under ASGI), returning its connection when the request ends.
* SQLite (no pool in Django): the FastAPI contenders keep each worker thread's
  connection for ``BENCH_CONN_MAX_AGE`` seconds (default 60); contenders in Django's
  ASGI handler (``BENCH_DJANGO_ASGI``) run each request in a thread of its own, where
  a kept connection could never be used again, so they close it (``CONN_MAX_AGE=0``),
  as Django's documentation says to under ASGI.

Logs: uvicorn's access log is off for every contender (``benchmarks.serve``), so
djfapi's own per-request line (the testproject logs each request on ``djfapi.access``
at INFO) is off too, or djfapi alone would pay for formatting and writing a log line;
``BENCH_ACCESS_LOG_LEVEL=INFO`` brings it back.
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

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework"]

ROOT_URLCONF = os.environ.get("BENCH_URLCONF", "testproject.urls")


def _database() -> dict[str, Any]:
    config: dict[str, Any] = dict(dj_database_url.config(default=f"sqlite:///{SQLITE_PATH}"))
    if config["ENGINE"].endswith("postgresql"):
        config["CONN_MAX_AGE"] = 0  # the pool keeps the connections
        config.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 16, "timeout": 30}
    elif config["ENGINE"].endswith("sqlite3"):
        django_asgi = os.environ.get("BENCH_DJANGO_ASGI") == "1"
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
    """The testproject's logging with the ``djfapi.access`` logger at ``BENCH_ACCESS_LOG_LEVEL``."""
    config = dict(config or {"version": 1, "disable_existing_loggers": False})
    level = os.environ.get("BENCH_ACCESS_LOG_LEVEL", "WARNING")
    config["loggers"] = {**config.get("loggers", {}), "djfapi.access": {"level": level}}
    return config


LOGGING = _logging(getattr(base, "LOGGING", None))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["benchmarks.contenders.drf.auth.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["benchmarks.contenders.drf.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

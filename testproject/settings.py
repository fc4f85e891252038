"""Django settings for the djfapi demo project.

Everything that differs between a laptop demo, the test suite and a deployment comes
from the environment, so that ``python -m testproject`` works with no set-up at all:
an SQLite file in the current directory unless ``DATABASE_URL`` says otherwise, and a
development JWT key unless ``DJFAPI_JWT_SECRET`` is set (the CLI warns about that).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent

# A development default keeps the demo runnable; deployments must set their own.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-djfapi-testproject-development-key")
DEBUG = os.environ.get("DJANGO_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "testproject.business",
    "djfapi",
    "djfapi.live",
    "djfapi.auth",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The admin is mounted by the FastAPI app under /admin; Django sees that as root_path.
ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


# DATABASE_URL switches the database (e.g. postgres://postgres@127.0.0.1:5432/djfapi);
# CONN_MAX_AGE=0 is what the connection-hygiene tests rely on. CONN_HEALTH_CHECKS=1
# makes Django test a persistent (or pooled) connection before reusing it.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{Path.cwd() / 'testproject.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0")),
        conn_health_checks=_env_flag("CONN_HEALTH_CHECKS"),
    ),
}

# PostgreSQL only, for the live connection tests and for deployments that want them:
# DJFAPI_DB_APPLICATION_NAME names the app's connections in pg_stat_activity, and
# DJFAPI_DB_POOL=1 switches to Django's own connection pool (psycopg_pool; needs
# CONN_MAX_AGE=0), sized by DJFAPI_DB_POOL_MIN_SIZE / DJFAPI_DB_POOL_MAX_SIZE, with
# DJFAPI_DB_POOL_TIMEOUT seconds to wait for a free connection (then a 503).
# SQLite: writers from several processes wait for each other (IMMEDIATE transactions,
# up to 20 s) instead of failing with "database is locked"; WAL lets readers go on while
# one writes. djfapi's system check djfapi.W001 asks for the transaction mode.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # Behind a transaction-pooling PgBouncer a server-side cursor (QuerySet.iterator())
    # cannot outlive its transaction: DJFAPI_DISABLE_SERVER_SIDE_CURSORS=1 turns them off. Django
    # already leaves psycopg's prepared statements off (OPTIONS "prepare_threshold": None).
    if _env_flag("DJFAPI_DISABLE_SERVER_SIDE_CURSORS"):
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    if os.environ.get("DJFAPI_DB_APPLICATION_NAME"):
        _options["application_name"] = os.environ["DJFAPI_DB_APPLICATION_NAME"]
    if _env_flag("DJFAPI_DB_POOL"):
        _options["pool"] = {
            "min_size": int(os.environ.get("DJFAPI_DB_POOL_MIN_SIZE", "0")),
            "max_size": int(os.environ.get("DJFAPI_DB_POOL_MAX_SIZE", "10")),
            "timeout": float(os.environ.get("DJFAPI_DB_POOL_TIMEOUT", "30")),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True

STATIC_URL = "/static/"

# HS256 wants a key of at least 32 bytes (PyJWT warns about shorter HMAC keys).
_DEVELOPMENT_JWT_KEY = "djfapi-testproject-development-jwt-key-do-not-use-in-production"
_JWT_KEY_FROM_ENV = os.environ.get("DJFAPI_JWT_SECRET", "")

USING_DEVELOPMENT_JWT_KEY: bool = not _JWT_KEY_FROM_ENV
"""True when the demo falls back to the public development key (tokens are forgeable)."""

DJFAPI = {
    "JWT_KEY": _JWT_KEY_FROM_ENV or _DEVELOPMENT_JWT_KEY,
    "JWT_ALGORITHMS": ["HS256"],
    "JWT_ISSUER": "testproject",
    "JWT_LEEWAY": 0,
}
# Worker threads of the generated endpoints per process (djfapi's default: 40). On
# SQLite every query runs inside this process, mostly holding the GIL: beyond a few
# threads they only take turns at it, and 16 requests at once ran up to 1.6x faster
# with 4 threads than with 40 (docs/deployment.md, "Worker threads").
if os.environ.get("DJFAPI_THREADPOOL_SIZE"):
    DJFAPI["THREADPOOL_SIZE"] = int(os.environ["DJFAPI_THREADPOOL_SIZE"])
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DJFAPI["THREADPOOL_SIZE"] = 4
# The garbage collector's young threshold (djfapi.ops.collector, docs/deployment.md): at
# 10,000 rather than 700, what a request or a waiting feed stream holds for a moment is
# freed before a collection sees it, and the full collections that pause the process
# come rarely (1,000 feed subscribers on PostgreSQL: delivery p99 67 -> 31 ms, and a
# write's p99 under that load 131 -> 11 ms; docs/live.md, "Under load").
# DJFAPI_GC_THRESHOLD=N sets another; DJFAPI_GC_THRESHOLD=default keeps the interpreter's.
_gc_threshold = os.environ.get("DJFAPI_GC_THRESHOLD", "10000")
if _gc_threshold != "default":
    DJFAPI["GC_THRESHOLD"] = int(_gc_threshold)
# Read bounds (benchmarks compare them with unbounded reads): items per nested list per
# object, and rows per response.
for _name in ("NESTED_LIST_LIMIT", "MAX_RESPONSE_ROWS"):
    if os.environ.get(f"DJFAPI_{_name}"):
        DJFAPI[_name] = int(os.environ[f"DJFAPI_{_name}"])
# The change feed (djfapi.live): DJFAPI_LIVE_REDIS_URL makes Redis pub/sub carry the
# wake-ups between processes (else PostgreSQL NOTIFY, or in-process on SQLite);
# DJFAPI_LIVE_POLL_INTERVAL / DJFAPI_LIVE_HEARTBEAT / DJFAPI_LIVE_CHANNEL tune it.
if os.environ.get("DJFAPI_LIVE_REDIS_URL"):
    DJFAPI["LIVE_REDIS_URL"] = os.environ["DJFAPI_LIVE_REDIS_URL"]
if os.environ.get("DJFAPI_LIVE_CHANNEL"):
    DJFAPI["LIVE_CHANNEL"] = os.environ["DJFAPI_LIVE_CHANNEL"]
# Behind a transaction-pooling PgBouncer: where the feed's LISTEN connection goes instead
# (e.g. "host=127.0.0.1 port=5432", straight to PostgreSQL; LISTEN needs a session).
if os.environ.get("DJFAPI_LIVE_LISTEN_DSN"):
    DJFAPI["LIVE_LISTEN_DSN"] = os.environ["DJFAPI_LIVE_LISTEN_DSN"]
for _name in ("LIVE_POLL_INTERVAL", "LIVE_HEARTBEAT"):
    if os.environ.get(f"DJFAPI_{_name}"):
        DJFAPI[_name] = float(os.environ[f"DJFAPI_{_name}"])

# Read replicas (djfapi.replicas): DJFAPI_READ_REPLICA_URL adds a "replica" database that
# generated reads use, except a caller's own reads for DJFAPI_REPLICA_PIN_SECONDS after
# a write. DJFAPI_CACHE_REDIS_URL puts Django's cache — and so those pins — in Redis,
# shared by every worker (else each process keeps its own).
if os.environ.get("DJFAPI_READ_REPLICA_URL"):
    DATABASES["replica"] = dj_database_url.parse(
        os.environ["DJFAPI_READ_REPLICA_URL"], conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0"))
    )
    DATABASES["replica"]["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}))
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["djfapi.replicas.ReplicaRouter"]
    DJFAPI["READ_REPLICAS"] = ["replica"]
    if os.environ.get("DJFAPI_REPLICA_PIN_SECONDS"):
        DJFAPI["REPLICA_PIN_SECONDS"] = float(os.environ["DJFAPI_REPLICA_PIN_SECONDS"])
if os.environ.get("DJFAPI_CACHE_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["DJFAPI_CACHE_REDIS_URL"],
        }
    }
# The token lifecycle (djfapi.auth, routes under /auth): tokens name the user by username,
# as the seeded employees do (user_id "demo-user"), and every demo user is in tenant "demo".
# Revocations reach the other processes by PostgreSQL NOTIFY, or Redis pub/sub with
# DJFAPI_AUTH_REDIS_URL, and at worst by a reload every DJFAPI_AUTH_REVOCATION_POLL_INTERVAL
# seconds (default 5).
DJFAPI["AUTH_SUBJECT_FIELD"] = "username"
DJFAPI["AUTH_TENANT"] = "testproject.tokens.user_tenant"
for _name in ("AUTH_REDIS_URL", "AUTH_CHANNEL"):
    if os.environ.get(f"DJFAPI_{_name}"):
        DJFAPI[_name] = os.environ[f"DJFAPI_{_name}"]
for _name in ("AUTH_REVOCATION_POLL_INTERVAL", "AUTH_ACCESS_LIFETIME"):
    if os.environ.get(f"DJFAPI_{_name}"):
        DJFAPI[_name] = float(os.environ[f"DJFAPI_{_name}"])

# Rate limits (djfapi.ratelimit): DJFAPI_RATE_LIMIT_STORAGE=redis://127.0.0.1:6379/0 shares
# the counters between processes (else they are in-process: right for one worker only);
# DJFAPI_RATE_LIMITS_ENABLED=0 turns every limit off. The demo's own limits (testproject.api)
# come from DEMO_RATE_LIMITS: reads and writes of the company tree per token subject, and
# the public directory per client address; DJFAPI_DEMO_READ_LIMIT etc. override them.
if os.environ.get("DJFAPI_RATE_LIMIT_STORAGE"):
    DJFAPI["RATE_LIMIT_STORAGE"] = os.environ["DJFAPI_RATE_LIMIT_STORAGE"]
if os.environ.get("DJFAPI_RATE_LIMITS_ENABLED"):
    DJFAPI["RATE_LIMITS_ENABLED"] = _env_flag("DJFAPI_RATE_LIMITS_ENABLED")
DEMO_RATE_LIMITS = {
    "read": os.environ.get("DJFAPI_DEMO_READ_LIMIT", "600/minute"),
    "write": os.environ.get("DJFAPI_DEMO_WRITE_LIMIT", "120/minute"),
    "directory": os.environ.get("DJFAPI_DEMO_DIRECTORY_LIMIT", "30/minute"),
}

# Logs: one line per request on the djfapi.access logger (RequestContextMiddleware),
# as text by default, as JSON lines with DJFAPI_LOG_FORMAT=json; DJFAPI_LOG_LEVEL sets
# the level (INFO by default; WARNING silences the per-request lines).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "djfapi.ops.logs.JSONFormatter"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json" if os.environ.get("DJFAPI_LOG_FORMAT", "text") == "json" else "text",
        },
    },
    "loggers": {
        "djfapi": {"handlers": ["stderr"], "level": os.environ.get("DJFAPI_LOG_LEVEL", "INFO")},
    },
}

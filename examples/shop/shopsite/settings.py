"""Settings of the shop example: `django-admin startproject shopsite` plus what djfapi needs."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-shop-example-development-key")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "catalog",
    "djfapi",  # manage.py djfapi_token, and djfapi's system checks
    "djfapi.live",  # the change feed (subscribe=True): its outbox table, created by migrate
    "djfapi.auth",  # login, refresh, logout and revocation of tokens (/auth/...): its tables
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

ROOT_URLCONF = "shopsite.urls"

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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        # SQLite has one writer at a time. IMMEDIATE transactions make a second writer
        # wait its turn (up to `timeout` seconds) instead of failing at once with
        # "database is locked"; djfapi's system check djfapi.W001 asks for it.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}

# The example's CI also runs it on PostgreSQL: DATABASE_URL=postgres://... (read by
# dj-database-url when it is installed; without it, the SQLite database above).
if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    try:
        import dj_database_url
    except ImportError:
        pass
    else:
        DATABASES["default"] = dj_database_url.parse(os.environ["DATABASE_URL"])

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

DJFAPI = {
    # The key that signs and verifies the API's JWTs. HS256 needs at least 32 bytes, or
    # the app refuses to start. Make one with:
    #   python -c "import secrets; print(secrets.token_urlsafe(64))"
    "JWT_KEY": os.environ.get("SHOP_JWT_KEY", "shop-example-development-key-not-for-production-use"),
    "JWT_ALGORITHMS": ["HS256"],
    "JWT_ISSUER": "shopsite",
    # Tokens issued at /auth/token (djfapi.auth): `sub` is the username, as the owner of a
    # shop or a review; the marketplace (`ten`) is the user's group "marketplace:<name>";
    # the scopes are what the user's groups grant here.
    "AUTH_SUBJECT_FIELD": "username",
    "AUTH_TENANT": "catalog.auth.marketplace",
    "AUTH_GROUP_SCOPES": {
        "shopkeepers": ["shop.shops.read.own", "shop.shops.create", "shop.shops.update.own", "shop.shops.delete.own"],
        "customers": ["shop.shops.read.any", "shop.reviews.create", "shop.reviews.update.own"],
    },
    # Rate-limit counters: in this process (one worker). With several, share them in Redis:
    # "RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0",
    # The garbage collector's young threshold (700 by default), set by create_app: the
    # product feed's waiting streams and requests in flight are freed before a collection
    # sees them, so the full collections that pause the process come rarely.
    "GC_THRESHOLD": 10_000,
}

# Past one process (djfapi's docs, "Past one process"). Behind a transaction-pooling
# PgBouncer the change feed's LISTEN needs a direct route to PostgreSQL: SHOP_LISTEN_DSN,
# e.g. "host=db-primary port=5432". SHOP_REPLICA_URL names a streaming replica that
# generated reads use, except a caller's own for REPLICA_PIN_SECONDS after a write; the
# router sends every read to the primary while READ_REPLICAS is empty.
DATABASE_ROUTERS = ["djfapi.replicas.ReplicaRouter"]
DJFAPI["READ_REPLICAS"] = []
DJFAPI["REPLICA_PIN_SECONDS"] = 5
if os.environ.get("SHOP_LISTEN_DSN"):
    DJFAPI["LIVE_LISTEN_DSN"] = os.environ["SHOP_LISTEN_DSN"]
if os.environ.get("SHOP_REPLICA_URL"):
    import dj_database_url

    DATABASES["replica"] = {**dj_database_url.parse(os.environ["SHOP_REPLICA_URL"]), "TEST": {"MIRROR": "default"}}
    DJFAPI["READ_REPLICAS"] = ["replica"]

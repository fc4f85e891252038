"""myproject/settings.py (excerpt): PgBouncer in front, a streaming replica for reads."""

import os

DATABASES = {
    "default": {  # the primary, through PgBouncer (pool_mode = transaction)
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "pgbouncer.internal",
        "PORT": 6432,
        "NAME": "shop",
        "USER": "shop",
        "PASSWORD": os.environ["DB_PASSWORD"],
        "CONN_MAX_AGE": 0,  # PgBouncer pools; each request borrows a client connection
        "DISABLE_SERVER_SIDE_CURSORS": True,  # a cursor cannot outlive its transaction
        "OPTIONS": {"connect_timeout": 5},  # no "options": PgBouncer does not forward them
    },
    "replica": {  # a hot standby of the primary (its own PgBouncer, or direct)
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "replica-1.internal",
        "PORT": 5432,
        "NAME": "shop",
        "USER": "shop",
        "PASSWORD": os.environ["DB_PASSWORD"],
        "OPTIONS": {"connect_timeout": 5},
        "TEST": {"MIRROR": "default"},  # the test suite reads what it writes
    },
}
DATABASE_ROUTERS = ["djfapi.replicas.ReplicaRouter"]

# One cache for every worker on every host: a caller's write pins its reads everywhere.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://redis.internal:6379/1",
    }
}

DJFAPI = {
    "JWT_KEY": os.environ["JWT_PUBLIC_KEY"],
    "JWT_ALGORITHMS": ["RS256"],
    # The feed's LISTEN needs a session: past PgBouncer, straight to the primary.
    "LIVE_LISTEN_DSN": "host=db-primary.internal port=5432",
    "READ_REPLICAS": ["replica"],
    "REPLICA_PIN_SECONDS": 5,  # longer than the replica's lag ever is
    "THREADPOOL_SIZE": 20,  # per worker: at most 20 client connections to PgBouncer
}

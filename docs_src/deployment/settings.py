"""myproject/settings.py (excerpt): everything djfapi reads lives in one setting."""

import os

PUBLIC_KEY_NEW = os.environ["JWT_PUBLIC_KEY_2026_11"]  # PEM public keys of the token issuer
PUBLIC_KEY_OLD = os.environ["JWT_PUBLIC_KEY_2026_05"]

DJFAPI = {
    "JWT_KEY": {"2026-11": PUBLIC_KEY_NEW, "2026-05": PUBLIC_KEY_OLD},  # or one key
    "JWT_ALGORITHMS": ["RS256"],
    "JWT_ISSUER": "https://auth.example.com",
    "JWT_LEEWAY": 30,  # seconds of clock skew
    "PAGINATION": {"default_limit": 100, "max_limit": 1000},  # per node: pagination_options
    "THREADPOOL_SIZE": 40,  # per process
    "GC_THRESHOLD": 10_000,  # the garbage collector's young threshold, applied by create_app
    "MAX_BODY_SIZE": 1024 * 1024,  # bytes per request body
    "MAX_QUERY_LENGTH": 8192,  # bytes per query string, as sent
    "MAX_QUERY_PARAMETERS": 100,  # fields per query string
    "MAX_FILTER_LENGTH": 1000,  # characters per filter value
    "NESTED_LIST_LIMIT": 100,  # items per nested list per object in a read; per node: nested_limit
    "MAX_RESPONSE_ROWS": 10_000,  # rows per read, nested ones included
    "MAX_NESTED_ITEMS": 1000,  # items per nested list in a write
    "MAX_WRITE_ROWS": 5000,  # rows per write, nested ones and bulk items included
    "HEALTH_TIMEOUT": 2,  # seconds for /health/ready
    "SENTRY_DSN": os.environ.get("SENTRY_DSN"),  # used by init_sentry()
}

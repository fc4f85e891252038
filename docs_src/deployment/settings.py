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
    "MAX_BODY_SIZE": 1024 * 1024,  # bytes per request body
    "HEALTH_TIMEOUT": 2,  # seconds for /health/ready
    "SENTRY_DSN": os.environ.get("SENTRY_DSN"),  # used by init_sentry()
}

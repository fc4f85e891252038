"""Settings for the test suite: the testproject's, plus test-only apps.

The database comes from ``DATABASE_URL`` exactly as for the demo: unset means SQLite,
a ``postgres://`` URL runs the same suite on PostgreSQL.

The SQLite test database is a file, not Django's shared in-memory database: tests of
concurrent writers need SQLite's real locking (an in-memory shared cache answers
"table is locked" at once instead of waiting), and ``transaction_mode=IMMEDIATE`` makes
a writer wait for the one before it, as a production SQLite set-up should.
"""

import os
import tempfile

from testproject.settings import *  # noqa: F403
from testproject.settings import DATABASES, INSTALLED_APPS

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"djfapi-tests-{os.getpid()}.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp.apps.TestAppConfig"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Rate limits are off for the suite (thousands of requests by one token subject); the tests
# of limits turn them on (tests/test_ratelimit.py, tests/test_demo_limits.py).
DJFAPI = {**DJFAPI, "RATE_LIMITS_ENABLED": False}  # noqa: F405
# No background reload of the revoked tokens during the suite (djfapi.auth): it would run
# queries at random moments of tests that count them. Revocations still apply at once in
# the process; tests/test_auth_processes.py sets the interval of its servers itself.
DJFAPI["AUTH_REVOCATION_POLL_INTERVAL"] = 3600

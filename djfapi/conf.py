"""djfapi's settings: one ``DJFAPI = {...}`` dict in the Django settings.

Keys read so far: ``JWT_KEY`` (one key, or ``{kid: key}`` for rotation),
``JWT_ALGORITHMS`` (list, default ``["HS256"]``), ``JWT_ISSUER`` (checked when set),
``JWT_LEEWAY`` (seconds, default 0), ``JWT_SIGNING_KEY`` (what ``mint_token`` and
``manage.py djfapi_token`` sign with when ``JWT_KEY`` cannot: a private key),
``PAGINATION`` (``default_limit``, ``max_limit``, ``max_offset``),
``EXACT_COUNT_BELOW`` (``?total=estimate`` counts exactly under this estimate, default 1000),
``THREADPOOL_SIZE`` (worker threads of generated endpoints per process, default 40),
``GC_THRESHOLD`` (the garbage collector's young threshold, applied by ``create_app``;
default: the interpreter's, see ``djfapi.ops.collector``),
``MAX_BODY_SIZE`` (bytes per request body of generated routes, default 1 MiB),
``MAX_NESTED_ITEMS`` (items per nested list in one write, default 1000),
``MAX_QUERY_LENGTH`` (bytes of a query string as sent, default 8 KiB),
``MAX_QUERY_PARAMETERS`` (parameters per query string, default 100),
``MAX_FILTER_LENGTH`` (characters per filter value, default 1000),
``HEALTH_TIMEOUT`` (seconds, default 2), ``SENTRY_DSN``,
``ROLE_SCOPES`` (``{role: [scope, ...]}``: what the ``rls`` claim grants),
``RATE_LIMIT_STORAGE``, ``RATE_LIMIT_STRATEGY``, ``RATE_LIMITS_ENABLED``,
``RATE_LIMIT_FAIL_OPEN`` (``djfapi.ratelimit``), the ``AUTH_*`` keys of the token
lifecycle (``djfapi.auth``) and ``METRICS_TENANT_LABEL`` (``djfapi.ops.metrics``); read
replicas (``djfapi.replicas``): ``READ_REPLICAS``, ``PRIMARY_DATABASE``,
``REPLICA_PIN_SECONDS``, ``REPLICA_PIN_CACHE``; the change feed's ``LIVE_*`` keys
(``djfapi.live``).
Arguments given to a ``JWTToken`` or a router schema take precedence.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: The model field that holds a row's tenant: filtered by default, set from the token on create.
TENANT_FIELD = "tenant_id"


def setting(name: str, default: Any = None) -> Any:
    """``settings.DJFAPI[name]``, or ``default`` when unset."""
    return getattr(settings, "DJFAPI", {}).get(name, default)

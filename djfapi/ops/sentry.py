"""Sentry, through sentry-sdk's own FastAPI/Starlette and Django integrations.

``init_sentry()`` (or ``init_sentry(dsn=...)``) is the one call: it reads
``DJFAPI["SENTRY_DSN"]`` when no DSN is given and does nothing without one. Then:

* 5xx responses and unhandled exceptions are sent; 4xx responses are not (they are the
  caller's mistakes, answered as designed);
* each event carries the caller's ``user_id``, ``tenant_id`` and matched ``scope`` as
  tags — never the token: no request bodies, no local variables, no ``Authorization``
  or cookie headers are sent, and anything shaped like a JWT is filtered out;
* the error body of a reported 5xx carries the ``event_id`` (SPEC §7), so a user's
  support request leads straight to the event.

Needs the ``sentry`` extra: ``pip install djfapi[sentry]``.
"""

from __future__ import annotations

import re
from typing import Any

from djfapi.conf import setting
from djfapi.ops.context import Caller, on_access

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}
FILTERED = "[Filtered]"


def init_sentry(dsn: str | None = None, **options: Any) -> bool:
    """Enable Sentry; False (and nothing done) when there is no DSN. ``options`` go to ``sentry_sdk.init``."""
    dsn = dsn or setting("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    server_errors = set(range(500, 600))
    sentry_sdk.init(
        dsn=dsn,
        integrations=[
            StarletteIntegration(failed_request_status_codes=server_errors),
            FastApiIntegration(failed_request_status_codes=server_errors),
            DjangoIntegration(),
        ],
        max_request_body_size="never",  # and send_default_pii stays at its default, False
        include_local_variables=False,
        before_send=scrub,
        **options,
    )
    on_access(_tag)
    return True


def _active() -> bool:
    try:
        import sentry_sdk
    except ImportError:
        return False
    return sentry_sdk.get_client().is_active()


def _tag(caller: Caller) -> None:
    if not _active():
        return
    import sentry_sdk

    scope = sentry_sdk.get_isolation_scope()
    scope.set_tag("user_id", caller.user_id)
    scope.set_tag("tenant_id", caller.tenant_id)
    if caller.scope is not None:
        scope.set_tag("scope", caller.scope)


def report(error: BaseException) -> str | None:
    """The Sentry event id of a 5xx error; None when Sentry is not enabled.

    The Starlette integration captures HTTP-status errors before their handler runs;
    capturing again is then dropped by Sentry's dedupe, and the first event's id is the
    isolation scope's last one. An unhandled exception is captured here first, and the
    integration's own later capture of it is the duplicate.
    """
    if not _active():
        return None
    import sentry_sdk

    return sentry_sdk.capture_exception(error) or sentry_sdk.last_event_id()


def scrub(event: Any, hint: dict[str, Any]) -> Any:
    """``before_send``: drop secret headers and cookies, and filter JWT-shaped strings anywhere."""
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: (FILTERED if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}
        request.pop("cookies", None)
        request.pop("data", None)
    return _filter_tokens(event)


def _filter_tokens(value: Any) -> Any:
    if isinstance(value, str):
        return _JWT.sub(FILTERED, value)
    if isinstance(value, dict):
        return {key: _filter_tokens(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_filter_tokens(item) for item in value]
    return value

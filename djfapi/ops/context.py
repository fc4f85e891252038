"""Who a request is for, as far as djfapi knows, for logs and error reports.

The generated endpoints record the caller on the ASGI scope (``scope["state"]``) once
the token is verified and again once the route's scope is matched; the access log and
Sentry read it from there. Nothing here stores the token itself.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from djfapi.schemas.access import Access, AccessToken

STATE_KEY = "djfapi_caller"

_request: ContextVar[MutableMapping[str, Any] | None] = ContextVar("djfapi_request", default=None)


def enter_request(scope: MutableMapping[str, Any]) -> None:
    """A generated endpoint starts serving the request of this ASGI ``scope`` (in its worker thread).

    Each call runs in a copy of the request's context, so this marks that call alone;
    code that runs outside generated endpoints (the feed, the admin, commands) sees None.
    """
    _request.set(scope)


def current_request() -> MutableMapping[str, Any] | None:
    """The ASGI scope of the request a generated endpoint is serving here, if any (the replica router asks)."""
    return _request.get()


@dataclass
class Caller:
    user_id: str | None = None
    tenant_id: str | None = None
    scope: str | None = None


def caller_of(scope: MutableMapping[str, Any]) -> Caller:
    """The request's ``Caller`` record (created empty on first use)."""
    state = scope.setdefault("state", {})
    caller = state.get(STATE_KEY)
    if caller is None:
        caller = state[STATE_KEY] = Caller()
    return caller


def record_token(scope: MutableMapping[str, Any], token: AccessToken) -> None:
    """The token is verified: remember whose it is."""
    caller = caller_of(scope)
    caller.user_id = token.sub
    caller.tenant_id = token.ten


def record_access(scope: MutableMapping[str, Any], access: Access) -> None:
    """The route's scope is matched: remember which one (and tell Sentry, when it runs)."""
    caller = caller_of(scope)
    caller.user_id = access.user_id
    caller.tenant_id = access.tenant_id
    caller.scope = str(access.scope) if access.scope is not None else None
    for listener in _listeners:
        listener(caller)


_listeners: list[Callable[[Caller], None]] = []


def on_access(listener: Callable[[Caller], None]) -> None:
    """Call ``listener`` whenever a request's caller is known (the Sentry integration uses it)."""
    if listener not in _listeners:
        _listeners.append(listener)

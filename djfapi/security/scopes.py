"""Match the scopes a route accepts against the scopes a caller holds."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from djfapi.errors import PermissionDenied
from djfapi.schemas.access import Access, AccessScope, AccessToken


def validate_scope(scope: str) -> str:
    """``scope`` unchanged, or a ValueError naming the expected form."""
    AccessScope.from_str(scope)
    return scope


def grant(
    token: AccessToken, granted: Collection[str], required: Sequence[str] | None, *, public: bool = False
) -> Access:
    """The caller's ``Access`` for a route accepting ``required`` (any of them).

    ``access.scope`` is the first required scope the caller holds, in declared order,
    so listing ``...read.any`` before ``...read.own`` gives ``any`` to those who hold both.
    An empty ``required`` means any valid token will do. Holding none is a 403, except
    on a ``public`` operation, where the caller goes on with ``scope`` ``None``.
    """
    granted = frozenset(granted)
    if not required:
        return Access(token=token, scope=None, granted_scopes=granted)
    for scope in required:
        if scope in granted:
            return Access(token=token, scope=AccessScope.from_str(scope), granted_scopes=granted)
    if public:
        return Access(token=token, scope=None, granted_scopes=granted)
    raise PermissionDenied(
        "The token holds none of the scopes this operation requires.",
        code="required_scope_missing",
        detail={"required_scopes": list(required)},
    )

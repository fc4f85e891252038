"""DRF authentication and permission classes for the benchmark's JWT.

``JWTAuthentication`` accepts the same bearer token as djfapi (verified with PyJWT by
``benchmarks.contenders.common``); ``HasScope`` admits reads with a ``read`` scope and
writes with an ``update`` scope, as the testproject's routes do for departments.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions

from benchmarks.contenders.common import READ, WRITE, InvalidToken, admit, verify


class TokenUser:
    """The request's ``user``: DRF wants one; the token's subject is all there is."""

    is_authenticated = True

    def __init__(self, claims: dict[str, Any]) -> None:
        self.id = claims["sub"]


class JWTAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[TokenUser, dict[str, Any]] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        try:
            claims = verify(header)
        except InvalidToken as error:
            raise exceptions.AuthenticationFailed(str(error)) from None
        return TokenUser(claims), claims

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"


class HasScope(permissions.BasePermission):
    """Sets ``request.caller`` (the token with its admitting scope) for the views' querysets."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.auth is None:
            return False
        caller = admit(request.auth, READ if request.method in permissions.SAFE_METHODS else WRITE)
        request.caller = caller
        return caller is not None

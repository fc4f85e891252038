"""``auth_router()``: the token lifecycle as FastAPI routes.

=====================================  ==================================================
``POST {prefix}/token``                 ``{"username", "password"}`` -> a new pair (login)
``POST {prefix}/refresh``               ``{"refresh_token"}`` -> a new pair (rotation)
``POST {prefix}/logout``                bearer access token -> 204; it and its family revoked
``POST {prefix}/revoke``                ``{"jti"}`` or ``{"family"}`` -> 204 (scope ``auth.tokens.revoke``)
``GET {prefix}/jwks.json``              the public verification keys (JSON Web Key Set)
=====================================  ==================================================

Login is rate limited against brute force (``djfapi.ratelimit``, counted as every other
limit): ``DJFAPI["AUTH_LOGIN_LIMITS"]``, default ``{"address": "10/minute", "username":
"5/minute"}`` — per client address, and per username whatever address it comes from.
Every attempt counts, good or bad; beyond a limit the answer is 429 with ``Retry-After``.
"""

import datetime
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Security
from fastapi.responses import Response

from djfapi import BaseModel, Field
from djfapi.auth import tokens
from djfapi.auth.jwks import jwks
from djfapi.conf import setting
from djfapi.errors import AuthenticationFailed, NotFound, ValidationFailed
from djfapi.ratelimit import Policy, RateLimit, RouteLimits, limiter
from djfapi.routing.route import DjfapiRoute
from djfapi.schemas.access import Access, AccessToken
from djfapi.security.jwt import JWTToken
from djfapi.utils.fastapi_django import request_signalling, run_signalled

__all__ = ["auth_router"]

REVOKE_SCOPE = "auth.tokens.revoke"
DEFAULT_LOGIN_LIMITS = {"address": "10/minute", "username": "5/minute"}


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=4096)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=8192)


class RevokeRequest(BaseModel):
    jti: str | None = Field(None, max_length=255, description="A token id to refuse until it expires")
    family: str | None = Field(None, max_length=64, description="A token family to revoke (all of its tokens)")
    expires_at: datetime.datetime | None = Field(
        None, description="When the token expires (default: now + the refresh lifetime, the longest a token lives)"
    )


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_expires_in: int = Field(description="Seconds the refresh token is valid (for one exchange)")
    scope: list[str] = Field(description="The scopes the access token holds")


class JWKS(BaseModel):
    keys: list[dict[str, Any]]


def _login_limits() -> RouteLimits:
    configured: Mapping[str, str] = setting("AUTH_LOGIN_LIMITS", DEFAULT_LOGIN_LIMITS)
    return RouteLimits(
        tuple(
            Policy(f"auth.login.{key}", RateLimit(limit, key="address"))
            for key, limit in configured.items()
            if key in ("address", "username")
        )
    )


def _pair(pair: tokens.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        refresh_expires_in=pair.refresh_expires_in,
        scope=pair.scope,
    )


def auth_router(
    *,
    prefix: str = "/auth",
    security: JWTToken | None = None,
    claims: tokens.ClaimsFunction | None = None,
    tags: Sequence[str] = ("auth",),
) -> APIRouter:
    """The token routes (see the module docstring); ``security`` verifies the tokens they take."""
    security = security or JWTToken()
    router = APIRouter(prefix=prefix, tags=list(tags), route_class=DjfapiRoute)
    login = request_signalling(tokens.login)
    rotate = request_signalling(tokens.rotate)
    logout = request_signalling(tokens.logout)
    revoke_jti = request_signalling(tokens.revoke_jti)
    revoke_family = request_signalling(tokens.revoke_family)

    responses: dict[int | str, dict[str, Any]] = {
        401: {"description": "Wrong credentials, or a refresh token that is invalid, revoked or reused."},
    }

    @router.post(
        "/token",
        response_model=TokenResponse,
        operation_id="auth_login",
        summary="Log in: a new access and refresh token",
        responses={**responses, 429: {"description": "Too many login attempts (per address or username)."}},
    )
    async def auth_login(request: Request, body: Annotated[LoginRequest, Body()]) -> TokenResponse:
        """Checks the password through Django's authentication backends; the scopes come from the user's
        permissions and groups. Rate limited per client address and per username."""
        limits = _login_limits()
        if limiter.enabled() and limits.policies:
            keys = {
                policy.name: ("u:" + body.username.lower()) if policy.name.endswith(".username") else None
                for policy in limits.policies
            }
            await limiter.check(limits, request, None, keys=keys)
        pair = await run_signalled(login, username=body.username, password=body.password, claims=claims)
        return _pair(pair)

    @router.post(
        "/refresh",
        response_model=TokenResponse,
        operation_id="auth_refresh",
        summary="Exchange a refresh token for a new pair",
        responses=responses,
    )
    async def auth_refresh(body: Annotated[RefreshRequest, Body()]) -> TokenResponse:
        """A refresh token is good for one exchange; presenting it again revokes its whole family (401
        `refresh_token_reused`)."""
        refresh = read_refresh_token(security, body.refresh_token)
        pair = await run_signalled(rotate, refresh=refresh, claims=claims)
        return _pair(pair)

    @router.post(
        "/logout",
        status_code=204,
        operation_id="auth_logout",
        summary="Log out: revoke this access token and its family",
        responses=responses,
    )
    async def auth_logout(token: Annotated[AccessToken, Security(security.bearer)]) -> Response:
        """Every process refuses the token (and the tokens of its family) within the documented bound."""
        await run_signalled(logout, token=token)
        return Response(status_code=204)

    @router.post(
        "/revoke",
        status_code=204,
        operation_id="auth_revoke",
        summary="Revoke a token by its jti, or a token family",
        responses={
            **responses,
            403: {"description": f"The token lacks the scope `{REVOKE_SCOPE}`."},
            404: {"description": "No token family has this id."},
        },
    )
    async def auth_revoke(
        access: Annotated[Access, Security(security, scopes=[REVOKE_SCOPE])],
        body: Annotated[RevokeRequest, Body()],
    ) -> Response:
        """For administrators: refuse any token by its `jti` (issued here or not), or revoke a family."""
        if body.jti is None and body.family is None:
            raise ValidationFailed("give a jti or a family to revoke", loc=("body",))
        if body.jti is not None:
            expires = body.expires_at or datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                seconds=max(tokens.refresh_lifetime(), tokens.access_lifetime())
            )
            await run_signalled(revoke_jti, jti=body.jti, expires_at=expires, reason="admin")
        if body.family is not None and not await run_signalled(revoke_family, family_id=body.family, reason="admin"):
            raise NotFound("No token family has this id.", code="not_exist:tokenfamily")
        return Response(status_code=204)

    @router.get("/jwks.json", response_model=JWKS, operation_id="auth_jwks", summary="The public verification keys")
    async def auth_jwks() -> dict[str, Any]:
        """The JSON Web Key Set of the asymmetric verification keys, with their `kid` (empty with HMAC keys)."""
        return jwks(security)

    return router


def read_refresh_token(security: JWTToken, raw: str) -> AccessToken:
    """A refresh token verified with the project's keys (401 ``refresh_token_invalid`` when it is none)."""
    try:
        token = security.verify_signature(raw)
    except AuthenticationFailed as error:
        codes = {"token_expired": "refresh_token_expired", "token_revoked": "refresh_token_revoked"}
        code = codes.get(error.code or "", "refresh_token_invalid")
        raise AuthenticationFailed(f"The refresh token is not valid: {error.message}", code=code) from None
    if (token.model_extra or {}).get("typ") != "refresh" or not token.jti:
        raise AuthenticationFailed("This is not a refresh token.", code="refresh_token_invalid")
    return token

"""Mint signed JWTs for the demo and the tests, with the claims djfapi reads (SPEC §4).

A thin layer over ``djfapi.security.tokens.mint_token``, which signs with the same
settings the library verifies with (``settings.DJFAPI``), so a minted token is accepted
by the running demo. The time arguments may put the token outside its validity window
on purpose (negative ``expires``, positive ``not_before``) to try the 401 paths.
"""

from __future__ import annotations

from collections.abc import Iterable

from djfapi.security import tokens

ALL_SCOPES: tuple[str, ...] = (
    "business.companies.read.any",
    "business.companies.read.own",
    "business.companies.create",
    "business.companies.update.any",
    "business.companies.update.own",
    "business.companies.delete.any",
    "business.companies.delete.own",
)
"""Every scope the demo API declares, in its declared order (``any`` before ``own``)."""


def user_tenant(user: object) -> str:
    """The tenant of a demo user's tokens (``DJFAPI["AUTH_TENANT"]``): every demo user is in ``demo``."""
    return "demo"


def mint_token(
    *,
    tenant: str,
    user: str,
    scopes: Iterable[str],
    critical: bool = False,
    expires: int = 3600,
    not_before: int | None = None,
    issuer: str | None = None,
) -> str:
    """Return a signed token for ``user`` in ``tenant`` granting ``scopes``.

    ``expires`` is seconds from now (negative: already expired); ``not_before`` is
    seconds from now for ``nbf`` (``None``: valid immediately); ``issuer`` overrides the
    configured ``JWT_ISSUER`` (to try a wrong-issuer 401). The demo always has a tenant,
    so unlike the library function ``tenant`` is a string here.
    """
    return tokens.mint_token(
        tenant=tenant,
        user=user,
        scopes=scopes,
        critical=critical,
        expires=expires,
        not_before=not_before,
        issuer=issuer,
    )

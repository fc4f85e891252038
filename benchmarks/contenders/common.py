"""What every hand-written contender shares with djfapi: the token and the row filter.

Tokens are verified with PyJWT against the testproject's ``DJFAPI`` settings (same
key, algorithms and issuer, ``exp`` and ``sub`` required), as djfapi's ``JWTToken``
does; scopes are the ``aud`` claim. Companies are filtered like
``testproject.api.company_objects_filter``: the caller's tenant, not soft-deleted,
and with an ``own`` scope only companies the caller owns or administers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from testproject.business.models import Company, Employee

READ = ("business.companies.read.any", "business.companies.read.own")
WRITE = ("business.companies.update.any", "business.companies.update.own")


class InvalidToken(Exception):
    """The request carries no valid bearer token (a 401)."""


@dataclass(frozen=True)
class Caller:
    """A verified token and the scope (of those a route accepts) it was admitted with."""

    claims: dict[str, Any]
    scope: str

    @property
    def tenant_id(self) -> str:
        return self.claims["ten"]

    @property
    def any(self) -> bool:
        return self.scope.endswith(".any")

    def has(self, scope: str) -> bool:
        return scope in self.claims.get("aud", ())


@cache
def _verification() -> tuple[Any, list[str], str | None, float]:
    config = settings.DJFAPI
    return config["JWT_KEY"], list(config["JWT_ALGORITHMS"]), config.get("JWT_ISSUER"), config.get("JWT_LEEWAY", 0)


def verify(authorization: str | None) -> dict[str, Any]:
    """The claims of an ``Authorization: Bearer <jwt>`` header value."""
    scheme, _, raw = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not raw:
        raise InvalidToken("missing bearer token")
    return decode(raw.strip())


def decode(raw: str) -> dict[str, Any]:
    key, algorithms, issuer, leeway = _verification()
    try:
        return jwt.decode(
            raw,
            key,
            algorithms=algorithms,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "sub"], "verify_aud": False, "verify_sub": False},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None


def admit(claims: dict[str, Any], accepted: Sequence[str]) -> Caller | None:
    """The caller with the first accepted scope they hold, or None (a 403)."""
    granted = set(claims.get("aud", ()))
    scope = next((scope for scope in accepted if scope in granted), None)
    return None if scope is None else Caller(claims, scope)


def visible_companies(caller: Caller) -> QuerySet[Company]:
    """The companies ``caller`` may see (or change, for a write scope)."""
    companies = Company.objects.filter(tenant_id=caller.tenant_id).exclude(status=Company.Status.DELETED)
    if not caller.any:
        owned = Employee.objects.filter(
            company=OuterRef("pk"),
            user_id=caller.claims["sub"],
            type__in=[Employee.Type.OWNER, Employee.Type.ADMIN],
        )
        companies = companies.filter(Exists(owned))
    return companies

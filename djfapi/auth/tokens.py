"""Issuing, rotating and revoking tokens (sync: runs in djfapi's signalled worker threads).

* ``login``: checks a username and password through Django's authentication backends
  (``django.contrib.auth.authenticate``: any backend works) and starts a **family**
  with an access + refresh pair.
* ``rotate``: exchanges a refresh token for a new pair of the same family. A refresh
  token is good for one exchange: presenting one that was already exchanged is a
  **reuse** (it was copied), which revokes the whole family — every refresh token and,
  through the ``fam`` claim, every access token issued in it — and is a 401
  ``refresh_token_reused``.
* ``logout`` revokes an access token's ``jti`` and its family; ``revoke_jti``,
  ``revoke_family`` and ``revoke_user`` revoke by id (``revoke_user`` runs by itself
  when a user is made inactive).

Access tokens carry ``sub`` (the user's ``DJFAPI["AUTH_SUBJECT_FIELD"]``, default the
primary key), ``ten``, ``aud`` (scopes) and ``rls`` (roles) from the claims mapping
(``djfapi.auth.claims``), ``jti``, ``fam`` and ``typ: "access"``; refresh tokens
``sub``, ``jti``, ``fam`` and ``typ: "refresh"``, and are refused where an access token
is expected. Lifetimes: ``DJFAPI["AUTH_ACCESS_LIFETIME"]`` (seconds, default 300) and
``DJFAPI["AUTH_REFRESH_LIFETIME"]`` (default 14 days). Tokens are signed as
``mint_token`` signs (``JWT_SIGNING_KEY`` or ``JWT_KEY``, the first of ``JWT_ALGORITHMS``)
and verified by every ``JWTToken`` of the project.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from djfapi.auth import revocation
from djfapi.auth.claims import user_claims
from djfapi.auth.models import RefreshToken, RevokedToken, TokenFamily
from djfapi.conf import setting
from djfapi.errors import AuthenticationFailed
from djfapi.schemas.access import AccessToken
from djfapi.security.tokens import sign

ClaimsFunction = Callable[[Any], Mapping[str, Any]]


def access_lifetime() -> int:
    return int(setting("AUTH_ACCESS_LIFETIME", 300))


def refresh_lifetime() -> int:
    return int(setting("AUTH_REFRESH_LIFETIME", 14 * 24 * 3600))


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    scope: list[str]
    token_type: str = "bearer"


def _subject(user: Any) -> str:
    return str(getattr(user, str(setting("AUTH_SUBJECT_FIELD", "pk"))))


def issue_pair(user: Any, family: TokenFamily | None = None, claims: ClaimsFunction | None = None) -> TokenPair:
    """A new access + refresh pair for ``user`` (in a new family unless ``family`` is given)."""
    now = timezone.now()
    access_expires = now + datetime.timedelta(seconds=access_lifetime())
    refresh_expires = now + datetime.timedelta(seconds=refresh_lifetime())
    with transaction.atomic():
        if family is None:
            family = TokenFamily.objects.create(
                id=uuid.uuid4().hex, user=user, created_at=now, expires_at=refresh_expires
            )
        else:
            family.expires_at = max(refresh_expires, access_expires)
            family.save(update_fields=["expires_at"])
        refresh_jti = uuid.uuid4().hex
        RefreshToken.objects.create(jti=refresh_jti, family=family, issued_at=now, expires_at=refresh_expires)
    mapped = dict((claims or user_claims)(user))
    scopes = [str(scope) for scope in mapped.get("aud", ())]
    issued = int(now.timestamp())
    common: dict[str, Any] = {"iat": issued, "nbf": issued, "sub": _subject(user), "fam": family.id}
    issuer = setting("JWT_ISSUER")
    if issuer is not None:
        common["iss"] = issuer
    access_claims = {
        **common,
        "exp": int(access_expires.timestamp()),
        "aud": scopes,
        "rls": [str(role) for role in mapped.get("rls", ())],
        "jti": uuid.uuid4().hex,
        "crt": bool(mapped.get("crt", False)),
        "typ": "access",
    }
    if mapped.get("ten") is not None:
        access_claims["ten"] = str(mapped["ten"])
    refresh_claims = {**common, "exp": int(refresh_expires.timestamp()), "jti": refresh_jti, "typ": "refresh"}
    return TokenPair(
        access_token=sign(access_claims),
        refresh_token=sign(refresh_claims),
        expires_in=access_lifetime(),
        refresh_expires_in=refresh_lifetime(),
        scope=scopes,
    )


def login(username: str, password: str, claims: ClaimsFunction | None = None) -> TokenPair:
    """A new family for the user these credentials authenticate, or 401 ``invalid_credentials``."""
    user = authenticate(None, username=username, password=password)
    if user is None or not getattr(user, "is_active", True):
        raise AuthenticationFailed("The username or the password is wrong.", code="invalid_credentials")
    return issue_pair(user, claims=claims)


def rotate(refresh: AccessToken, claims: ClaimsFunction | None = None) -> TokenPair:
    """Exchange a verified refresh token for a new pair of its family (see the module docstring)."""
    now = timezone.now()
    problem: tuple[str, str] | None = None
    with transaction.atomic():
        row = (
            RefreshToken.objects.select_for_update()
            .select_related("family", "family__user")
            .filter(jti=refresh.jti or "")
            .first()
        )
        if row is None:
            raise AuthenticationFailed("The refresh token is not known.", code="refresh_token_invalid")
        family = row.family
        user = family.user
        if family.revoked_at is not None:
            problem = ("The refresh token's family has been revoked.", "refresh_token_revoked")
        elif row.used_at is not None:
            revoke_family(family.id, "reuse")  # committed with this transaction, the 401 raised after it
            problem = (
                "The refresh token was already used; every token of its family is revoked now.",
                "refresh_token_reused",
            )
        elif not user.is_active:
            revoke_family(family.id, "user_inactive")
            problem = ("The token's user is inactive.", "user_inactive")
        else:
            row.used_at = now
            row.save(update_fields=["used_at"])
            return issue_pair(user, family, claims)
    raise AuthenticationFailed(problem[0], code=problem[1])


def revoke_jti(jti: str, expires_at: datetime.datetime, reason: str = "revoked") -> None:
    """Refuse the token ``jti`` (until ``expires_at``, after which it is refused for its age anyway)."""
    with transaction.atomic():
        RevokedToken.objects.update_or_create(
            jti=jti, defaults={"expires_at": expires_at, "revoked_at": timezone.now(), "reason": reason}
        )
        revocation.announce("j", [(jti, expires_at)])


def revoke_family(family_id: str, reason: str = "revoked") -> bool:
    """Revoke a family (its refresh tokens and its access tokens); False when it is unknown."""
    with transaction.atomic():
        family = TokenFamily.objects.select_for_update().filter(id=family_id).first()
        if family is None:
            return False
        if family.revoked_at is None:
            family.revoked_at = timezone.now()
            family.revoked_reason = reason[:32]
            # Access tokens outlive the family's last refresh by at most their own lifetime.
            family.expires_at = max(family.expires_at, timezone.now() + datetime.timedelta(seconds=access_lifetime()))
            family.save(update_fields=["revoked_at", "revoked_reason", "expires_at"])
        revocation.announce("f", [(family.id, family.expires_at)])
    return True


def revoke_user(user: Any, reason: str = "revoked") -> int:
    """Revoke every family of ``user`` (an off-boarded user's tokens); how many were live."""
    count = 0
    with transaction.atomic():
        for family_id in TokenFamily.objects.filter(user=user, revoked_at__isnull=True).values_list("id", flat=True):
            revoke_family(family_id, reason)
            count += 1
    return count


def logout(token: AccessToken) -> None:
    """Revoke the presented access token and, when it has one, its family."""
    expires = datetime.datetime.fromtimestamp(token.exp, tz=datetime.UTC)
    with transaction.atomic():
        if token.jti:
            revoke_jti(token.jti, expires, "logout")
        family = (token.model_extra or {}).get("fam")
        if isinstance(family, str):
            revoke_family(family, "logout")


def prune_tokens(now: datetime.datetime | None = None) -> int:
    """Delete revocations and families past their expiry (nothing of them can still be presented)."""
    now = now or timezone.now()
    deleted = RevokedToken.objects.filter(expires_at__lte=now).delete()[0]
    deleted += RefreshToken.objects.filter(expires_at__lte=now).delete()[0]
    deleted += TokenFamily.objects.filter(expires_at__lte=now).delete()[0]
    return deleted

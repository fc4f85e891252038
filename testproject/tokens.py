"""Mint signed JWTs for the demo and the tests, with the claims djfapi reads (SPEC §4).

Tokens are signed with the same settings the library verifies them with
(``settings.DJFAPI``), so a minted token is accepted by the running demo. The time
arguments may put the token outside its validity window on purpose (negative
``expires``, positive ``not_before``) to try the 401 paths.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import jwt
from django.conf import settings

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
    configured ``JWT_ISSUER`` (to try a wrong-issuer 401).
    """
    config = settings.DJFAPI
    now = int(time.time())
    claims = {
        "iss": issuer if issuer is not None else config["JWT_ISSUER"],
        "iat": now,
        "nbf": now + not_before if not_before is not None else now,
        "exp": now + expires,
        "sub": user,
        "ten": tenant,
        "aud": list(scopes),
        "rls": [],
        "jti": uuid.uuid4().hex,
        "crt": bool(critical),
    }
    return jwt.encode(claims, config["JWT_KEY"], algorithm=config["JWT_ALGORITHMS"][0])

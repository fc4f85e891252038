"""Mint signed JWTs with the claims djfapi reads (SPEC §4), for development and tests.

A project that verifies tokens from an identity provider still needs tokens of its own
while it is being built: to try the API by hand (``manage.py djfapi_token``), in its
tests, in seed scripts. ``mint_token`` signs them with the project's own
``settings.DJFAPI``, so a minted token is accepted by the project's ``JWTToken()``:

* the algorithm is the first of ``JWT_ALGORITHMS`` (default ``HS256``);
* the key is ``JWT_SIGNING_KEY`` when set, else ``JWT_KEY`` for an HS* algorithm.
  RS*/PS*/ES*/EdDSA need ``JWT_SIGNING_KEY`` (the PEM private key): ``JWT_KEY`` then
  holds the public key, which verifies but cannot sign.
* Either setting may be a ``{kid: key}`` mapping; the token then names its key in
  the ``kid`` header, as a rotation-aware verifier expects.

Every configuration problem is an ``ImproperlyConfigured`` whose message names the fix.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import jwt
from django.core.exceptions import ImproperlyConfigured

from djfapi.conf import setting
from djfapi.security.jwt import NEW_HMAC_KEY_COMMAND, check_hmac_key_length

__all__ = ["mint_token", "sign"]

_OWNER = "mint_token"


def mint_token(
    *,
    tenant: str | None,
    user: str,
    scopes: Iterable[str],
    critical: bool = False,
    expires: int = 3600,
    not_before: int | None = None,
    issuer: str | None = None,
    roles: Iterable[str] = (),
    kid: str | None = None,
) -> str:
    """Return a token for ``user`` in ``tenant`` granting ``scopes``, signed per ``settings.DJFAPI``.

    Claims: ``iss`` (``issuer``, else ``JWT_ISSUER``; omitted when neither is set),
    ``iat``, ``nbf``, ``exp``, ``sub`` (``user``), ``ten`` (``tenant``; omitted when
    ``None``, for projects without tenants), ``aud`` (``scopes``, order kept), ``rls``
    (``roles``), ``jti`` (random) and ``crt`` (``critical``: may write critical fields).

    ``expires`` is seconds from now and may be negative (an expired token, to try the
    401); ``not_before`` puts ``nbf`` that many seconds ahead (``None``: valid at once).
    ``kid`` picks the key when the signing key is a ``{kid: key}`` mapping (default:
    its first key) and is written into the token's header.

    Raises ImproperlyConfigured when no key can sign with the configured algorithm, when
    ``kid`` is not configured, or when an HMAC key is too short (RFC 7518 §3.2).
    """
    algorithm, key, header_kid = _signing_key(kid)
    now = int(time.time())
    claims: dict[str, Any] = {}
    resolved_issuer = issuer if issuer is not None else setting("JWT_ISSUER")
    if resolved_issuer is not None:
        claims["iss"] = resolved_issuer
    claims.update(
        iat=now,
        nbf=now + not_before if not_before is not None else now,
        exp=now + expires,
        sub=user,
    )
    if tenant is not None:
        claims["ten"] = tenant
    claims.update(aud=list(scopes), rls=list(roles), jti=uuid.uuid4().hex, crt=bool(critical))
    headers = {"kid": header_kid} if header_kid is not None else None
    try:
        return jwt.encode(claims, key, algorithm=algorithm, headers=headers)
    except (jwt.PyJWTError, ValueError, TypeError, NotImplementedError) as error:
        # PyJWT's own words (wrong key type, unparsable PEM, unknown algorithm) plus where to look.
        raise ImproperlyConfigured(
            f"{_OWNER}: cannot sign with {algorithm}: {error}. The signing key must be a key for {algorithm} "
            f"(an HMAC secret for HS*, a PEM private key of the matching type for RS*/PS*/ES*/EdDSA)."
        ) from error


def sign(claims: Mapping[str, Any], kid: str | None = None) -> str:
    """``claims`` signed as ``mint_token`` signs (for ``djfapi.auth``, which chooses its own claims)."""
    algorithm, key, header_kid = _signing_key(kid)
    headers = {"kid": header_kid} if header_kid is not None else None
    return jwt.encode(dict(claims), key, algorithm=algorithm, headers=headers)


def _signing_key(kid: str | None) -> tuple[str, Any, str | None]:
    """The algorithm, the key and the header ``kid`` that ``mint_token`` signs with."""
    algorithms = tuple(setting("JWT_ALGORITHMS", ("HS256",)))
    if not algorithms or algorithms[0].lower() == "none":
        raise ImproperlyConfigured(
            f"{_OWNER}: DJFAPI['JWT_ALGORITHMS'] must start with a signing algorithm, e.g. ['HS256'], "
            f"got {list(algorithms)}"
        )
    algorithm = algorithms[0]
    signing_key = setting("JWT_SIGNING_KEY")
    verification_key = setting("JWT_KEY")
    if _is_set(signing_key):
        source, key = "DJFAPI['JWT_SIGNING_KEY']", signing_key
    elif not algorithm.startswith("HS"):
        raise ImproperlyConfigured(
            f"{_OWNER}: {algorithm} is an asymmetric algorithm: DJFAPI['JWT_KEY'] verifies but cannot sign. "
            f"Set DJFAPI['JWT_SIGNING_KEY'] to the PEM private key (only where tokens are minted, e.g. "
            f"development settings), or put an HS* algorithm first in DJFAPI['JWT_ALGORITHMS']."
        )
    elif _is_set(verification_key):
        source, key = "DJFAPI['JWT_KEY']", verification_key
    else:
        raise ImproperlyConfigured(
            f"{_OWNER}: no key to sign tokens with. Set DJFAPI['JWT_KEY'] to an HMAC secret (for HS*; e.g. the "
            f"output of {NEW_HMAC_KEY_COMMAND}), or DJFAPI['JWT_SIGNING_KEY'] to a PEM private key (for "
            f"RS*/PS*/ES*/EdDSA)."
        )

    header_kid = kid
    if isinstance(key, Mapping):
        header_kid = _pick_kid(key, kid, source)
        key = key[header_kid]
    if isinstance(verification_key, Mapping) and _is_set(verification_key):
        # The verifier looks the key up by the token's kid: it must name one it knows.
        if header_kid is None:
            raise ImproperlyConfigured(
                f"{_OWNER}: DJFAPI['JWT_KEY'] is a {{kid: key}} mapping, so tokens must name their key: pass "
                f"kid=... (--kid) with one of {list(verification_key)}, or make {source} a {{kid: key}} mapping."
            )
        if header_kid not in verification_key:
            raise ImproperlyConfigured(
                f"{_OWNER}: unknown kid {header_kid!r}: DJFAPI['JWT_KEY'] knows {list(verification_key)}. Pass one "
                f"of those, or add {header_kid!r} to DJFAPI['JWT_KEY']."
            )
    if algorithm.startswith("HS"):
        # Against every configured HS algorithm, as JWTToken checks it: a key the API refuses mints nothing useful.
        check_hmac_key_length(key, algorithms, owner=_OWNER, source=source, kid=header_kid)
    return algorithm, key, header_kid


def _pick_kid(keys: Mapping[Any, Any], kid: str | None, source: str) -> Any:
    """``kid`` if ``keys`` holds it, or the first kid when none is asked for."""
    if kid is None:
        return next(iter(keys))
    if kid not in keys:
        raise ImproperlyConfigured(
            f"{_OWNER}: unknown kid {kid!r}: {source} holds {list(keys)}. Pass one of those (--kid), or add "
            f"{kid!r} to {source}."
        )
    return kid


def _is_set(value: Any) -> bool:
    return value is not None and value != "" and not (isinstance(value, Mapping) and not value)

"""Bearer-JWT security dependencies, verified with PyJWT.

``JWTToken`` grants the scopes listed in the token's ``aud`` claim;
``JWTTokenDjangoPermissions`` grants the token's user's Django permissions instead.
Both are FastAPI security dependencies (``Security(JWTToken(), scopes=[...])`` returns
an ``Access``) and both can be given to a ``DjangoRouterSchema`` as ``security``.

Roles: the ``rls`` claim grants scopes through a mapping ``{role: [scope, ...]}``
(``role_scopes=`` or ``DJFAPI["ROLE_SCOPES"]``); a token holds its ``aud`` scopes plus
those of each of its roles. A role the mapping does not name grants nothing.

Every failure to authenticate is a 401 with a precise ``code``: ``token_missing``,
``token_invalid``, ``token_expired``, ``token_not_yet_valid``, ``token_issuer_invalid``,
``token_signature_invalid``, ``token_algorithm_not_allowed``, ``token_key_unknown``,
``token_claim_missing``, ``token_revoked``, ``user_unknown``, ``user_inactive``.

With ``"djfapi.auth"`` installed, every token is also checked against the revoked token
ids and families (``djfapi.auth.revocation``: in memory, no query), and a refresh token
(``typ: "refresh"``) is refused where an access token is expected.

An HMAC key shorter than RFC 7518 §3.2 allows for a configured HS algorithm is refused
when the configuration is checked (at start-up), not warned about on every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jwt
import pydantic
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from fastapi import Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes as FastAPISecurityScopes
from fastapi.security.base import SecurityBase
from starlette.concurrency import run_in_threadpool

from djfapi.compat import deprecated
from djfapi.conf import setting
from djfapi.errors import AuthenticationFailed, ServiceUnavailable
from djfapi.ops.context import record_token
from djfapi.schemas.access import Access, AccessToken
from djfapi.security.scopes import grant
from djfapi.utils.fastapi_django import request_signalling

MAX_TOKEN_LENGTH = 8192
#: Set on the request's state when the revocation check is left to the route's worker thread.
UNCHECKED_TOKEN = "djfapi_unchecked_token"
#: Verified tokens remembered per key configuration (a few MB at most).
VERIFIED_TOKENS = 4096
_REQUIRED_CLAIMS = ["exp", "sub"]
# PyJWT insists on a string ``sub``; AccessToken accepts integer ids as well (some issuers use them).
_DECODE_OPTIONS: Any = {"require": _REQUIRED_CLAIMS, "verify_aud": False, "verify_sub": False}

#: RFC 7518 §3.2: an HMAC key must be at least as long as the hash's output.
HMAC_MINIMUM_KEY_BYTES: Mapping[str, int] = {"HS256": 32, "HS384": 48, "HS512": 64}
#: The command the key-length error suggests; its output suits every HS algorithm.
NEW_HMAC_KEY_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(64))"'


@dataclass(frozen=True)
class _Verification:
    keys: Mapping[str | None, Any]  # kid -> prepared key; the None entry is the only key when kids aren't used
    algorithms: tuple[str, ...]
    issuer: str | None
    leeway: float
    #: Tokens verified under exactly this configuration: raw token -> claims (see ``JWTToken.decode``).
    verified: dict[str, AccessToken] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: role -> the scopes it grants (``role_scopes=`` or ``DJFAPI["ROLE_SCOPES"]``).
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: ``djfapi.auth.revocation.cache`` when ``djfapi.auth`` is installed.
    revocations: Any = None


class JWTToken(SecurityBase):
    """A bearer JWT whose ``aud`` claim lists the caller's scopes.

    ``key``, ``algorithms``, ``issuer`` and ``leeway`` default to the ``DJFAPI``
    setting's ``JWT_KEY``, ``JWT_ALGORITHMS``, ``JWT_ISSUER`` and ``JWT_LEEWAY``.
    ``key`` is an HMAC secret, a PEM public key, a key object, or a mapping
    ``{kid: key}`` so that several keys verify during a rotation. ``role_scopes``
    (default ``DJFAPI["ROLE_SCOPES"]``) maps roles of the ``rls`` claim to the scopes
    they grant: ``{"admin": ["shop.products.update.any", ...]}``.
    """

    #: Whether ``authorize`` needs the database (then it runs in the signalled thread).
    needs_database: ClassVar[bool] = False

    def __init__(
        self,
        *,
        scheme_name: str | None = None,
        key: Any = None,
        algorithms: Sequence[str] | None = None,
        issuer: str | None = None,
        leeway: float | None = None,
        role_scopes: Mapping[str, Sequence[str]] | None = None,
        description: str | None = None,
        name: str | None = None,
        auto_error: bool | None = None,
        algorithm: str | Sequence[str] | None = None,
    ) -> None:
        """``name``, ``auto_error`` and ``algorithm`` are upstream djfapi's arguments, kept as shims.

        ``algorithm=`` is ``algorithms=``; ``name=`` the header the token comes in (default
        ``Authorization``); ``auto_error=False`` makes a missing header give ``None`` instead
        of a 401 where the token is used directly as a dependency (generated routes always
        require one).
        """
        self.model = HTTPBearerModel(bearerFormat="JWT", description=description)
        self.scheme_name = scheme_name or type(self).__name__
        self._key = key
        if algorithm is not None:
            deprecated("JWTToken(algorithm=...)", "JWTToken(algorithms=[...])")
            algorithms = [algorithm] if isinstance(algorithm, str) else algorithm
        if name is not None:
            deprecated("JWTToken(name=...)", "the Authorization header")
        self._header = (name or "Authorization").lower()
        if auto_error is not None:
            deprecated("JWTToken(auto_error=...)", "an optional dependency of your own")
        self._auto_error = auto_error is not False
        self._algorithms = tuple(algorithms) if algorithms else None
        self._issuer = issuer
        self._leeway = leeway
        self._role_scopes = role_scopes
        self._verification: _Verification | None = None
        self.bearer = _BearerToken(self)
        self.optional_bearer = _BearerToken(self, optional=True)
        setting_changed.connect(self._forget_settings, weak=True)

    # -- configuration -------------------------------------------------------------

    def _forget_settings(self, setting: str, **_: Any) -> None:
        if setting in ("DJFAPI", "JWT_PUBLIC_KEY", "JWT_ISSUER"):
            self._verification = None

    def check_configuration(self) -> None:
        """Raise ImproperlyConfigured unless a key and algorithms are configured."""
        self._verification = None
        self._resolve()

    def _resolve(self) -> _Verification:
        if self._verification is not None:
            return self._verification
        key = self._key if self._key is not None else setting("JWT_KEY")
        upstream_key = key is None and getattr(settings, "JWT_PUBLIC_KEY", None) is not None
        if upstream_key:
            deprecated("settings.JWT_PUBLIC_KEY", "DJFAPI = {'JWT_KEY': ..., 'JWT_ALGORITHMS': [...]}")
            key = settings.JWT_PUBLIC_KEY
        if key is None or key == "" or (isinstance(key, Mapping) and not key):
            raise ImproperlyConfigured(
                f"{self.scheme_name}: no JWT verification key. Pass key=... or set DJFAPI = {{'JWT_KEY': ...}} "
                f"in the Django settings."
            )
        # upstream signed with ES512 unless told otherwise; its JWT_PUBLIC_KEY is such a key
        algorithms = self._algorithms or tuple(setting("JWT_ALGORITHMS", ("ES512",) if upstream_key else ("HS256",)))
        if not algorithms or "none" in {a.lower() for a in algorithms}:
            raise ImproperlyConfigured(f"{self.scheme_name}: JWT algorithms must be a non-empty list without 'none'")
        keys = {
            kid: _prepare_key(value) for kid, value in (dict(key) if isinstance(key, Mapping) else {None: key}).items()
        }
        for kid, prepared in keys.items():
            if not any(_suits(prepared, algorithm) for algorithm in algorithms):
                raise ImproperlyConfigured(
                    f"{self.scheme_name}: the JWT key{f' {kid!r}' if kid else ''} suits none of the algorithms "
                    f"{list(algorithms)} (an HMAC secret needs HS*, an RSA key RS*/PS*, an EC key ES*, an "
                    f"Ed25519/Ed448 key EdDSA)"
                )
            source = "the key argument" if self._key is not None else "DJFAPI['JWT_KEY']"
            check_hmac_key_length(prepared, algorithms, owner=self.scheme_name, source=source, kid=kid)
            check_rsa_key_size(prepared, owner=self.scheme_name, source=source, kid=kid)
        self._verification = _Verification(
            keys=keys,
            algorithms=algorithms,
            issuer=self._issuer if self._issuer is not None else setting("JWT_ISSUER", _upstream_issuer()),
            leeway=self._leeway if self._leeway is not None else setting("JWT_LEEWAY", 0),
            roles=_role_map(
                self._role_scopes if self._role_scopes is not None else setting("ROLE_SCOPES", {}), self.scheme_name
            ),
            revocations=_revocations(),
        )
        return self._verification

    async def ready(self, *, strict: bool = True) -> bool:
        """Make sure the revoked tokens are loaded and followed on this event loop (a no-op once done).

        Whether they are loaded. When the database does not answer, ``strict`` makes that a
        503; else it is False, and the caller checks in its worker thread (``check_revoked``).
        """
        revocations = self._resolve().revocations
        if revocations is None:
            return True
        from djfapi.auth.revocation import ensure_ready

        try:
            await ensure_ready()
        except Exception as error:
            if strict:
                raise ServiceUnavailable(
                    "The revoked tokens cannot be read.", code="revocations_unavailable"
                ) from error
            return False
        return True

    def check_revoked(self, token: AccessToken) -> None:
        """Refuse a revoked token, loading the revoked ids first if this process has not yet (sync: a worker thread)."""
        revocations = self._resolve().revocations
        if revocations is None:
            return
        if revocations.loaded_at is None:
            from djfapi.auth.revocation import load

            load()
        if revocations.is_revoked(token):
            raise AuthenticationFailed("The token has been revoked.", code="token_revoked")

    # -- authentication (no I/O: runs in the event loop) ----------------------------

    def authenticate(self, request: Request) -> AccessToken:
        """The verified token of ``request``, or AuthenticationFailed (401)."""
        return self.decode(self.raw_token(request))

    def raw_token(self, request: Request) -> str:
        """The bearer token of ``request`` as sent, or AuthenticationFailed (401 ``token_missing``)."""
        header = request.headers.get(self._header)
        if not header:
            raise AuthenticationFailed("An 'Authorization: Bearer <token>' header is required.", code="token_missing")
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw:
            raise AuthenticationFailed("The Authorization header must be 'Bearer <token>'.", code="token_missing")
        return raw

    def decode(self, raw: str) -> AccessToken:
        """Verify a raw JWT and return its claims.

        A token that verified once is remembered (up to ``VERIFIED_TOKENS`` of them) until
        it expires: a client sends the same token with every request, and checking its
        signature and claims again each time is most of what authentication costs. The
        memory belongs to one key configuration and is dropped with it; a remembered
        token still turns into a 401 the moment its ``exp`` passes.
        """
        if len(raw) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("The token is too long.", code="token_invalid")
        verification = self._resolve()
        known = verification.verified.get(raw)
        if known is not None:
            if time.time() >= known.exp + verification.leeway:
                raise AuthenticationFailed("The token has expired.", code="token_expired")
            self._check_revoked(known, verification)
            return known
        token = self._verify(raw, verification)
        if (token.model_extra or {}).get("typ") == "refresh":
            raise AuthenticationFailed("A refresh token is not an access token.", code="token_invalid")
        self._check_revoked(token, verification)
        with verification.lock:
            if len(verification.verified) >= VERIFIED_TOKENS:
                verification.verified.pop(next(iter(verification.verified)))  # the oldest
            verification.verified[raw] = token
        return token

    def verify_signature(self, raw: str) -> AccessToken:
        """Verify a raw JWT of any kind (a refresh token too), remembering nothing."""
        if len(raw) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("The token is too long.", code="token_invalid")
        verification = self._resolve()
        token = self._verify(raw, verification)
        self._check_revoked(token, verification)
        return token

    @staticmethod
    def _check_revoked(token: AccessToken, verification: _Verification) -> None:
        revocations = verification.revocations
        if revocations is None:
            return
        if revocations.loaded_at is None:
            return  # not loaded (the database did not answer): the caller checks later, see ready()
        if revocations.is_revoked(token):
            raise AuthenticationFailed("The token has been revoked.", code="token_revoked")

    def _verify(self, raw: str, verification: _Verification) -> AccessToken:
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError:
            raise AuthenticationFailed("The token is not a well-formed JWT.", code="token_invalid") from None
        algorithm = header.get("alg")
        if algorithm not in verification.algorithms:
            raise AuthenticationFailed(
                f"The token's algorithm {algorithm!r} is not accepted.", code="token_algorithm_not_allowed"
            )
        kid = header.get("kid") if None not in verification.keys else None
        key = verification.keys.get(kid) if isinstance(kid, str | None) else None
        if key is None:
            raise AuthenticationFailed("The token's key id is not known.", code="token_key_unknown")
        try:
            claims = jwt.decode(
                raw,
                key,
                algorithms=[algorithm],
                issuer=verification.issuer,
                leeway=verification.leeway,
                options=_DECODE_OPTIONS,
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("The token has expired.", code="token_expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationFailed("The token is not valid yet.", code="token_not_yet_valid") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationFailed("The token was issued by someone else.", code="token_issuer_invalid") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationFailed(
                f"The token lacks the {error.claim!r} claim.", code="token_claim_missing"
            ) from None
        except jwt.InvalidSignatureError:
            raise AuthenticationFailed("The token's signature is invalid.", code="token_signature_invalid") from None
        except jwt.InvalidAlgorithmError:
            raise AuthenticationFailed(
                "The token's algorithm is not accepted.", code="token_algorithm_not_allowed"
            ) from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthenticationFailed("The token is invalid.", code="token_invalid") from None
        try:
            return AccessToken.model_validate(claims)
        except pydantic.ValidationError as error:
            fields = sorted({str(e["loc"][0]) for e in error.errors() if e["loc"]})
            raise AuthenticationFailed(
                f"The token's claims are malformed: {', '.join(fields)}.", code="token_invalid"
            ) from None

    # -- authorisation (may use the database: runs in the signalled thread) ---------

    def role_scopes(self, token: AccessToken) -> frozenset[str]:
        """The scopes the token's roles (``rls``) grant through the role mapping."""
        roles = self._resolve().roles
        if not roles or not token.rls:
            return frozenset()
        return frozenset().union(*(roles.get(role, ()) for role in token.rls))

    def granted_scopes(self, token: AccessToken) -> Collection[str]:
        """The scopes the caller holds: the token's ``aud`` claim and what its roles grant."""
        by_role = self.role_scopes(token)
        return by_role.union(token.aud) if by_role else token.aud

    def authorize(self, token: AccessToken, scopes: Sequence[str] | None, *, public: bool = False) -> Access:
        """The caller's Access for an operation accepting ``scopes``, or PermissionDenied (403).

        On a ``public`` operation holding none of ``scopes`` is no 403: the caller reads
        with ``access.scope`` ``None`` (still their tenant's rows through the default filter).
        """
        if public:
            return grant(token, self.granted_scopes(token), scopes, public=True)
        return grant(token, self.granted_scopes(token), scopes)

    async def __call__(self, request: Request, security_scopes: FastAPISecurityScopes) -> Access | None:
        if not self._auto_error and not request.headers.get(self._header):
            return None  # upstream's auto_error=False: no token, no Access
        raw = self.raw_token(request)
        await self.ready()
        token = self.decode(raw)
        if self.needs_database:
            return await run_in_threadpool(request_signalling(self.authorize), token, security_scopes.scopes)
        return self.authorize(token, security_scopes.scopes)


class JWTTokenDjangoPermissions(JWTToken):
    """A bearer JWT whose user's Django permissions are the granted scopes.

    The user is looked up by primary key from the ``sub`` claim; a missing or inactive
    user is a 401. Permissions come out as ``<app_label>.<codename>``, so a permission
    with codename ``companies.read.any`` in app ``business`` grants the scope
    ``business.companies.read.any``. Superusers hold every permission.
    """

    needs_database = True

    def granted_scopes(self, token: AccessToken) -> Collection[str]:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get(pk=user_model._meta.pk.to_python(token.sub))
        except (user_model.DoesNotExist, ValidationError, ValueError, TypeError):
            raise AuthenticationFailed("The token's user does not exist.", code="user_unknown") from None
        if not user.is_active:
            raise AuthenticationFailed("The token's user is inactive.", code="user_inactive")
        permissions: set[str] = user.get_all_permissions()  # type: ignore[attr-defined]  # PermissionsMixin
        return permissions | self.role_scopes(token)


class _BearerToken(SecurityBase):
    """The authenticate-only half of a ``JWTToken``, used by generated routes.

    Generated routes verify the token in the event loop (cheap, no I/O) and authorise
    inside their signalled ORM call, so a database-backed ``authorize`` shares the
    request's one thread and one connection.
    """

    def __init__(self, owner: JWTToken, *, optional: bool = False) -> None:
        self.owner = owner
        self.model = owner.model
        self.scheme_name = owner.scheme_name
        #: For public operations: no Authorization header is no 401 but an anonymous caller (None).
        self.optional = optional

    async def __call__(self, request: Request) -> AccessToken | None:
        if self.optional and "authorization" not in request.headers:
            return None
        raw = self.owner.raw_token(request)  # no token: 401 before anything else
        loaded = await self.owner.ready(strict=False)
        token = self.owner.decode(raw)
        if not loaded:
            # The database did not answer: the route's signalled call loads and checks (after
            # FastAPI's validation, so a bad request is still a 422 during an outage).
            request.scope.setdefault("state", {})[UNCHECKED_TOKEN] = True
        record_token(request.scope, token)
        return token


def _upstream_issuer() -> str | None:
    issuer = getattr(settings, "JWT_ISSUER", None)
    if issuer is not None:
        deprecated("settings.JWT_ISSUER", "DJFAPI = {'JWT_ISSUER': ...}", stacklevel=4)
    return issuer


def _revocations() -> Any:
    from django.apps import apps

    if not apps.is_installed("djfapi.auth"):
        return None
    from djfapi.auth.revocation import cache

    return cache


def _role_map(value: Any, owner: str) -> Mapping[str, frozenset[str]]:
    """``{role: [scope, ...]}`` checked and frozen, or ImproperlyConfigured."""
    from djfapi.security.scopes import validate_scope

    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"{owner}: ROLE_SCOPES must map role names to lists of scopes, got {value!r}")
    roles: dict[str, frozenset[str]] = {}
    for role, scopes in value.items():
        if not isinstance(role, str) or isinstance(scopes, str) or not isinstance(scopes, Iterable):
            raise ImproperlyConfigured(
                f"{owner}: ROLE_SCOPES[{role!r}] must be a list of scopes (role names are strings), got {scopes!r}"
            )
        for scope in scopes:
            try:
                validate_scope(scope)
            except (ValueError, AttributeError):
                raise ImproperlyConfigured(
                    f"{owner}: ROLE_SCOPES[{role!r}]: {scope!r} is not a scope 'service.resource.action[.selector]'"
                ) from None
        roles[role] = frozenset(scopes)
    return roles


def check_hmac_key_length(
    key: Any, algorithms: Iterable[str], *, owner: str, source: str, kid: str | None = None
) -> None:
    """Raise ImproperlyConfigured if ``key`` is an HMAC secret too short for one of ``algorithms``.

    A token's header picks the algorithm among the configured ones, so every HMAC key
    must be long enough for the strictest configured HS algorithm. PyJWT would only
    warn, on every token it signs or verifies; refusing once at start-up turns a log
    flood into one configuration error and keeps guessable secrets out of production.
    ``owner`` and ``source`` name the code and the setting in the message; keys that
    are not secrets (asymmetric key objects) are left alone.
    """
    if not isinstance(key, str | bytes):
        return
    length = len(key.encode() if isinstance(key, str) else key)
    too_short = [a for a in dict.fromkeys(algorithms) if length < HMAC_MINIMUM_KEY_BYTES.get(a, 0)]
    if not too_short:
        return
    strictest = max(too_short, key=HMAC_MINIMUM_KEY_BYTES.__getitem__)
    named = f"the HMAC key {kid!r} in {source}" if kid is not None else f"the HMAC key in {source}"
    message = (
        f"{owner}: {named} is {length} bytes long; {strictest} needs at least "
        f"{HMAC_MINIMUM_KEY_BYTES[strictest]} bytes (RFC 7518 §3.2). Use a longer key, e.g. the output of "
        f"{NEW_HMAC_KEY_COMMAND}"
    )
    long_enough_for = [a for a, minimum in HMAC_MINIMUM_KEY_BYTES.items() if length >= minimum]
    if long_enough_for:
        message += (
            f", or take {', '.join(too_short)} out of the allowed algorithms (JWT_ALGORITHMS): the key is long "
            f"enough for {', '.join(long_enough_for)}"
        )
    raise ImproperlyConfigured(message + ".")


#: RSA keys shorter than this are refused (NIST SP 800-131A; PyJWT warns below it on every token).
RSA_MINIMUM_KEY_BITS = 2048


def check_rsa_key_size(key: Any, *, owner: str, source: str, kid: str | None = None) -> None:
    """Raise ImproperlyConfigured if ``key`` is an RSA key shorter than 2048 bits.

    For the same reason as ``check_hmac_key_length``: PyJWT would warn on every token
    it signs or verifies with it, and such a key can be factored.
    """
    if not isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey) or key.key_size >= RSA_MINIMUM_KEY_BITS:
        return
    named = f"the RSA key {kid!r} in {source}" if kid is not None else f"the RSA key in {source}"
    raise ImproperlyConfigured(
        f"{owner}: {named} has {key.key_size} bits; RSA keys need at least {RSA_MINIMUM_KEY_BITS}. Generate a new "
        f"one, e.g. openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072."
    )


def _suits(key: Any, algorithm: str) -> bool:
    if isinstance(key, str | bytes):
        return algorithm.startswith("HS")
    if isinstance(key, rsa.RSAPublicKey):
        return algorithm[:2] in ("RS", "PS")
    if isinstance(key, ec.EllipticCurvePublicKey):
        return algorithm.startswith("ES")
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return algorithm == "EdDSA"
    return True  # a key type djfapi does not know: let PyJWT decide


def _prepare_key(key: Any) -> Any:
    """Parse a PEM key once, by its own type, instead of on every request.

    HMAC secrets stay as they are. A PEM private key or certificate is reduced to its
    public key: verification needs nothing more. Whether a key suits a token's
    algorithm is PyJWT's check at decode time (a mismatch is a 401).
    """
    if isinstance(key, jwt.PyJWK):
        return key.key
    if isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
    ):
        return key.public_key()
    if not isinstance(key, str | bytes):
        return key
    data = key.encode() if isinstance(key, str) else key
    if not data.lstrip().startswith(b"-----BEGIN"):
        return key
    loaders = (
        serialization.load_pem_public_key,
        lambda pem: serialization.load_pem_private_key(pem, password=None).public_key(),
        lambda pem: x509.load_pem_x509_certificate(pem).public_key(),
    )
    for load in loaders:
        try:
            return load(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    raise ImproperlyConfigured(
        "The JWT key looks like PEM but is neither a public key, a private key nor a certificate"
    )

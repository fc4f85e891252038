"""Bearer-JWT authentication (SPEC §4, §7): every way a token is refused, and the keys,
algorithms and user lookups that make a token acceptable.

The 401 cases go through real HTTP requests against the demo (``GET /companies``).
Algorithm and key handling is tried on standalone ``JWTToken`` instances, over HTTP
where the dependency's behaviour matters and through ``decode`` where it adds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import connection
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient
from jwt.warnings import InsecureKeyLengthWarning

from djfapi.errors import AuthenticationFailed, install_error_handlers
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken, JWTTokenDjangoPermissions
from testproject.business import models, schemas
from testproject.tokens import ALL_SCOPES
from tests.factories import make_company
from tests.helpers import OTHER_TENANT, TENANT, USER, auth, token

DEMO_KEY: str = settings.DJFAPI["JWT_KEY"]
DEMO_ISSUER: str = settings.DJFAPI["JWT_ISSUER"]
ISSUER = "issuer.example"
READ_ANY = "business.companies.read.any"
READ_OWN = "business.companies.read.own"
ERROR_KEYS = {"type", "code", "message", "detail"}
SECRET = "a-shared-secret-of-at-least-thirty-two-bytes"
MISSING = object()


# -- tokens ------------------------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid demo claims; an override of ``MISSING`` removes that claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": DEMO_ISSUER,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "sub": USER,
        "ten": TENANT,
        "aud": [READ_ANY],
        "jti": uuid.uuid4().hex,
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not MISSING}


def sign(payload: dict[str, Any], key: Any = DEMO_KEY, algorithm: str = "HS256", **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers or None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def unsigned_token(payload: dict[str, Any]) -> str:
    """An ``alg: none`` JWT, built by hand: PyJWT refuses to produce one."""
    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(payload)}."


def hs256_by_hand(payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT signed with any bytes as the secret (PyJWT refuses PEM keys as secrets)."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def hs512_with_demo_key(payload: dict[str, Any]) -> str:
    """The demo's secret with the wrong algorithm (PyJWT's warning that the secret is
    short for HS512 is beside the point here)."""
    with warnings.catch_warnings(action="ignore", category=InsecureKeyLengthWarning):
        return sign(payload, algorithm="HS512")


def with_header(raw: str, **changes: Any) -> str:
    """``raw`` with its header changed and its signature kept."""
    header, payload, signature = raw.split(".")
    padded = header + "=" * (-len(header) % 4)
    values = json.loads(base64.urlsafe_b64decode(padded))
    return f"{segment({**values, **changes})}.{payload}.{signature}"


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def assert_unauthorized(response: Any, code: str, *, secrets: tuple[str, ...] = ()) -> None:
    """A SPEC §7 401 with ``code``, which echoes neither the token nor a traceback."""
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"detail"}
    assert set(body["detail"]) == ERROR_KEYS
    assert body["detail"]["type"] == "unauthorized"
    assert body["detail"]["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Traceback" not in response.text
    for secret in secrets:
        assert secret not in response.text


# -- 401s from the demo ----------------------------------------------------------------


def test_a_valid_token_lists_companies(client: TestClient) -> None:
    """The control for every refusal below: the same request with a good token works."""
    make_company(name="Visible")

    response = client.get("/companies", headers=auth())

    assert response.status_code == 200
    assert [item["name"] for item in response.json()["items"]] == ["Visible"]


def test_hand_built_hs256_token_is_accepted(client: TestClient) -> None:
    """Proves the hand-made JWTs below are well formed, so their refusals mean something."""
    response = client.get("/companies", headers=bearer(hs256_by_hand(claims(), DEMO_KEY.encode())))

    assert response.status_code == 200


REFUSED_HEADERS: dict[str, tuple[Callable[[], dict[str, str]], str]] = {
    "missing header": (lambda: {}, "token_missing"),
    "wrong scheme": (lambda: {"Authorization": f"Basic {token()}"}, "token_missing"),
    "scheme without token": (lambda: {"Authorization": "Bearer "}, "token_missing"),
    "token without scheme": (lambda: {"Authorization": token()}, "token_missing"),
    "not a jwt": (lambda: bearer("not-a-jwt"), "token_invalid"),
    "garbage segments": (lambda: bearer("abc.def.ghi"), "token_invalid"),
    "expired": (lambda: auth(expires=-10), "token_expired"),
    "not yet valid": (lambda: auth(not_before=300), "token_not_yet_valid"),
    "wrong issuer": (lambda: auth(issuer="someone-else"), "token_issuer_invalid"),
    "no issuer": (lambda: bearer(sign(claims(iss=MISSING))), "token_claim_missing"),
    "signed with another key": (
        lambda: bearer(sign(claims(), key="another-key-that-is-at-least-32-bytes-long")),
        "token_signature_invalid",
    ),
    "alg none": (lambda: bearer(unsigned_token(claims())), "token_algorithm_not_allowed"),
    "algorithm not configured": (lambda: bearer(hs512_with_demo_key(claims())), "token_algorithm_not_allowed"),
    "no exp": (lambda: bearer(sign(claims(exp=MISSING))), "token_claim_missing"),
    "no sub": (lambda: bearer(sign(claims(sub=MISSING))), "token_claim_missing"),
    "exp not a number": (lambda: bearer(sign(claims(exp="tomorrow"))), "token_invalid"),
    "aud is a string": (lambda: bearer(sign(claims(aud=READ_ANY))), "token_invalid"),
    "100 KB token": (lambda: bearer(sign(claims(padding="x" * 100_000))), "token_invalid"),
}


@pytest.mark.parametrize("case", REFUSED_HEADERS, ids=list(REFUSED_HEADERS))
def test_unusable_token_is_401(client: TestClient, case: str) -> None:
    make_company()
    make_headers, code = REFUSED_HEADERS[case]
    headers = make_headers()
    tokens = [word for word in headers.get("Authorization", "").split() if word.count(".") == 2]

    response = client.get("/companies", headers=headers)

    assert_unauthorized(response, code, secrets=(*tokens, DEMO_KEY))


def test_tampered_payload_is_401(client: TestClient) -> None:
    """A genuine signature over other claims: switching the tenant must not verify."""
    header, _, signature = token().split(".")
    forged = f"{header}.{segment(claims(ten=OTHER_TENANT, aud=[READ_ANY]))}.{signature}"

    assert_unauthorized(client.get("/companies", headers=bearer(forged)), "token_signature_invalid")


def test_missing_claim_is_named(client: TestClient) -> None:
    response = client.get("/companies", headers=bearer(sign(claims(sub=MISSING))))

    assert_unauthorized(response, "token_claim_missing")
    assert "sub" in response.json()["detail"]["message"]


def test_a_large_but_reasonable_token_is_accepted(client: TestClient) -> None:
    """The control for the 100 KB refusal: size alone below the limit is fine."""
    response = client.get("/companies", headers=bearer(sign(claims(padding="x" * 2_000))))

    assert response.status_code == 200


def test_token_inside_its_validity_window_is_accepted(client: TestClient) -> None:
    """The control for expiry and ``nbf``: the same helper with a live window works."""
    assert client.get("/companies", headers=auth(expires=60, not_before=-60)).status_code == 200


# -- standalone JWTToken: asymmetric keys -----------------------------------------------


def private_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


KEY_MAKERS: dict[str, Callable[[], Any]] = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


@pytest.fixture(scope="module")
def private_keys() -> dict[str, tuple[Any, Any]]:
    """Two private keys per algorithm: the issuer's, and a stranger's."""
    return {algorithm: (make(), make()) for algorithm, make in KEY_MAKERS.items()}


def verifier(key: Any, algorithms: list[str], **options: Any) -> JWTToken:
    return JWTToken(key=key, algorithms=algorithms, issuer=ISSUER, **options)


def refusal_code(verifying: JWTToken, raw: str) -> str | None:
    with pytest.raises(AuthenticationFailed) as refused:
        verifying.decode(raw)
    assert refused.value.status_code == 401
    return refused.value.code


@pytest.mark.parametrize("key_form", ["pem", "object"])
@pytest.mark.parametrize("algorithm", list(KEY_MAKERS))
def test_asymmetric_token_is_accepted(private_keys: dict[str, Any], algorithm: str, key_form: str) -> None:
    private, _ = private_keys[algorithm]
    public = public_pem(private) if key_form == "pem" else private.public_key()
    signing_key = private_pem(private) if key_form == "pem" else private

    decoded = verifier(public, [algorithm]).decode(sign(claims(iss=ISSUER), signing_key, algorithm))

    assert (decoded.sub, decoded.ten, decoded.aud) == (USER, TENANT, [READ_ANY])


@pytest.mark.parametrize("algorithm", list(KEY_MAKERS))
def test_asymmetric_token_from_another_key_is_refused(private_keys: dict[str, Any], algorithm: str) -> None:
    private, stranger = private_keys[algorithm]
    raw = sign(claims(iss=ISSUER), stranger, algorithm)

    assert refusal_code(verifier(public_pem(private), [algorithm]), raw) == "token_signature_invalid"


def whoami_app(security: JWTToken) -> FastAPI:
    """A plain FastAPI app using ``security`` as an ordinary ``Security`` dependency."""
    app = FastAPI()
    install_error_handlers(app)

    # Annotated[Access, Security(...)] would not resolve: postponed annotations cannot see ``security``.
    caller = Security(security, scopes=[READ_ANY, READ_OWN])

    @app.get("/whoami")
    def whoami(access: Access = caller) -> dict[str, Any]:
        return {"user": access.user_id, "tenant": access.tenant_id, "scope": str(access.scope)}

    return app


def test_rs256_over_http(private_keys: dict[str, Any]) -> None:
    private, _ = private_keys["RS256"]
    raw = sign(claims(iss=ISSUER, aud=[READ_OWN]), private, "RS256")

    with TestClient(whoami_app(verifier(public_pem(private), ["RS256"]))) as app_client:
        response = app_client.get("/whoami", headers=bearer(raw))

    assert response.status_code == 200
    assert response.json() == {"user": USER, "tenant": TENANT, "scope": READ_OWN}


def test_rs256_over_http_refuses_with_the_spec_body(private_keys: dict[str, Any]) -> None:
    private, stranger = private_keys["RS256"]
    raw = sign(claims(iss=ISSUER), stranger, "RS256")

    with TestClient(whoami_app(verifier(public_pem(private), ["RS256"]))) as app_client:
        response = app_client.get("/whoami", headers=bearer(raw))

    assert_unauthorized(response, "token_signature_invalid", secrets=(raw,))


def test_algorithm_confusion_is_refused(private_keys: dict[str, Any]) -> None:
    """An HS256 token whose HMAC secret is the RSA *public* key, which anyone has."""
    private, _ = private_keys["RS256"]
    public = public_pem(private)
    forged = hs256_by_hand(claims(iss=ISSUER), public.encode())

    with TestClient(whoami_app(verifier(public, ["RS256"]))) as app_client:
        response = app_client.get("/whoami", headers=bearer(forged))

    assert_unauthorized(response, "token_algorithm_not_allowed", secrets=(forged,))


def test_algorithm_confusion_is_refused_when_hs256_is_also_allowed(private_keys: dict[str, Any]) -> None:
    """Even a config allowing both must not use the public key as an HMAC secret."""
    private, _ = private_keys["RS256"]
    public = public_pem(private)
    forged = hs256_by_hand(claims(iss=ISSUER), public.encode())

    with pytest.raises(AuthenticationFailed):
        verifier(public, ["RS256", "HS256"]).decode(forged)


def test_hand_built_hs256_is_accepted_with_its_real_secret() -> None:
    """The control for the confusion tests: the forging helper makes valid tokens."""
    decoded = verifier(SECRET, ["HS256"]).decode(hs256_by_hand(claims(iss=ISSUER), SECRET.encode()))

    assert decoded.sub == USER


# -- key rotation ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rotation(private_keys: dict[str, Any]) -> tuple[JWTToken, Any, Any]:
    """A verifier holding two EC keys by kid, and their private halves."""
    old, new = private_keys["ES256"]
    return verifier({"k1": public_pem(old), "k2": public_pem(new)}, ["ES256"]), old, new


def test_rotation_accepts_both_keys_by_kid(rotation: tuple[JWTToken, Any, Any]) -> None:
    verifying, old, new = rotation

    assert verifying.decode(sign(claims(iss=ISSUER, sub="old"), old, "ES256", kid="k1")).sub == "old"
    assert verifying.decode(sign(claims(iss=ISSUER, sub="new"), new, "ES256", kid="k2")).sub == "new"


@pytest.mark.parametrize("kid", ["k3", None], ids=["unknown kid", "no kid"])
def test_rotation_refuses_an_unknown_kid(rotation: tuple[JWTToken, Any, Any], kid: str | None) -> None:
    verifying, old, _ = rotation
    headers = {} if kid is None else {"kid": kid}

    assert refusal_code(verifying, sign(claims(iss=ISSUER), old, "ES256", **headers)) == "token_key_unknown"


def test_rotation_refuses_a_kid_that_is_not_a_string(rotation: tuple[JWTToken, Any, Any]) -> None:
    """PyJWT will not sign such a header, so it is edited into a genuine token; a
    non-string ``kid`` makes the header itself malformed."""
    verifying, old, _ = rotation
    raw = with_header(sign(claims(iss=ISSUER), old, "ES256", kid="k1"), kid=1)

    assert refusal_code(verifying, raw) == "token_invalid"


def test_rotation_checks_the_signature_against_the_named_key(rotation: tuple[JWTToken, Any, Any]) -> None:
    verifying, old, _ = rotation

    assert refusal_code(verifying, sign(claims(iss=ISSUER), old, "ES256", kid="k2")) == "token_signature_invalid"


def test_rotation_unknown_kid_over_http(rotation: tuple[JWTToken, Any, Any]) -> None:
    verifying, old, _ = rotation
    raw = sign(claims(iss=ISSUER), old, "ES256", kid="retired")

    with TestClient(whoami_app(verifying)) as app_client:
        response = app_client.get("/whoami", headers=bearer(raw))

    assert_unauthorized(response, "token_key_unknown", secrets=(raw,))


def test_rotation_across_key_types_with_key_objects(private_keys: dict[str, Any]) -> None:
    """Moving from RSA to EC keys: both verify while the rotation lasts."""
    rsa_key, _ = private_keys["RS256"]
    ec_key, _ = private_keys["ES256"]
    verifying = verifier({"old": rsa_key.public_key(), "new": ec_key.public_key()}, ["RS256", "ES256"])

    assert verifying.decode(sign(claims(iss=ISSUER, sub="old"), rsa_key, "RS256", kid="old")).sub == "old"
    assert verifying.decode(sign(claims(iss=ISSUER, sub="new"), ec_key, "ES256", kid="new")).sub == "new"


def test_rotation_across_key_types_with_pem_strings(private_keys: dict[str, Any]) -> None:
    """The same rotation configured with PEM strings, the form keys usually come in."""
    rsa_key, _ = private_keys["RS256"]
    ec_key, _ = private_keys["ES256"]
    verifying = verifier({"old": public_pem(rsa_key), "new": public_pem(ec_key)}, ["RS256", "ES256"])

    assert verifying.decode(sign(claims(iss=ISSUER, sub="old"), rsa_key, "RS256", kid="old")).sub == "old"
    assert verifying.decode(sign(claims(iss=ISSUER, sub="new"), ec_key, "ES256", kid="new")).sub == "new"


# -- leeway and configuration -----------------------------------------------------------


def test_leeway_accepts_a_just_expired_token() -> None:
    raw = sign(claims(iss=ISSUER, exp=int(time.time()) - 10), SECRET)

    assert verifier(SECRET, ["HS256"], leeway=60).decode(raw).sub == USER


def test_without_leeway_a_just_expired_token_is_refused() -> None:
    raw = sign(claims(iss=ISSUER, exp=int(time.time()) - 10), SECRET)

    assert refusal_code(verifier(SECRET, ["HS256"]), raw) == "token_expired"


def test_leeway_does_not_stretch_further_than_configured() -> None:
    raw = sign(claims(iss=ISSUER, exp=int(time.time()) - 600), SECRET)

    assert refusal_code(verifier(SECRET, ["HS256"], leeway=60), raw) == "token_expired"


def test_check_configuration_without_any_key_raises(settings: Any) -> None:
    settings.DJFAPI = {"JWT_ALGORITHMS": ["HS256"]}

    with pytest.raises(ImproperlyConfigured, match="no JWT verification key"):
        JWTToken().check_configuration()


def test_check_configuration_uses_the_settings_key(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": SECRET, "JWT_ALGORITHMS": ["HS256"]}
    verifying = JWTToken()

    verifying.check_configuration()
    assert verifying.decode(sign(claims(iss=MISSING), SECRET)).sub == USER


@pytest.mark.parametrize(
    "options",
    [
        {"key": ""},
        {"key": {}},
        {"key": SECRET, "algorithms": ["none"]},
        {"key": SECRET, "algorithms": ["HS256", "NONE"]},
        {"key": "not a pem key", "algorithms": ["RS256"]},
    ],
    ids=["empty key", "empty key mapping", "alg none", "none among others", "secret for RS256"],
)
def test_check_configuration_refuses_a_bad_configuration(settings: Any, options: dict[str, Any]) -> None:
    settings.DJFAPI = {"JWT_ALGORITHMS": ["HS256"]}

    with pytest.raises(ImproperlyConfigured):
        JWTToken(**options).check_configuration()


def test_check_configuration_accepts_explicit_keys(settings: Any, private_keys: dict[str, Any]) -> None:
    settings.DJFAPI = {}
    private, _ = private_keys["RS256"]

    JWTToken(key=SECRET, algorithms=["HS256"]).check_configuration()
    JWTToken(key=public_pem(private), algorithms=["RS256"]).check_configuration()


def company_tree(security: JWTToken) -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="companies",
        model=models.Company,
        get=schemas.Company,
        delete=False,
        security=security,
        security_scopes=SecurityScopes(get=[READ_ANY, READ_OWN]),
    )


def test_router_without_a_key_fails_at_build_time(settings: Any) -> None:
    settings.DJFAPI = {}

    with pytest.raises(ImproperlyConfigured, match="no JWT verification key"):
        company_tree(JWTToken()).router  # noqa: B018 - building the router checks the configuration


def test_router_with_a_key_builds(settings: Any) -> None:
    settings.DJFAPI = {}

    assert company_tree(JWTToken(key=SECRET)).router.routes


# -- JWTTokenDjangoPermissions -----------------------------------------------------------


def permission(scope: str) -> Permission:
    app_label, codename = scope.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def make_user(*scopes: str, **fields: Any) -> User:
    user = User.objects.create_user(username=f"user-{uuid.uuid4().hex[:12]}", **fields)
    user.user_permissions.add(*(permission(scope) for scope in scopes))
    return user


def user_headers(user_id: Any, scopes: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """A demo-signed token for ``user_id``; ``aud`` is irrelevant to this security."""
    return auth(user=str(user_id), scopes=scopes)


@pytest.fixture(scope="module")
def permissions_app() -> FastAPI:
    tree = company_tree(JWTTokenDjangoPermissions(scheme_name="DjangoUser"))
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return app


@pytest.fixture
def permissions_client(permissions_app: FastAPI, shared_connection: None) -> Iterator[TestClient]:
    with TestClient(permissions_app) as app_client:
        yield app_client


def test_user_permissions_are_the_granted_scopes(permissions_client: TestClient) -> None:
    """The token's ``aud`` is empty: the scope comes from the user's Django permission."""
    make_company(name="Mine")
    make_company(tenant=OTHER_TENANT, name="Theirs")
    user = make_user(READ_ANY)

    response = permissions_client.get("/companies", headers=user_headers(user.pk))

    assert response.status_code == 200
    assert [item["name"] for item in response.json()["items"]] == ["Mine"]


def test_permission_through_a_group_counts(permissions_client: TestClient) -> None:
    group = Group.objects.create(name="readers")
    group.permissions.add(permission(READ_OWN))
    user = make_user()
    user.groups.add(group)

    assert permissions_client.get("/companies", headers=user_headers(user.pk)).status_code == 200


def test_user_without_the_permission_is_403(permissions_client: TestClient) -> None:
    """``aud`` lists every scope, but this security ignores it: the user has none."""
    user = make_user("business.companies.create")

    response = permissions_client.get("/companies", headers=user_headers(user.pk, ALL_SCOPES))

    assert response.status_code == 403
    detail = response.json()["detail"]
    assert set(detail) == ERROR_KEYS
    assert (detail["type"], detail["code"]) == ("forbidden", "required_scope_missing")


def test_superuser_holds_every_scope(permissions_client: TestClient) -> None:
    user = User.objects.create_superuser(username="root", password="unused-password")

    assert permissions_client.get("/companies", headers=user_headers(user.pk)).status_code == 200


def test_unknown_user_is_401(permissions_client: TestClient) -> None:
    user = make_user(READ_ANY)
    missing_id = user.pk + 1000

    assert_unauthorized(permissions_client.get("/companies", headers=user_headers(missing_id)), "user_unknown")


def test_inactive_user_is_401(permissions_client: TestClient) -> None:
    user = make_user(READ_ANY, is_active=False)

    assert_unauthorized(permissions_client.get("/companies", headers=user_headers(user.pk)), "user_inactive")


@pytest.mark.parametrize("sub", ["alice", "1.5", "1; DROP TABLE auth_user"])
def test_non_numeric_sub_is_401(permissions_client: TestClient, sub: str) -> None:
    make_user(READ_ANY)

    assert_unauthorized(permissions_client.get("/companies", headers=user_headers(sub)), "user_unknown")


def test_integer_sub_finds_the_user(permissions_client: TestClient) -> None:
    """An integer primary key is naturally sent as an integer ``sub``. djfapi means to
    accept that (``AccessToken`` turns numeric ids into strings), so the user is found."""
    user = make_user(READ_ANY)

    response = permissions_client.get("/companies", headers=bearer(sign(claims(sub=user.pk, aud=[]))))

    assert response.status_code == 200, response.text


class SignalProbe:
    """Records, for every query, its thread and whether that thread was between
    ``request_started`` and ``request_finished`` at the time."""

    def __init__(self) -> None:
        self._state = threading.local()
        self.started_in: list[int] = []
        self.queries: list[tuple[int, bool, str]] = []

    def started(self, **_: Any) -> None:
        self._state.inside = True
        self.started_in.append(threading.get_ident())

    def finished(self, **_: Any) -> None:
        self._state.inside = False

    def execute(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries.append((threading.get_ident(), getattr(self._state, "inside", False), sql))
        return execute(sql, params, many, context)

    def user_queries(self) -> list[tuple[int, bool, str]]:
        return [query for query in self.queries if 'FROM "auth_user"' in query[2]]


@pytest.fixture
def probe(shared_connection: None) -> Iterator[SignalProbe]:
    recorder = SignalProbe()
    request_started.connect(recorder.started, weak=False)
    request_finished.connect(recorder.finished, weak=False)
    try:
        with connection.execute_wrapper(recorder.execute):
            yield recorder
    finally:
        request_started.disconnect(recorder.started)
        request_finished.disconnect(recorder.finished)


def test_user_lookup_runs_inside_the_routes_signalled_call(permissions_client: TestClient, probe: SignalProbe) -> None:
    """What can be measured honestly here: the test shares one connection with the app
    (so connection closing is not observable), but every query passes through the
    connection's execute wrappers in the thread that runs it. The probe shows that the
    user lookup ran in the worker thread that sent ``request_started``, before it sent
    ``request_finished``, and that the route's other queries ran in that same single
    signalled call (one ``request_started`` for the whole request). The probe's own
    control is the query the test makes outside any request: recorded as outside."""
    user = make_user(READ_ANY)
    make_company()
    probe.queries.clear()

    assert permissions_client.get("/companies", headers=user_headers(user.pk)).status_code == 200

    assert len(probe.started_in) == 1
    worker = probe.started_in[0]
    assert worker != threading.get_ident()
    assert [(thread, inside) for thread, inside, _ in probe.user_queries()] == [(worker, True)]
    assert all(thread == worker and inside for thread, inside, _ in probe.queries)
    assert any('FROM "business_company"' in sql for _, _, sql in probe.queries)

    User.objects.get(pk=user.pk)
    thread, inside, _ = probe.user_queries()[-1]
    assert (thread, inside) == (threading.get_ident(), False)


def test_user_lookup_of_the_plain_dependency_is_signalled(probe: SignalProbe) -> None:
    """Used as an ordinary ``Security`` dependency, the lookup still runs between the signals."""
    user = make_user(READ_ANY)
    probe.queries.clear()

    with TestClient(whoami_app(JWTTokenDjangoPermissions())) as app_client:
        response = app_client.get("/whoami", headers=user_headers(user.pk))

    assert response.status_code == 200
    assert response.json()["scope"] == READ_ANY
    lookups = probe.user_queries()
    assert len(lookups) == 1
    thread, inside, _ = lookups[0]
    assert inside
    assert thread in probe.started_in
    assert thread != threading.get_ident()


def test_an_invalid_token_never_reaches_the_user_lookup(permissions_client: TestClient, probe: SignalProbe) -> None:
    user = make_user(READ_ANY)
    probe.queries.clear()

    response = permissions_client.get("/companies", headers=auth(user=str(user.pk), expires=-10))

    assert_unauthorized(response, "token_expired")
    assert probe.user_queries() == []


# -- verified tokens are remembered until they expire ------------------------------------------------------------


def test_a_verified_token_is_remembered_and_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = JWTToken()
    raw = sign(claims(exp=int(time.time()) + 60))

    first = verifier.decode(raw)
    again = verifier.decode(raw)
    later = time.time() + 61
    monkeypatch.setattr("djfapi.security.jwt.time.time", lambda: later)

    assert again is first  # not verified a second time
    with pytest.raises(AuthenticationFailed) as expired:
        verifier.decode(raw)
    assert expired.value.code == "token_expired"


def test_a_remembered_token_is_forgotten_with_its_key(settings: Any) -> None:
    verifier = JWTToken()
    raw = sign(claims())
    assert verifier.decode(raw).sub == USER

    settings.DJFAPI = {**settings.DJFAPI, "JWT_KEY": "another-key-that-is-at-least-32-bytes-long"}

    with pytest.raises(AuthenticationFailed) as refused:
        verifier.decode(raw)
    assert refused.value.code == "token_signature_invalid"


def test_a_forged_token_is_never_remembered_as_verified() -> None:
    verifier = JWTToken()
    forged = sign(claims(), key="another-key-that-is-at-least-32-bytes-long")

    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            verifier.decode(forged)

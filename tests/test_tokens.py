"""Development tokens (``djfapi.security.tokens``, ``manage.py djfapi_token``) and the
HMAC key-length rule of ``JWTToken``, each refusal next to the case that is accepted.

Every minted token is verified by a real ``JWTToken()`` under the same settings (keys
generated with ``cryptography``, nothing mocked). The examples of ``docs/tokens.md``
(``docs_src/tokens/``) run here: the Python files through ``runpy``, the shell files as
real ``bash`` processes.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import runpy
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from fastapi.testclient import TestClient

from djfapi.errors import AuthenticationFailed
from djfapi.management.commands.djfapi_token import Command
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import AccessToken
from djfapi.security.jwt import JWTToken
from djfapi.security.tokens import mint_token
from testproject.__main__ import build_parser
from testproject.business import models, schemas
from tests.factories import make_company

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_PAGE = REPO_ROOT / "docs" / "tokens.md"
DOCS_SRC = REPO_ROOT / "docs_src" / "tokens"
READ_ANY = "business.companies.read.any"
UPDATE_OWN = "business.companies.update.own"
SPEC_CLAIMS = {"iss", "iat", "nbf", "exp", "sub", "ten", "aud", "rls", "jti", "crt"}
MINIMUM_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
NEW_KEY_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(64))"'
UNREACHABLE_DATABASE = "postgres://nobody@127.0.0.1:9/nowhere"


def hmac_key(length: int) -> str:
    return "k" * length


def unverified(raw: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and the claims of ``raw`` as they were signed (nothing dropped or added)."""
    return jwt.get_unverified_header(raw), jwt.decode(raw, options={"verify_signature": False})


def verified(raw: str) -> AccessToken:
    """``raw`` verified by a fresh ``JWTToken()`` under the current settings."""
    return JWTToken().decode(raw)


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
    """Two private keys per asymmetric algorithm."""
    return {algorithm: (make(), make()) for algorithm, make in KEY_MAKERS.items()}


def run_command(*args: str) -> str:
    """``manage.py djfapi_token *args`` in this process; returns its stdout."""
    out = io.StringIO()
    call_command("djfapi_token", *args, stdout=out)
    return out.getvalue()


# -- mint_token: claims -------------------------------------------------------------------


def test_mint_token_writes_exactly_the_spec_claims() -> None:
    before = int(time.time())
    raw = mint_token(tenant="t1", user="u1", scopes=[UPDATE_OWN, READ_ANY], roles=["admin", "auditor"])
    after = int(time.time())

    header, claims = unverified(raw)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(claims) == SPEC_CLAIMS
    assert claims["iss"] == django_settings.DJFAPI["JWT_ISSUER"]
    assert claims["sub"] == "u1"
    assert claims["ten"] == "t1"
    assert claims["aud"] == [UPDATE_OWN, READ_ANY]
    assert claims["rls"] == ["admin", "auditor"]
    assert claims["crt"] is False
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    assert before <= claims["iat"] == claims["nbf"] <= after
    assert claims["exp"] == claims["iat"] + 3600
    assert verified(raw).aud == [UPDATE_OWN, READ_ANY]


def test_mint_token_options_reach_their_claims() -> None:
    raw = mint_token(tenant="t1", user="u1", scopes=[READ_ANY], critical=True, expires=60, not_before=-5, issuer="x")
    _, claims = unverified(raw)

    assert claims["crt"] is True
    assert claims["iss"] == "x"
    assert claims["nbf"] == claims["iat"] - 5
    assert claims["exp"] == claims["iat"] + 60
    assert mint_token(tenant="t1", user="u1", scopes=[]) != mint_token(tenant="t1", user="u1", scopes=[])  # jti


def test_time_options_give_tokens_the_api_refuses() -> None:
    """Negative ``expires`` and positive ``not_before`` are for trying the 401s."""
    with pytest.raises(AuthenticationFailed) as expired:
        verified(mint_token(tenant="t", user="u", scopes=[], expires=-10))
    with pytest.raises(AuthenticationFailed) as early:
        verified(mint_token(tenant="t", user="u", scopes=[], not_before=300))

    assert (expired.value.code, early.value.code) == ("token_expired", "token_not_yet_valid")


def test_iss_is_omitted_when_no_issuer_is_configured_nor_given(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": hmac_key(32)}

    _, without = unverified(mint_token(tenant="t", user="u", scopes=[READ_ANY]))
    _, given = unverified(mint_token(tenant="t", user="u", scopes=[READ_ANY], issuer="someone"))

    assert set(without) == SPEC_CLAIMS - {"iss"}
    assert given["iss"] == "someone"
    assert verified(mint_token(tenant="t", user="u", scopes=[READ_ANY])).sub == "u"


def test_ten_is_omitted_without_a_tenant() -> None:
    raw = mint_token(tenant=None, user="u", scopes=[READ_ANY])

    assert "ten" not in unverified(raw)[1]
    assert verified(raw).ten is None


# -- mint_token: keys and algorithms --------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_hmac_algorithms_sign_with_jwt_key(settings: Any, algorithm: str) -> None:
    settings.DJFAPI = {"JWT_KEY": hmac_key(64), "JWT_ALGORITHMS": [algorithm]}

    raw = mint_token(tenant="t", user="u", scopes=[READ_ANY])

    assert unverified(raw)[0]["alg"] == algorithm
    assert verified(raw).aud == [READ_ANY]


@pytest.mark.parametrize("key_form", ["pem", "object"])
@pytest.mark.parametrize("algorithm", list(KEY_MAKERS))
def test_asymmetric_algorithms_sign_with_jwt_signing_key(
    settings: Any, private_keys: dict[str, Any], algorithm: str, key_form: str
) -> None:
    private, _ = private_keys[algorithm]
    signing_key = private_pem(private) if key_form == "pem" else private
    settings.DJFAPI = {
        "JWT_KEY": public_pem(private),
        "JWT_SIGNING_KEY": signing_key,
        "JWT_ALGORITHMS": [algorithm],
        "JWT_ISSUER": "iss",
    }

    raw = mint_token(tenant="t", user="u", scopes=[READ_ANY], critical=True)

    assert unverified(raw)[0]["alg"] == algorithm
    decoded = verified(raw)
    assert (decoded.iss, decoded.ten, decoded.sub, decoded.aud, decoded.crt) == ("iss", "t", "u", [READ_ANY], True)


def test_a_signing_key_other_than_the_verified_one_is_refused_by_the_api(
    settings: Any, private_keys: dict[str, Any]
) -> None:
    """The control for the test above: the verifier really checks the signature."""
    private, stranger = private_keys["ES256"]
    settings.DJFAPI = {"JWT_KEY": public_pem(private), "JWT_SIGNING_KEY": stranger, "JWT_ALGORITHMS": ["ES256"]}

    with pytest.raises(AuthenticationFailed) as refused:
        verified(mint_token(tenant="t", user="u", scopes=[READ_ANY]))

    assert refused.value.code == "token_signature_invalid"


def test_jwt_signing_key_wins_for_hmac_too(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": hmac_key(40), "JWT_SIGNING_KEY": "s" * 40}

    raw = mint_token(tenant="t", user="u", scopes=[READ_ANY])

    assert jwt.decode(raw, "s" * 40, algorithms=["HS256"], options={"verify_aud": False})["sub"] == "u"


def test_hmac_kid_mapping_signs_with_the_first_or_the_given_kid(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": {"new": hmac_key(32), "old": "o" * 32}}

    first = mint_token(tenant="t", user="first", scopes=[READ_ANY])
    chosen = mint_token(tenant="t", user="chosen", scopes=[READ_ANY], kid="old")

    assert unverified(first)[0]["kid"] == "new"
    assert unverified(chosen)[0]["kid"] == "old"
    assert (verified(first).sub, verified(chosen).sub) == ("first", "chosen")
    assert jwt.decode(chosen, "o" * 32, algorithms=["HS256"], options={"verify_aud": False})["sub"] == "chosen"


def test_asymmetric_kid_mappings(settings: Any, private_keys: dict[str, Any]) -> None:
    """Rotation across key types: both public keys verify, the new private key signs."""
    old, _ = private_keys["RS256"]
    new, _ = private_keys["EdDSA"]
    settings.DJFAPI = {
        "JWT_KEY": {"2026-05": public_pem(old), "2026-11": public_pem(new)},
        "JWT_SIGNING_KEY": {"2026-11": private_pem(new), "2026-05": private_pem(old)},
        "JWT_ALGORITHMS": ["EdDSA", "RS256"],
    }

    raw = mint_token(tenant="t", user="u", scopes=[READ_ANY])

    assert unverified(raw)[0] == {"alg": "EdDSA", "kid": "2026-11", "typ": "JWT"}
    assert verified(raw).sub == "u"


def test_one_signing_key_for_a_kid_mapping_needs_the_kid(settings: Any, private_keys: dict[str, Any]) -> None:
    private, other = private_keys["ES256"]
    settings.DJFAPI = {
        "JWT_KEY": {"a": public_pem(other), "b": public_pem(private)},
        "JWT_SIGNING_KEY": private_pem(private),
        "JWT_ALGORITHMS": ["ES256"],
    }

    with pytest.raises(ImproperlyConfigured, match=r"tokens must name their key: pass kid=\.\.\. \(--kid\)"):
        mint_token(tenant="t", user="u", scopes=[READ_ANY])
    raw = mint_token(tenant="t", user="u", scopes=[READ_ANY], kid="b")

    assert unverified(raw)[0]["kid"] == "b"
    assert verified(raw).sub == "u"


@pytest.mark.parametrize("algorithm", list(KEY_MAKERS))
def test_asymmetric_algorithm_without_signing_key_is_refused(
    settings: Any, private_keys: dict[str, Any], algorithm: str
) -> None:
    private, _ = private_keys[algorithm]
    settings.DJFAPI = {"JWT_KEY": public_pem(private), "JWT_ALGORITHMS": [algorithm]}

    with pytest.raises(ImproperlyConfigured) as refused:
        mint_token(tenant="t", user="u", scopes=[READ_ANY])

    assert str(refused.value) == (
        f"mint_token: {algorithm} is an asymmetric algorithm: DJFAPI['JWT_KEY'] verifies but cannot sign. Set "
        f"DJFAPI['JWT_SIGNING_KEY'] to the PEM private key (only where tokens are minted, e.g. development "
        f"settings), or put an HS* algorithm first in DJFAPI['JWT_ALGORITHMS']."
    )


@pytest.mark.parametrize(
    "config, kid, named",
    [
        ({"JWT_KEY": {"a": hmac_key(32)}}, "b", "DJFAPI['JWT_KEY'] holds ['a']"),
        ({"JWT_KEY": hmac_key(32), "JWT_SIGNING_KEY": {"a": hmac_key(32)}}, "b", "JWT_SIGNING_KEY'] holds ['a']"),
        ({"JWT_KEY": {"a": hmac_key(32)}, "JWT_SIGNING_KEY": hmac_key(32)}, "b", "DJFAPI['JWT_KEY'] knows ['a']"),
    ],
    ids=["in JWT_KEY", "in JWT_SIGNING_KEY", "signing key single, JWT_KEY mapping"],
)
def test_unknown_kid_is_refused(settings: Any, config: dict[str, Any], kid: str, named: str) -> None:
    settings.DJFAPI = config

    with pytest.raises(ImproperlyConfigured, match=r"^mint_token: unknown kid 'b': ") as refused:
        mint_token(tenant="t", user="u", scopes=[READ_ANY], kid=kid)
    assert named in str(refused.value)
    assert verified(mint_token(tenant="t", user="u", scopes=[READ_ANY], kid="a")).sub == "u"


@pytest.mark.parametrize("config", [{}, {"JWT_KEY": ""}, {"JWT_KEY": {}}], ids=["unset", "empty", "empty mapping"])
def test_no_key_at_all_is_refused(settings: Any, config: dict[str, Any]) -> None:
    settings.DJFAPI = config

    with pytest.raises(ImproperlyConfigured, match=r"^mint_token: no key to sign tokens with\. Set DJFAPI"):
        mint_token(tenant="t", user="u", scopes=[READ_ANY])


def test_a_signing_key_of_the_wrong_type_is_refused(settings: Any, private_keys: dict[str, Any]) -> None:
    ec_key, _ = private_keys["ES256"]
    settings.DJFAPI = {"JWT_SIGNING_KEY": private_pem(ec_key), "JWT_ALGORITHMS": ["RS256"]}

    with pytest.raises(ImproperlyConfigured, match=r"^mint_token: cannot sign with RS256: "):
        mint_token(tenant="t", user="u", scopes=[READ_ANY])


def test_alg_none_first_is_refused(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": hmac_key(32), "JWT_ALGORITHMS": ["none"]}

    with pytest.raises(ImproperlyConfigured, match="must start with a signing algorithm"):
        mint_token(tenant="t", user="u", scopes=[READ_ANY])


# -- the HMAC key-length rule ------------------------------------------------------------------


def short_key_message(owner: str, source: str, length: int, algorithm: str, kid: str | None = None) -> str:
    named = f"the HMAC key {kid!r} in {source}" if kid else f"the HMAC key in {source}"
    message = (
        f"{owner}: {named} is {length} bytes long; {algorithm} needs at least {MINIMUM_BYTES[algorithm]} bytes "
        f"(RFC 7518 §3.2). Use a longer key, e.g. the output of {NEW_KEY_HINT}"
    )
    fits = [name for name, minimum in MINIMUM_BYTES.items() if length >= minimum]
    if fits:
        message += (
            f", or take {algorithm} out of the allowed algorithms (JWT_ALGORITHMS): the key is long enough for "
            f"{', '.join(fits)}"
        )
    return message + "."


@pytest.mark.parametrize("algorithm", list(MINIMUM_BYTES))
def test_a_key_one_byte_short_is_refused_at_start_up(settings: Any, algorithm: str) -> None:
    minimum = MINIMUM_BYTES[algorithm]
    settings.DJFAPI = {"JWT_KEY": hmac_key(minimum - 1), "JWT_ALGORITHMS": [algorithm]}

    with pytest.raises(ImproperlyConfigured) as refused:
        JWTToken().check_configuration()
    with pytest.raises(ImproperlyConfigured) as minting:
        mint_token(tenant="t", user="u", scopes=[READ_ANY])

    assert str(refused.value) == short_key_message("JWTToken", "DJFAPI['JWT_KEY']", minimum - 1, algorithm)
    assert str(minting.value) == short_key_message("mint_token", "DJFAPI['JWT_KEY']", minimum - 1, algorithm)


@pytest.mark.parametrize("algorithm", list(MINIMUM_BYTES))
def test_a_key_of_the_minimum_length_is_accepted_without_any_warning(settings: Any, algorithm: str) -> None:
    """The control at the boundary, and the point of the rule: with the keys djfapi
    accepts, PyJWT never warns about key length, not per signed nor per verified token."""
    settings.DJFAPI = {"JWT_KEY": hmac_key(MINIMUM_BYTES[algorithm]), "JWT_ALGORITHMS": [algorithm]}
    verifying = JWTToken()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verifying.check_configuration()
        for _ in range(3):
            assert verifying.decode(mint_token(tenant="t", user="u", scopes=[READ_ANY])).aud == [READ_ANY]


def test_the_key_argument_is_checked_too() -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        JWTToken(key="secret", algorithms=["HS256"], scheme_name="Partner").check_configuration()

    assert str(refused.value) == short_key_message("Partner", "the key argument", 6, "HS256")
    JWTToken(key=b"b" * 32, algorithms=["HS256"]).check_configuration()


def test_bytes_are_counted_not_characters() -> None:
    """PyJWT measures the UTF-8 bytes: 16 two-byte characters are 32 bytes."""
    JWTToken(key="é" * 16, algorithms=["HS256"]).check_configuration()
    with pytest.raises(ImproperlyConfigured, match="is 30 bytes long"):
        JWTToken(key="é" * 15, algorithms=["HS256"]).check_configuration()


def test_the_strictest_configured_hs_algorithm_decides() -> None:
    """A token's header picks among the configured algorithms: a 40-byte key could be
    used for HS512, so it is refused, with the way out of dropping HS512."""
    with pytest.raises(ImproperlyConfigured) as refused:
        JWTToken(key=hmac_key(40), algorithms=["HS256", "HS384", "HS512"]).check_configuration()

    assert "HS512 needs at least 64 bytes" in str(refused.value)
    assert "take HS384, HS512 out of the allowed algorithms (JWT_ALGORITHMS)" in str(refused.value)
    JWTToken(key=hmac_key(40), algorithms=["HS256"]).check_configuration()
    JWTToken(key=hmac_key(64), algorithms=["HS256", "HS384", "HS512"]).check_configuration()


def test_an_rsa_key_under_2048_bits_is_refused_and_2048_verifies_without_warnings() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    enough = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(ImproperlyConfigured) as refused:
        JWTToken(key={"old": short.public_key()}, algorithms=["RS256"], scheme_name="Partner").check_configuration()
    verifying = JWTToken(key=enough.public_key(), algorithms=["RS256"])
    claims = {"sub": "u", "exp": int(time.time()) + 60, "aud": [READ_ANY], "iss": django_settings.DJFAPI["JWT_ISSUER"]}
    token = jwt.encode(claims, enough, algorithm="RS256")

    assert str(refused.value) == (
        "Partner: the RSA key 'old' in the key argument has 1024 bits; RSA keys need at least 2048. Generate a new "
        "one, e.g. openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072."
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verifying.decode(token).aud == [READ_ANY]


def test_a_short_key_inside_a_kid_mapping_is_refused(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": {"long": hmac_key(48), "short": hmac_key(47)}, "JWT_ALGORITHMS": ["HS384"]}

    with pytest.raises(ImproperlyConfigured) as refused:
        JWTToken().check_configuration()
    with pytest.raises(ImproperlyConfigured) as minting:
        mint_token(tenant="t", user="u", scopes=[READ_ANY], kid="short")

    assert str(refused.value) == short_key_message("JWTToken", "DJFAPI['JWT_KEY']", 47, "HS384", kid="short")
    assert str(minting.value) == short_key_message("mint_token", "DJFAPI['JWT_KEY']", 47, "HS384", kid="short")


def test_a_kid_mapping_of_long_keys_is_accepted(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": {"long": hmac_key(48), "longer": hmac_key(60)}, "JWT_ALGORITHMS": ["HS384"]}

    JWTToken().check_configuration()
    assert verified(mint_token(tenant="t", user="u", scopes=[READ_ANY], kid="longer")).sub == "u"


def test_a_short_signing_key_is_refused(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": hmac_key(32), "JWT_SIGNING_KEY": hmac_key(31)}

    with pytest.raises(ImproperlyConfigured) as minting:
        mint_token(tenant="t", user="u", scopes=[READ_ANY])

    assert str(minting.value) == short_key_message("mint_token", "DJFAPI['JWT_SIGNING_KEY']", 31, "HS256")


def test_asymmetric_keys_are_not_measured_as_secrets(private_keys: dict[str, Any]) -> None:
    """A public key next to HS512 is a key object, not an HMAC secret: no length rule."""
    private, _ = private_keys["EdDSA"]

    JWTToken(key=public_pem(private), algorithms=["EdDSA", "HS512"]).check_configuration()


def company_tree(security: JWTToken) -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="companies",
        model=models.Company,
        get=schemas.Company,
        delete=False,
        security=security,
        security_scopes=SecurityScopes(get=[READ_ANY]),
    )


def test_a_router_with_a_short_key_fails_when_it_is_built(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": "secret", "JWT_ALGORITHMS": ["HS256"]}

    with pytest.raises(ImproperlyConfigured, match="6 bytes long; HS256 needs at least 32 bytes"):
        company_tree(JWTToken()).router  # noqa: B018 - building the router checks the configuration

    settings.DJFAPI = {"JWT_KEY": hmac_key(32), "JWT_ALGORITHMS": ["HS256"]}
    assert company_tree(JWTToken()).router.routes


# -- manage.py djfapi_token ------------------------------------------------------------------------


def test_command_prints_only_the_token() -> None:
    output = run_command("--tenant", "t1", "--user", "u1", "--scope", READ_ANY, "--scope", UPDATE_OWN)

    assert output.endswith("\n") and output.count("\n") == 1
    raw = output.strip()
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", raw)
    header, claims = unverified(raw)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(claims) == SPEC_CLAIMS
    decoded = verified(raw)
    assert (decoded.ten, decoded.sub, decoded.aud) == ("t1", "u1", [READ_ANY, UPDATE_OWN])
    assert (decoded.rls, decoded.crt) == ([], False)


def test_command_options_reach_their_claims() -> None:
    raw = run_command(
        "--tenant", "t", "--user", "u", "--scope", READ_ANY, "--critical", "--expires", "120",
        "--not-before", "-30", "--issuer", "other", "--role", "admin", "--role", "auditor",
    ).strip()  # fmt: skip

    _, claims = unverified(raw)
    assert claims["crt"] is True
    assert claims["iss"] == "other"
    assert claims["rls"] == ["admin", "auditor"]
    assert claims["exp"] == claims["iat"] + 120
    assert claims["nbf"] == claims["iat"] - 30


def test_command_time_flags_give_tokens_the_api_refuses() -> None:
    base = ("--tenant", "t", "--user", "u", "--scope", READ_ANY)
    expired = run_command(*base, "--expires", "-10").strip()
    early = run_command(*base, "--not-before", "300").strip()

    with pytest.raises(AuthenticationFailed, match="expired"):
        verified(expired)
    with pytest.raises(AuthenticationFailed, match="not valid yet"):
        verified(early)
    assert unverified(early)[1]["nbf"] >= int(time.time()) + 299


def test_command_kid(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": {"a": hmac_key(32), "b": "b" * 32}}

    raw = run_command("--tenant", "t", "--user", "u", "--scope", READ_ANY, "--kid", "b").strip()

    assert unverified(raw)[0]["kid"] == "b"
    assert verified(raw).sub == "u"


def test_command_token_is_accepted_by_the_demo_api(client: TestClient) -> None:
    make_company(tenant="t1", name="Mine")
    make_company(tenant="t2", name="Theirs")
    raw = run_command("--tenant", "t1", "--user", "u1", "--scope", READ_ANY).strip()

    response = client.get("/companies", headers={"Authorization": f"Bearer {raw}"})

    assert response.status_code == 200, response.text
    assert [item["name"] for item in response.json()["items"]] == ["Mine"]


@pytest.mark.parametrize(
    "args, missing",
    [
        (("--user", "u", "--scope", READ_ANY), "--tenant"),
        (("--tenant", "t", "--scope", READ_ANY), "--user"),
        (("--tenant", "t", "--user", "u"), "--scope"),
    ],
    ids=["no tenant", "no user", "no scope"],
)
def test_command_refuses_missing_flags(args: tuple[str, ...], missing: str) -> None:
    with pytest.raises(CommandError, match=f"the following arguments are required: {missing}"):
        run_command(*args)


@pytest.mark.parametrize(
    "config, extra, fix",
    [
        ({"JWT_KEY": "-", "JWT_ALGORITHMS": ["RS256"]}, (), "Set DJFAPI['JWT_SIGNING_KEY'] to the PEM private key"),
        ({"JWT_KEY": {"a": hmac_key(32)}}, ("--kid", "z"), "unknown kid 'z': DJFAPI['JWT_KEY'] holds ['a']"),
        ({"JWT_KEY": hmac_key(31)}, (), "31 bytes long; HS256 needs at least 32 bytes"),
        ({"JWT_KEY": hmac_key(47), "JWT_ALGORITHMS": ["HS384"]}, (), "47 bytes long; HS384 needs at least 48 bytes"),
        ({"JWT_KEY": hmac_key(63), "JWT_ALGORITHMS": ["HS512"]}, (), "63 bytes long; HS512 needs at least 64 bytes"),
        ({"JWT_KEY": {"ok": hmac_key(32), "short": "s"}}, ("--kid", "short"), "key 'short' in DJFAPI['JWT_KEY']"),
        ({}, (), "no key to sign tokens with"),
    ],
    ids=["asymmetric without signing key", "unknown kid", "HS256 31", "HS384 47", "HS512 63", "short kid", "no key"],
)
def test_command_turns_configuration_errors_into_command_errors(
    settings: Any, config: dict[str, Any], extra: tuple[str, ...], fix: str
) -> None:
    settings.DJFAPI = config

    with pytest.raises(CommandError) as refused:
        run_command("--tenant", "t", "--user", "u", "--scope", READ_ANY, *extra)

    assert fix in str(refused.value)


@pytest.mark.parametrize(
    "algorithm, length", [("HS256", 32), ("HS384", 48), ("HS512", 64)], ids=["HS256 32", "HS384 48", "HS512 64"]
)
def test_command_accepts_keys_of_the_minimum_length(settings: Any, algorithm: str, length: int) -> None:
    settings.DJFAPI = {"JWT_KEY": hmac_key(length), "JWT_ALGORITHMS": [algorithm]}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = run_command("--tenant", "t", "--user", "u", "--scope", READ_ANY).strip()
        assert verified(raw).sub == "u"


def test_command_stays_away_from_the_database() -> None:
    """No system checks and no migration check. The ``call_command`` tests of this module
    run without database access (pytest-django fails any query there): the command opens
    no connection; the shell example below shows the same with an unreachable database."""
    assert Command.requires_system_checks == []
    assert Command.requires_migrations_checks is False


def test_demo_cli_and_command_share_their_flags() -> None:
    """``python -m testproject token`` is built from the same definition, so they cannot drift."""
    (subcommands,) = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    demo = subcommands.choices["token"]
    command = Command().create_parser("manage.py", "djfapi_token")

    def flags(parser: Any) -> dict[str, tuple[str | None, bool, Any]]:
        return {
            action.option_strings[0]: (action.dest, action.required, action.default)
            for action in parser._actions
            if action.option_strings and action.option_strings[0].startswith("--")
        }

    command_flags = {flag: value for flag, value in flags(command).items() if flag in flags(demo)}
    assert flags(demo) == command_flags
    assert {"--tenant", "--user", "--scope", "--critical", "--expires", "--not-before", "--issuer"} <= set(flags(demo))
    assert {"--role", "--kid"} <= set(command_flags)


# -- the examples of docs/tokens.md --------------------------------------------------------------


def bash(script: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a docs shell example as written, with this interpreter first on PATH."""
    child_env = dict(os.environ)
    child_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), child_env.get("PATH", "")])
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH")]))
    child_env.pop("DJANGO_SETTINGS_MODULE", None)  # the example names its settings itself
    child_env.update(env)
    return subprocess.run(["bash", str(script)], cwd=cwd, env=child_env, capture_output=True, text=True, timeout=60)


def test_docs_page_includes_every_example_and_only_existing_ones() -> None:
    included = set(re.findall(r'^--8<-- "docs_src/tokens/([^"]+)"$', DOCS_PAGE.read_text(), re.MULTILINE))

    assert included == {path.name for path in DOCS_SRC.iterdir() if path.suffix in {".py", ".sh"}}


def test_docs_shell_example_runs_and_its_token_is_accepted(client: TestClient, tmp_path: Path) -> None:
    """The page's command, run by bash as written. An unreachable database and an empty
    working directory show that it needs no database (no SQLite file appears either)."""
    make_company(tenant="demo", name="Demo company")

    result = bash(DOCS_SRC / "djfapi_token.sh", cwd=tmp_path, DATABASE_URL=UNREACHABLE_DATABASE)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n"), result.stdout
    raw = result.stdout.strip()
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", raw)
    assert list(tmp_path.iterdir()) == []
    _, claims = unverified(raw)
    assert (claims["ten"], claims["sub"], claims["aud"]) == ("demo", "demo-user", [READ_ANY, UPDATE_OWN])
    assert claims["exp"] == claims["iat"] + 600
    response = client.get("/companies", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200, response.text
    assert [item["name"] for item in response.json()["items"]] == ["Demo company"]


def test_docs_flag_table_matches_the_command() -> None:
    documented = set(re.findall(r"^\| `(--[a-z-]+)", DOCS_PAGE.read_text(), re.MULTILINE))
    parser = Command().create_parser("manage.py", "djfapi_token")
    actual = {action.option_strings[-1] for action in parser._actions if action.option_strings} - {
        "--version",
        "--verbosity",
        "--settings",
        "--pythonpath",
        "--traceback",
        "--no-color",
        "--force-color",
        "--skip-checks",
        "--help",
    }

    assert documented == actual


def test_docs_new_secret_suits_every_hmac_algorithm(tmp_path: Path) -> None:
    result = bash(DOCS_SRC / "new_secret.sh", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert len(secret.encode()) >= 64
    JWTToken(key=secret, algorithms=["HS256", "HS384", "HS512"]).check_configuration()


def test_docs_mint_example(client: TestClient) -> None:
    make_company(tenant="tenant-a", name="Visible")
    example = runpy.run_path(str(DOCS_SRC / "mint.py"))

    decoded = verified(example["token"])
    assert (decoded.ten, decoded.sub, decoded.rls) == ("tenant-a", "user-1", ["admin"])
    response = client.get("/companies", headers=example["headers"])
    assert response.status_code == 200, response.text
    assert [item["name"] for item in response.json()["items"]] == ["Visible"]


def test_docs_hs256_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJFAPI_JWT_SECRET", hmac_key(32))
    settings.DJFAPI = runpy.run_path(str(DOCS_SRC / "settings_hs256.py"))["DJFAPI"]

    assert verified(runpy.run_path(str(DOCS_SRC / "mint.py"))["token"]).iss == "my-project"

    monkeypatch.setenv("DJFAPI_JWT_SECRET", "secret")
    settings.DJFAPI = runpy.run_path(str(DOCS_SRC / "settings_hs256.py"))["DJFAPI"]
    with pytest.raises(ImproperlyConfigured, match="HS256 needs at least 32 bytes"):
        JWTToken().check_configuration()


def test_docs_rs256_settings_with_generated_keys(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runpy.run_path(str(DOCS_SRC / "generate_keys.py"))["write_key_pair"](tmp_path / "keys")
    monkeypatch.setenv("DJFAPI_KEYS_DIR", str(tmp_path / "keys"))
    settings.DJFAPI = runpy.run_path(str(DOCS_SRC / "settings_rs256.py"))["DJFAPI"]

    raw = runpy.run_path(str(DOCS_SRC / "mint.py"))["token"]

    assert unverified(raw)[0]["alg"] == "RS256"
    assert verified(raw).aud == [READ_ANY, UPDATE_OWN]

    # Production settings: the same, without the private key. They verify but cannot mint.
    settings.DJFAPI = {name: value for name, value in settings.DJFAPI.items() if name != "JWT_SIGNING_KEY"}
    assert verified(raw).sub == "user-1"
    with pytest.raises(ImproperlyConfigured) as refused:
        mint_token(tenant="t", user="u", scopes=[READ_ANY])
    assert f"```text\n{refused.value}\n```" in DOCS_PAGE.read_text()


def test_docs_rotation_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    new_secret, old_secret = hmac_key(40), "o" * 40
    monkeypatch.setenv("DJFAPI_JWT_SECRET_2026_11", new_secret)
    monkeypatch.setenv("DJFAPI_JWT_SECRET_2026_05", old_secret)
    settings.DJFAPI = runpy.run_path(str(DOCS_SRC / "settings_rotation.py"))["DJFAPI"]

    first = runpy.run_path(str(DOCS_SRC / "mint.py"))["token"]
    old = mint_token(tenant="t", user="u", scopes=[READ_ANY], kid="2026-05")

    assert unverified(first)[0]["kid"] == "2026-11"
    assert unverified(old)[0]["kid"] == "2026-05"
    assert verified(first).sub == "user-1" and verified(old).sub == "u"
    with pytest.raises(ImproperlyConfigured, match=r"^mint_token: unknown kid 'k9': "):
        mint_token(tenant="t", user="u", scopes=[READ_ANY], kid="k9")


def test_docs_show_the_real_short_key_message(settings: Any) -> None:
    settings.DJFAPI = {"JWT_KEY": "secret", "JWT_ALGORITHMS": ["HS256"]}

    with pytest.raises(ImproperlyConfigured) as refused:
        JWTToken().check_configuration()

    assert f"django.core.exceptions.ImproperlyConfigured: {refused.value}\n" in DOCS_PAGE.read_text()

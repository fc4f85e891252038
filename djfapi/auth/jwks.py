"""The JSON Web Key Set of the verification keys, for other services that verify djfapi's tokens.

Only public keys are published (RSA, EC, Ed25519/Ed448), each with its ``kid`` when
``JWT_KEY`` is a ``{kid: key}`` mapping — during a rotation both keys are listed, so
verifiers fetch the new one before tokens signed with it arrive. HMAC secrets are never
published: with HS* the set is empty.
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from djfapi.security.jwt import JWTToken


def jwks(security: JWTToken | None = None) -> dict[str, list[dict[str, Any]]]:
    verification = (security or JWTToken())._resolve()
    keys = []
    for kid, key in verification.keys.items():
        jwk: dict[str, Any] | None = None
        if isinstance(key, rsa.RSAPublicKey):
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)
            algorithm = next((a for a in verification.algorithms if a[:2] in ("RS", "PS")), None)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True)
            algorithm = next((a for a in verification.algorithms if a.startswith("ES")), None)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            jwk = jwt.algorithms.OKPAlgorithm.to_jwk(key, as_dict=True)
            algorithm = "EdDSA" if "EdDSA" in verification.algorithms else None
        if jwk is None:
            continue  # an HMAC secret: never published
        jwk["use"] = "sig"
        if algorithm is not None:
            jwk["alg"] = algorithm
        if kid is not None:
            jwk["kid"] = kid
        keys.append(jwk)
    return {"keys": keys}

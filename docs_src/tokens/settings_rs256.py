"""Development settings for RS256 (ES256 and EdDSA work the same way).

``JWT_KEY`` (the public key) verifies, in every deployment. ``JWT_SIGNING_KEY`` (the
private key) is only needed where tokens are minted: whoever holds it can mint any
token, so production settings leave it out and take tokens from the identity provider.
"""

from __future__ import annotations

import os
from pathlib import Path

KEYS = Path(os.environ.get("DJFAPI_KEYS_DIR", "keys"))

DJFAPI = {
    "JWT_KEY": (KEYS / "public.pem").read_text(),
    "JWT_SIGNING_KEY": (KEYS / "private.pem").read_text(),
    "JWT_ALGORITHMS": ["RS256"],
    "JWT_ISSUER": "my-project",
}

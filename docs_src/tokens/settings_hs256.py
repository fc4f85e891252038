"""Settings for HS256: one shared secret signs and verifies (part of settings.py)."""

from __future__ import annotations

import os

DJFAPI = {
    # HS256 needs at least 32 bytes (HS384: 48, HS512: 64), or djfapi refuses to start.
    "JWT_KEY": os.environ["DJFAPI_JWT_SECRET"],
    "JWT_ALGORITHMS": ["HS256"],
    "JWT_ISSUER": "my-project",
}

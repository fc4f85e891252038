"""Key rotation: tokens signed with either secret verify; new ones name their key.

Tokens carry the ``kid`` of the key that signed them. ``mint_token`` and
``djfapi_token`` sign with the first key (``kid="2026-11"`` here) unless told otherwise
(``kid="2026-05"``, ``--kid 2026-05``).
"""

from __future__ import annotations

import os

DJFAPI = {
    "JWT_KEY": {
        "2026-11": os.environ["DJFAPI_JWT_SECRET_2026_11"],
        "2026-05": os.environ["DJFAPI_JWT_SECRET_2026_05"],  # retired once its tokens have expired
    },
    "JWT_ALGORITHMS": ["HS256"],
    "JWT_ISSUER": "my-project",
}

"""Mint a token from Python: in your tests, a seed script or ``manage.py shell``.

The token is signed with ``settings.DJFAPI``, so the project's own ``JWTToken()``
accepts it.
"""

from __future__ import annotations

from djfapi.security.tokens import mint_token

token = mint_token(
    tenant="tenant-a",
    user="user-1",
    scopes=["business.companies.read.any", "business.companies.update.own"],
    roles=["admin"],
    expires=600,  # seconds from now; a negative number gives an expired token
)
headers = {"Authorization": f"Bearer {token}"}

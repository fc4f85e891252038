"""The token routes: Django users log in and get tokens the API accepts.

A user's scopes are what their groups grant through ``DJFAPI["AUTH_GROUP_SCOPES"]``
(``shopkeepers``, ``customers``), and their marketplace is their group
``marketplace:<name>`` (``DJFAPI["AUTH_TENANT"]`` names ``marketplace`` below).
"""

from typing import Any

from catalog.api import token
from djfapi.auth.router import auth_router

router = auth_router(security=token)


def marketplace(user: Any) -> str | None:
    """The tenant of the user's tokens: ``acme`` for a member of the group ``marketplace:acme``."""
    names = user.groups.filter(name__startswith="marketplace:").values_list("name", flat=True)
    return next((name.partition(":")[2] for name in sorted(names)), None)

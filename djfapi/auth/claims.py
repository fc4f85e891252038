"""Which scopes, roles and tenant an issued token carries: the mapping from Django users.

The default mapping (``user_claims``):

* ``aud`` (scopes): every Django permission of the user (``user.get_all_permissions()``:
  their own, their groups', all of them for a superuser) written ``app_label.codename``
  that is a well-formed scope ``service.resource.action[.selector]`` — a permission with
  codename ``companies.read.any`` in app ``business`` is the scope
  ``business.companies.read.any``; Django's own ``auth.add_user`` is not a scope and is
  left out — plus, for each of the user's groups, the scopes
  ``DJFAPI["AUTH_GROUP_SCOPES"][group name]`` lists;
* ``rls`` (roles): the names of the user's groups (which ``ROLE_SCOPES`` may map to
  scopes again where the token is verified);
* ``ten`` (tenant): ``DJFAPI["AUTH_TENANT"]``, a dotted path to ``function(user) -> str |
  None``, else the user's ``tenant_id`` attribute when it has one.

``DJFAPI["AUTH_CLAIMS"]`` (a dotted path to ``function(user) -> {"aud": [...], "rls": [...],
"ten": ...}``) or ``auth_router(claims=...)`` replaces the whole mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.utils.module_loading import import_string

from djfapi.conf import TENANT_FIELD, setting
from djfapi.schemas.access import AccessScope


def _is_scope(value: str) -> bool:
    try:
        AccessScope.from_str(value)
    except ValueError:
        return False
    return True


def _function(name: str) -> Callable[..., Any] | None:
    value = setting(name)
    if value is None:
        return None
    return import_string(value) if isinstance(value, str) else value


def default_claims(user: Any) -> dict[str, Any]:
    """The default mapping (see the module docstring)."""
    permissions = sorted(p for p in user.get_all_permissions() if _is_scope(p))
    groups = sorted(user.groups.values_list("name", flat=True)) if hasattr(user, "groups") else []
    group_scopes: Mapping[str, list[str]] = setting("AUTH_GROUP_SCOPES", {})
    scopes = list(dict.fromkeys([*permissions, *(s for g in groups for s in group_scopes.get(g, ()))]))
    tenant_function = _function("AUTH_TENANT")
    tenant = tenant_function(user) if tenant_function is not None else getattr(user, TENANT_FIELD, None)
    return {"aud": scopes, "rls": groups, "ten": tenant}


def user_claims(user: Any) -> Mapping[str, Any]:
    """``DJFAPI["AUTH_CLAIMS"]`` when set, else ``default_claims``."""
    custom = _function("AUTH_CLAIMS")
    return custom(user) if custom is not None else default_claims(user)

"""Who is calling and with which scope: the result of authenticating a request.

The claim names follow djdantic's tokens (``sub``, ``ten``, ``aud`` ...), so tokens
issued for the original djfapi keep working.
"""

from __future__ import annotations

from typing import Annotated

import pydantic
from pydantic import BeforeValidator, ConfigDict, StrictBool, StrictInt


def _stringify(value: object) -> object:
    # Some issuers put numeric user or tenant ids in the token; ids are strings here.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


IdClaim = Annotated[str, BeforeValidator(_stringify)]


class AccessToken(pydantic.BaseModel):
    """The verified claims of a bearer token."""

    model_config = ConfigDict(extra="allow", frozen=True)

    iss: str | None = None
    iat: StrictInt | None = None
    nbf: StrictInt | None = None
    exp: StrictInt
    sub: IdClaim
    ten: IdClaim | None = None
    aud: list[str] = pydantic.Field(default_factory=list, description="granted scopes")
    rls: list[str] = pydantic.Field(default_factory=list, description="roles")
    jti: str | None = None
    crt: StrictBool = pydantic.Field(False, description="critical: may write fields marked is_critical")


class AccessScope(pydantic.BaseModel):
    """A scope string ``service.resource.action[.selector]`` taken apart."""

    model_config = ConfigDict(frozen=True)

    service: str
    resource: str
    action: str
    selector: str | None = None

    @classmethod
    def from_str(cls, scope: str) -> AccessScope:
        parts = scope.split(".")
        if len(parts) not in (3, 4) or not all(parts):
            raise ValueError(f"scope {scope!r} is not of the form 'service.resource.action[.selector]'")
        return cls(
            service=parts[0],
            resource=parts[1],
            action=parts[2],
            selector=parts[3] if len(parts) == 4 else None,
        )

    def __str__(self) -> str:
        parts = [self.service, self.resource, self.action]
        if self.selector:
            parts.append(self.selector)
        return ".".join(parts)


class Access(pydantic.BaseModel):
    """The authenticated caller as a route sees it.

    ``scope`` is the first of the route's scopes (in declared order) that the caller
    holds, ``None`` when the route requires none. ``granted_scopes`` is everything the
    caller holds; field-level scopes are checked against it.
    """

    model_config = ConfigDict(frozen=True)

    token: AccessToken
    scope: AccessScope | None = None
    granted_scopes: frozenset[str] = frozenset()

    @property
    def user_id(self) -> str:
        return self.token.sub

    @property
    def tenant_id(self) -> str | None:
        return self.token.ten

    @property
    def roles(self) -> list[str]:
        return self.token.rls

    @property
    def is_critical(self) -> bool:
        return self.token.crt

    def has_scope(self, *scopes: str) -> bool:
        """True when the caller holds at least one of ``scopes``."""
        return any(scope in self.granted_scopes for scope in scopes)

"""Endpoint signatures, built with ``inspect.Signature`` (FastAPI reads them like any function's).

Every generated endpoint takes the bearer token (when the tree is secured), each
ancestor's id as a typed path parameter, its own id on item routes, and the
operation's own parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response, Security

from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.schemas.access import AccessToken

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

TOKEN_PARAMETER = "token"
REQUEST_PARAMETER = "request"
#: Where a rate-limited endpoint puts the RateLimit headers when its result is not a Response.
RATELIMIT_RESPONSE_PARAMETER = "ratelimit_response"


def keyword(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def path_id_names(node: DjangoRouterSchema, *, detail: bool) -> tuple[str, ...]:
    levels = (*node.ancestors, node) if detail else node.ancestors
    return tuple(level.id_name for level in levels)


def endpoint_signature(
    node: DjangoRouterSchema,
    *,
    detail: bool,
    scopes: Sequence[str] | None,
    extra: Sequence[inspect.Parameter] = (),
    public: bool = False,
    limited: bool = False,
) -> inspect.Signature:
    """The signature FastAPI sees for one of ``node``'s endpoints.

    A ``public`` endpoint takes the token when one is sent and ``None`` when none is.
    """
    parameters: list[inspect.Parameter] = [keyword(REQUEST_PARAMETER, Request)]
    if node.security is not None:
        bearer = node.security.optional_bearer if public else node.security.bearer
        annotation = AccessToken | None if public else AccessToken
        parameters.append(keyword(TOKEN_PARAMETER, annotation, Security(bearer, scopes=list(scopes or ()))))
    if limited:
        parameters.append(keyword(RATELIMIT_RESPONSE_PARAMETER, Response))
    levels = (*node.ancestors, node) if detail else node.ancestors
    parameters.extend(keyword(level.id_name, level.id_param.annotation) for level in levels)
    taken = {p.name for p in parameters}
    for parameter in extra:
        if parameter.name in taken:
            raise SchemaDefinitionError(
                f"{node.operation_prefix}: parameter {parameter.name!r} clashes with a parameter djfapi provides"
            )
        parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    return inspect.Signature(parameters)

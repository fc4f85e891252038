"""What the OpenAPI document says about each generated operation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from djfapi.orm.mapping import FieldKind, SchemaMapping
from djfapi.orm.plan import nested_limit
from djfapi.schemas.errors import Error

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_ERRORS = {
    401: "The bearer token is missing, malformed, expired, not yet valid, or not signed by a trusted key.",
    403: "The token holds none of the required scopes, or may not write a field it sent.",
    404: "The object, or one of its ancestors in the path, does not exist or is not visible to the caller.",
    409: "The write violates a database constraint, or other objects still refer to this one.",
    412: "If-Match was sent and the object has changed since (its ETag differs); nothing was written.",
}


def with_article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def scopes_text(scopes: Sequence[str] | None, secured: bool, public: bool = False) -> str:
    if not secured:
        return "No authentication."
    if public:
        held = f" holding one of {', '.join(f'`{scope}`' for scope in scopes)}" if scopes else ""
        return (
            "Public: callers without a token are served as anonymous (the node's row filter with no caller). "
            f"A bearer token{held} is still verified when sent (401 when invalid) and reads as its holder."
        )
    if not scopes:
        return "Requires a valid bearer token (no particular scope)."
    listed = ", ".join(f"`{scope}`" for scope in scopes)
    return f"Requires a bearer token holding one of the scopes {listed}; the first one held selects the row filter."


def public_security(node: DjangoRouterSchema) -> dict[str, Any]:
    """``openapi_extra`` marking a public operation's bearer token optional (``{}``: no security)."""
    return {"security": [{}]}  # FastAPI's own requirement comes first; the empty one makes it optional


def error_responses(
    node: DjangoRouterSchema, *, detail: bool, method: str, public: bool = False
) -> dict[int | str, dict[str, Any]]:
    codes = []
    if node.security is not None:
        codes += [401] if public else [401, 403]
    if detail or node.parent is not None:
        codes.append(404)
    if method in WRITE_METHODS:
        codes.append(409)
    if detail and method in ("PATCH", "PUT", "DELETE"):
        codes.append(412)
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": Error, "description": _ERRORS[code]} for code in codes
    }
    if detail and method == "GET":
        responses[304] = {"description": "Not modified: the object still has the ETag sent in If-None-Match."}
    return responses


def nested_caps_text(node: DjangoRouterSchema, mapping: SchemaMapping) -> str:
    """What the read schema's nested lists show at most, for the operation's description."""
    caps = [
        f"`{f.name}` {nested_limit(f, node.nested_limit)}"
        for f in mapping.fields
        if f.kind is FieldKind.LIST and f.nested is not None
    ]
    if not caps:
        return ""
    return (
        f"Nested lists show at most this many items per object: {', '.join(caps)} (the first ones in their "
        f"model's order); their own routes list them all."
    )


def operation_docs(
    node: DjangoRouterSchema,
    action: str,
    method: str,
    detail: bool,
    scopes: Sequence[str] | None,
    *,
    public: bool = False,
) -> dict[str, Any]:
    """``summary``, ``description`` and ``responses`` for one generated route."""
    label = with_article(str(node.model._meta.verbose_name))
    under = f" of {with_article(str(node.parent.model._meta.verbose_name))}" if node.parent is not None else ""
    summaries = {
        "list": f"List {node.name}{under}",
        "create": f"Create {label}",
        "aggregate": f"Aggregate {node.name}{under}",
        "get": f"Get {label}",
        "update": f"Update {label} (partial)",
        "replace": f"Replace {label}",
        "delete": f"Delete {label}",
    }
    notes = {
        "list": 'Returns `{"items": [...]}`, ordered deterministically (the primary key breaks ties).',
        "create": "Nested lists in the body are created in the same transaction.",
        "update": "Only the fields sent change; a nested list changes only when sent, and is then synced.",
        "replace": "Every field is replaced; a nested list that is sent is synced, one left out is untouched.",
        "aggregate": 'Returns `{"values": [{"value": ..., <group_by>: ...}]}`, one entry per group; '
        "the list's filters apply.",
        "delete": (
            f"Soft delete: sets `status` to `{node.delete_status}`; the object then reads as missing."
            if node.delete_status is not None
            else "Deletes the object and what the database cascades to."
        ),
    }
    caps = nested_caps_text(node, node.list_mapping if action == "list" else node.get_mapping)
    note = notes.get(action, "")
    if caps and action not in ("aggregate", "delete"):
        note = f"{note} {caps}".strip()
    description = " ".join(part for part in (note, scopes_text(scopes, node.security is not None, public)) if part)
    return {
        "summary": summaries.get(action, action),
        "description": description,
        "responses": error_responses(node, detail=detail, method=method, public=public),
    }

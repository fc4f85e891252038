"""Option objects of a router schema, and how they are inherited down the tree.

Inheritance is written out as plain code, nearest first: the node's own value, then
what the rules below derive from its parent, then the global default.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from djfapi.conf import setting
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.security.scopes import validate_scope

#: The deepest ``offset`` a list accepts unless ``max_offset`` says otherwise.
DEFAULT_MAX_OFFSET = 10_000


def plain(value: Any) -> Any:
    """An Enum member's value, anything else as it is.

    Upstream djfapi took Enums where djfapi takes strings (``CacheControl.NO_CACHE``);
    a member is as good as its value, never silently ignored.
    """
    return value.value if isinstance(value, enum.Enum) else value


def names(option: str, value: Iterable[Any] | type[enum.Enum] | None, noun: str = "names") -> tuple[str, ...] | None:
    """A list option of names (field paths, scopes, sort terms) as a tuple of strings.

    Takes a list, tuple or set of strings or Enum members, or an Enum class (its values).
    A lone string is refused: iterating it would give its letters.
    """
    if value is None:
        return None
    if isinstance(value, str | enum.Enum):
        raise SchemaDefinitionError(
            f"{option} must be a list of {noun}, not the single value {plain(value)!r}; write [{plain(value)!r}]"
        )
    items = [member.value for member in value] if isinstance(value, type) and issubclass(value, enum.Enum) else value
    try:
        result = tuple(plain(item) for item in items)
    except TypeError:
        raise SchemaDefinitionError(f"{option} must be a list of {noun}, got {value!r}") from None
    wrong = [item for item in result if not isinstance(item, str)]
    if wrong:
        raise SchemaDefinitionError(f"{option} must hold {noun} (strings), got {wrong!r}")
    return result


@dataclass(frozen=True)
class SecurityScopes:
    """The scopes each operation accepts (any one of them suffices), in preference order.

    ``None`` means "inherit": ``list`` and ``aggregate`` take ``get``'s; ``put`` takes
    ``patch``'s; on a child, ``get`` takes the parent's ``get`` and every write takes
    the parent's ``patch`` (changing a department is changing its company). An empty
    list means any valid token will do.
    """

    get: Sequence[str] | None = None
    list: Sequence[str] | None = None
    aggregate: Sequence[str] | None = None
    post: Sequence[str] | None = None
    patch: Sequence[str] | None = None
    put: Sequence[str] | None = None
    delete: Sequence[str] | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = names(f"SecurityScopes.{item.name}", getattr(self, item.name), "scopes")
            if value is None:
                continue
            for scope in value:
                try:
                    validate_scope(scope)
                except ValueError as error:
                    raise SchemaDefinitionError(f"SecurityScopes.{item.name}: {error}") from None
            object.__setattr__(self, item.name, value)

    def given(self) -> frozenset[str]:
        """The entries set explicitly (not inherited)."""
        return frozenset(item.name for item in fields(self) if getattr(self, item.name) is not None)


#: The ``SecurityScopes`` entries, as ``public=`` names them.
ENTRIES = ("get", "list", "aggregate", "post", "patch", "put", "delete")
#: What a public entry makes public along with it (as the scopes are inherited).
_PUBLIC_ALONG = {"get": ("list", "aggregate"), "patch": ("put",)}


def resolve_public(name: str, public: Iterable[str] | None) -> frozenset[str]:
    """The entries ``public=[...]`` opens to anonymous callers: ``get`` opens ``list`` and
    ``aggregate`` too, ``patch`` opens ``put`` (as their scopes are inherited). Not inherited by children.
    """
    given = names("public", public, "SecurityScopes entries") or ()
    unknown = [entry for entry in given if entry not in ENTRIES]
    if unknown:
        raise SchemaDefinitionError(
            f"router schema {name!r}: public={list(given)!r} names {unknown}, which are not SecurityScopes entries; "
            f"choose from {', '.join(ENTRIES)}"
        )
    opened = set(given)
    for entry in given:
        opened.update(_PUBLIC_ALONG.get(entry, ()))
    return frozenset(opened)


def resolve_scopes(
    own: SecurityScopes, parent: dict[str, tuple[str, ...] | None] | None
) -> dict[str, tuple[str, ...] | None]:
    """Every operation's scopes for a node, given its own and its parent's resolved ones.

    A value of ``None`` in the result means the operation has no scopes configured at
    the root; routes check that before they are built.
    """

    def own_value(name: str) -> tuple[str, ...] | None:
        value = getattr(own, name)
        return None if value is None else tuple(value)

    resolved: dict[str, tuple[str, ...] | None] = {}
    resolved["get"] = own_value("get")
    if resolved["get"] is None and parent is not None:
        resolved["get"] = parent["get"]
    resolved["patch"] = own_value("patch")
    if resolved["patch"] is None and parent is not None:
        resolved["patch"] = parent["patch"]
    for name in ("list", "aggregate"):
        value = own_value(name)
        resolved[name] = value if value is not None else resolved["get"]
    for name in ("post", "delete"):
        value = own_value(name)
        resolved[name] = value if value is not None else (parent["patch"] if parent is not None else None)
    put = own_value("put")
    resolved["put"] = put if put is not None else resolved["patch"]
    return resolved


@dataclass(frozen=True)
class PaginationOptions:
    """Page sizes and the default order of a list route.

    ``default_order_by`` lists ``order_by`` terms used when the request gives none; the
    primary key is always appended as the final tie-breaker. ``cursor=True`` replaces
    ``offset`` with an opaque ``cursor`` (keyset pagination, stable under inserts).
    ``max_offset`` bounds ``offset`` (default ``DJFAPI["PAGINATION"]["max_offset"]``,
    else 10,000): the database reads every skipped row, so a deeper offset is a 422
    that points to the cursor.
    """

    default_limit: int | None = None
    max_limit: int | None = None
    default_order_by: tuple[str, ...] = ()
    cursor: bool = False
    max_offset: int | None = None

    @classmethod
    def coerce(cls, value: PaginationOptions | Mapping[str, Any] | None) -> PaginationOptions:
        if value is None:
            return cls()
        if isinstance(value, PaginationOptions):
            return value
        unknown = set(value) - {"default_limit", "max_limit", "default_order_by", "cursor", "max_offset"}
        if unknown:
            raise SchemaDefinitionError(f"pagination_options: unknown option(s) {sorted(unknown)}")
        return cls(
            default_limit=value.get("default_limit"),
            max_limit=value.get("max_limit"),
            default_order_by=names("pagination_options.default_order_by", value.get("default_order_by", ())) or (),
            cursor=bool(value.get("cursor", False)),
            max_offset=value.get("max_offset"),
        )

    def resolved(self, parent: PaginationOptions | None) -> PaginationOptions:
        """This node's options with unset values from the parent, then the settings."""
        defaults = setting("PAGINATION", {})
        max_limit = self.max_limit
        if max_limit is None:
            max_limit = int((parent.max_limit if parent else None) or defaults.get("max_limit", 1000))
        default_limit = self.default_limit
        if default_limit is None:
            inherited = int((parent.default_limit if parent else None) or defaults.get("default_limit", 100))
            default_limit = min(inherited, max_limit)  # a smaller max_limit alone lowers the default too
        if not 1 <= default_limit <= max_limit:
            raise SchemaDefinitionError(
                f"pagination_options: need 1 <= default_limit ({default_limit}) <= max_limit ({max_limit})"
            )
        max_offset = self.max_offset
        if max_offset is None and parent is not None:
            max_offset = parent.max_offset
        if max_offset is None:
            max_offset = defaults.get("max_offset", DEFAULT_MAX_OFFSET)
        if isinstance(max_offset, bool) or not isinstance(max_offset, int) or max_offset < 0:
            raise SchemaDefinitionError(
                f"pagination_options: max_offset must be a whole number >= 0, got {max_offset!r}"
            )
        return PaginationOptions(default_limit, max_limit, self.default_order_by, self.cursor, max_offset)

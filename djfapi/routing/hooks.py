"""User code that runs inside a write's transaction: before/after create, update, delete.

Register with ``@router_schema.hook("before_update")``. A hook gets one ``WriteEvent``
and may change ``event.instance`` (before hooks run after the body's fields are
assigned and validated, before the row is saved), read ``event.previous`` (the row's
column values before an update or delete), or refuse the write by raising — a
``djfapi.errors.ValidationFailed`` for a 422, any ``APIError`` for its status. Whatever
a hook raises rolls the whole request back. Hooks fire for writes through their own
node's routes, not for rows written as nested items of another node's body.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from django.db import models

from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.schemas.access import Access

HookEvent = Literal["before_create", "after_create", "before_update", "after_update", "before_delete", "after_delete"]
HOOK_EVENTS: tuple[str, ...] = HookEvent.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class WriteEvent:
    """One write, as a hook sees it."""

    action: Literal["create", "update", "delete"]
    instance: models.Model
    access: Access | None
    ids: Mapping[str, Any]
    body: pydantic.BaseModel | None = None
    previous: Mapping[str, Any] = field(default_factory=dict)
    #: True for ``?dry_run=true``: the transaction will be rolled back, so a hook should
    #: check as usual but not act outside the database (send no mail, call no API).
    dry_run: bool = False


Hook = Callable[[WriteEvent], None]


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The row's column values (by attname), to compare with after a write."""
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


class Hooks:
    """A node's hooks, by event, in registration order."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {event: [] for event in HOOK_EVENTS}

    def add(self, event: str, hook: Hook) -> None:
        if event not in self._hooks:
            raise SchemaDefinitionError(f"unknown hook event {event!r}; choose from {list(HOOK_EVENTS)}")
        if inspect.iscoroutinefunction(hook):
            raise SchemaDefinitionError(
                f"hook {getattr(hook, '__qualname__', hook)!r} must be a plain 'def': it runs in the request's "
                f"worker thread, inside its transaction"
            )
        self._hooks[event].append(hook)

    def run(self, event: str, write: WriteEvent) -> None:
        for hook in self._hooks[event]:
            hook(write)

    def __bool__(self) -> bool:
        return any(self._hooks.values())

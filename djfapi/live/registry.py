"""Which models the feed captures, and the ``on_change`` reactions registered per node.

A model is captured as soon as a node with ``subscribe=True`` (or an ``on_change``
reaction) is declared for it: in every process that imports the router tree. Import
the tree in an ``AppConfig.ready()`` so that processes which never serve it (management
commands, workers, the shell) publish their writes too.

No Django model is imported here: router schemas register at declaration time, which
may come before ``djfapi.live`` itself is checked.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import models

from djfapi.orm.mapping import SchemaDefinitionError

if TYPE_CHECKING:
    from djfapi.live.capture import Change
    from djfapi.routing.django import DjangoRouterSchema

Reaction = Callable[["Change"], None]


@dataclass
class Watched:
    """What the capture needs to know about one concrete model."""

    model: type[models.Model]
    nodes: list[DjangoRouterSchema] = field(default_factory=list)
    reactions: list[tuple[DjangoRouterSchema, Reaction]] = field(default_factory=list)

    @property
    def delete_status(self) -> Any:
        """The soft-delete status of the model's nodes (the first one that declares one)."""
        return next((node.delete_status for node in self.nodes if node.delete_status is not None), None)


_watched: dict[type[models.Model], Watched] = {}


def watched(model: type[models.Model]) -> Watched | None:
    """The capture entry of ``model`` (or of the concrete model behind a proxy), if any."""
    return _watched.get(model._meta.concrete_model or model)


def _entry(node: DjangoRouterSchema) -> Watched:
    model = node.model._meta.concrete_model or node.model
    entry = _watched.get(model)
    if entry is None:
        from djfapi.live import capture  # connects the signal receivers once, on first use

        entry = _watched[model] = Watched(model)
        capture.connect()
    if node not in entry.nodes:
        entry.nodes.append(node)
        if node.delete_status is not None:
            from djfapi.live import capture

            capture.track_status(model)
    return entry


def watch(node: DjangoRouterSchema) -> None:
    """Capture the changes of ``node``'s model from now on (``subscribe=True``)."""
    _entry(node)


def add_reaction(node: DjangoRouterSchema, reaction: Reaction) -> None:
    """Register ``reaction`` for every committed change of ``node``'s model."""
    if inspect.iscoroutinefunction(reaction) or not callable(reaction):
        raise SchemaDefinitionError(
            f"on_change reaction {getattr(reaction, '__qualname__', reaction)!r} must be a plain 'def': it runs "
            f"after commit in the thread that committed"
        )
    _entry(node).reactions.append((node, reaction))


def remove_reaction(node: DjangoRouterSchema, reaction: Reaction) -> None:
    """Unregister a reaction added with ``node.on_change`` (the model stays captured)."""
    entry = _watched.get(node.model._meta.concrete_model or node.model)
    if entry is not None and (node, reaction) in entry.reactions:
        entry.reactions.remove((node, reaction))

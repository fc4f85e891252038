"""Upstream djfapi's ``depends_pagination`` for hand-written list routes (deprecated).

Generated list routes have ``limit``/``offset``/``order_by`` of their own (validated
against the allowed fields); this keeps hand-written upstream routes running, with
upstream's meaning: ``Pagination.limit`` is the *end* index (``offset + limit``), as
upstream's ``objects[pagination.offset:pagination.limit]`` expects.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency's annotations,
# which refer to ``bound``, a local of depends_pagination.
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Query

from djfapi.compat import deprecated
from djfapi.schemas.pagination import Pagination

__all__ = ["depends_pagination"]


def depends_pagination(
    max_limit: int | None = 1000, default_order_by: Sequence[str] | None = None
) -> Callable[..., Pagination]:
    """A dependency reading ``?limit=&offset=&order_by=`` into a ``Pagination``."""
    deprecated("djfapi.utils.fastapi.depends_pagination", "a router schema's list route")
    bound = max_limit or 1000

    def get_pagination(
        limit: Annotated[int | None, Query(ge=1, le=bound)] = None,
        offset: Annotated[int | None, Query(ge=0)] = None,
        order_by: Annotated[list[str] | None, Query()] = None,
    ) -> Pagination:
        start = offset or 0
        terms = order_by if order_by is not None else list(default_order_by or ())
        return Pagination(limit=start + (limit or bound), offset=start, order_by=terms)

    return get_pagination

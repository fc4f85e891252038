"""Upstream djfapi's ``Pagination`` for hand-written list routes (see ``djfapi.utils.fastapi``)."""

from __future__ import annotations

from typing import Any

import pydantic
from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db.models import Q, QuerySet
from fastapi.exceptions import RequestValidationError


class Pagination(pydantic.BaseModel):
    """``limit`` is the end index (``offset + page size``), as upstream defined it."""

    limit: int
    offset: int
    order_by: list[str] = []

    def query(self, objects: Any, q_filters: Q | None = None) -> QuerySet[Any]:
        """``objects`` filtered, ordered and sliced; an unknown ``order_by`` field is a 422."""
        try:
            queryset = objects.filter(q_filters or Q()).order_by(*self.order_by, "pk")
        except (FieldDoesNotExist, FieldError):
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", "order_by"), "msg": "Unknown field.", "input": self.order_by}]
            ) from None
        return queryset[self.offset : self.limit]

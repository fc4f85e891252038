"""Render instances through a read schema into a JSON response.

The body is produced in the worker thread (inside the signalled call), so no lazy
queryset or serialisation is left for the event loop. Fields the caller may not read
are left out of the body, not nulled.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import pydantic
import pydantic_core
from django.db import models
from starlette.responses import Response

from djfapi.orm.mapping import SCHEMA_CACHE_SIZE, SchemaMapping
from djfapi.orm.reading import read
from djfapi.orm.visibility import hidden_fields
from djfapi.routing.etags import etag
from djfapi.schemas.access import Access


@lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def list_response_model(schema: type[pydantic.BaseModel], *, cursor: bool = False) -> type[pydantic.BaseModel]:
    """``{"items": [...], "total": n}`` (``total`` only when asked for), plus ``next_cursor`` in cursor mode."""
    fields: dict[str, Any] = {
        "items": (list[schema], ...),  # type: ignore[valid-type]
        "total": (
            int | None,
            pydantic.Field(None, description="Rows matching the filters; only with ?total=true or ?total=estimate"),
        ),
        "total_estimated": (
            bool | None,
            pydantic.Field(None, description="Only with ?total=estimate: true when 'total' is the planner's estimate"),
        ),
    }
    if cursor:
        fields["next_cursor"] = (
            str | None,
            pydantic.Field(description="Pass as ?cursor= for the next page; null on the last page"),
        )
    return pydantic.create_model(f"{schema.__name__}{'Page' if cursor else 'List'}", **fields)


def json_response(content: bytes, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content, status_code=status_code, media_type="application/json", headers=headers)


def object_body(mapping: SchemaMapping, instance: models.Model, access: Access | None) -> bytes:
    """The JSON body of one object as this caller may see it."""
    return data_body(mapping, read(mapping, instance), access)


def data_body(mapping: SchemaMapping, data: dict[str, Any], access: Access | None, *, plain: bool = False) -> bytes:
    """The JSON body of one object read as plain data (see ``djfapi.orm.rows``).

    ``plain``: ``data`` was read by a values reader whose rows render as they are
    (``djfapi.orm.plain``), so it is written without building the schema's model.
    """
    hidden = hidden_fields(mapping.schema, access)
    if plain:
        return pydantic_core.to_json(_without(data, hidden) if hidden else data)
    validated = mapping.schema.model_validate(data, by_name=True)
    return validated.model_dump_json(by_alias=True, exclude=hidden).encode()


def _without(data: dict[str, Any], exclude: dict[Any, Any]) -> dict[str, Any]:
    """``data`` less the fields ``exclude`` (a pydantic ``exclude`` spec) names, at any depth."""
    kept = {}
    for key, value in data.items():
        spec = exclude.get(key)
        if spec is None:
            kept[key] = value
        elif spec is not True:
            inner = spec.get("__all__", spec)
            kept[key] = [_without(item, inner) for item in value] if isinstance(value, list) else _without(value, inner)
    return kept


def render_object(
    mapping: SchemaMapping,
    instance: models.Model | dict[str, Any],
    access: Access | None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    plain: bool = False,
) -> Response:
    """One object (an instance, or its data), with its ETag (a hash of exactly this body).

    ``plain``: the data of a values reader whose rows render as they are (see ``data_body``).
    """
    data = instance if isinstance(instance, dict) else read(mapping, instance)
    body = data_body(mapping, data, access, plain=plain and isinstance(instance, dict))
    return json_response(body, status_code, {**(headers or {}), "ETag": etag(body)})


def render_list(
    mapping: SchemaMapping,
    rows: Iterable[models.Model] | list[dict[str, Any]],
    access: Access | None,
    *,
    total: int | None = None,
    total_estimated: bool | None = None,
    cursor: bool = False,
    next_cursor: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    plain: bool = False,
) -> Response:
    """A list page of instances or of their data; ``total`` is left out unless counted,
    ``next_cursor`` present in cursor mode. The page is validated in one call, or, for
    the rows of a values reader that render as they are (``plain``), not at all: the same
    bytes, written straight from the rows (``djfapi.orm.plain``)."""
    if plain and isinstance(rows, list):
        plain_body = _plain_page(mapping, rows, access, total, total_estimated, cursor, next_cursor)
        return json_response(plain_body, status_code, headers)
    items = [row if isinstance(row, dict) else read(mapping, row) for row in rows]
    page: dict[str, Any] = {"items": items, "total": total, "total_estimated": total_estimated}
    if cursor:
        page["next_cursor"] = next_cursor
    validated = list_response_model(mapping.schema, cursor=cursor).model_validate(page, by_name=True)
    exclude: dict[str, Any] = {} if total is not None else {"total": True}
    if total_estimated is None:
        exclude["total_estimated"] = True
    hidden = hidden_fields(mapping.schema, access)
    if hidden:
        exclude["items"] = {"__all__": hidden}
    body = validated.model_dump_json(by_alias=True, exclude=exclude or None)
    return json_response(body.encode(), status_code, headers=headers)


def _plain_page(
    mapping: SchemaMapping,
    rows: list[dict[str, Any]],
    access: Access | None,
    total: int | None,
    total_estimated: bool | None,
    cursor: bool,
    next_cursor: str | None,
) -> bytes:
    """The body ``render_list`` writes through the page model, written from the rows (same keys, same order)."""
    hidden = hidden_fields(mapping.schema, access)
    page: dict[str, Any] = {"items": [_without(row, hidden) for row in rows] if hidden else rows}
    if total is not None:
        page["total"] = total
    if total_estimated is not None:
        page["total_estimated"] = total_estimated
    if cursor:
        page["next_cursor"] = next_cursor
    return pydantic_core.to_json(page)

"""Write the rows that belong to a written row: nested lists and nested one-to-one objects.

On create every nested row is created. On PUT and PATCH a nested list that is sent is
synced with the rows the parent has: items with an id update that row (it must belong
to this parent: an id of another parent's row is a 422, never an update of someone
else's row), items without one are matched by ``is_sync_matching_field`` fields or
created, and rows not listed are deleted — first, so the values they held (a unique
code, say) are free for the items that follow. Under PATCH an item that updates a row
is partial (what it leaves out keeps its value); one that creates a row must be
complete, as in a POST. A nested one-to-one object that is
sent is updated or created; an explicit ``null`` deletes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydantic
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from fastapi.exceptions import RequestValidationError

from djfapi.conf import setting
from djfapi.orm import writing
from djfapi.orm.bodies import complete_item
from djfapi.orm.mapping import FieldKind, FieldMapping, SchemaMapping, mapping_for

Loc = tuple[str | int, ...]
DEFAULT_MAX_NESTED_ITEMS = 1000


def write(
    parent: models.Model,
    f: FieldMapping,
    value: Any,
    context: writing.WriteContext,
    *,
    creating: bool,
    partial: bool,
    loc: Loc,
) -> None:
    """Write the nested rows of field ``f`` of ``parent`` (already saved)."""
    assert f.nested is not None
    if f.kind is FieldKind.OBJECT:
        _write_object(parent, f, value, context, creating=creating, partial=partial, loc=(*loc, f.name))
        return
    limit = int(setting("MAX_NESTED_ITEMS", DEFAULT_MAX_NESTED_ITEMS))
    if value is not None and len(value) > limit:
        # Bounds the database work of one request; a schema's own max_length fails sooner.
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": (*loc, f.name),
                    "msg": f"At most {limit} items per nested list.",
                    "input": None,
                }
            ]
        )
    if creating:
        _create_items(parent, f, value or [], context, loc=(*loc, f.name))
    else:
        _sync_items(parent, f, value or [], context, partial=partial, loc=(*loc, f.name))


def _parent_column(f: FieldMapping) -> str:
    relation = f.model_field
    assert isinstance(relation, models.ForeignObjectRel)
    return relation.field.attname


def _write_object(
    parent: models.Model,
    f: FieldMapping,
    value: pydantic.BaseModel | None,
    context: writing.WriteContext,
    *,
    creating: bool,
    partial: bool,
    loc: Loc,
) -> None:
    assert f.nested is not None
    existing = None
    if not creating:
        try:
            existing = getattr(parent, f.path[0])
        except ObjectDoesNotExist:
            existing = None
    if value is None:
        if existing is not None:
            existing.delete()
        return
    if existing is not None:
        writing.update(existing, f.nested, value, context, partial=partial, loc=loc)
    else:
        _create(f.nested, value, context, {_parent_column(f): parent.pk}, loc)


def _create(
    nested: SchemaMapping, item: pydantic.BaseModel, context: writing.WriteContext, values: dict[str, Any], loc: Loc
) -> None:
    """Create one nested row; a PATCH item must first pass as a complete one (422 at ``loc``)."""
    complete = complete_item(item, loc)
    mapping = nested if complete is item else mapping_for(type(complete), nested.model)
    writing.create(mapping, complete, context, values=values, loc=loc)


def _create_items(
    parent: models.Model,
    f: FieldMapping,
    items: Sequence[pydantic.BaseModel],
    context: writing.WriteContext,
    *,
    loc: Loc,
) -> None:
    assert f.nested is not None
    column = _parent_column(f)
    created = [
        writing.create(f.nested, item, context, values={column: parent.pk}, loc=(*loc, index))
        for index, item in enumerate(items)
    ]
    if context.created is not None:
        context.created[(id(parent), f.name)] = created


def _sync_items(
    parent: models.Model,
    f: FieldMapping,
    items: Sequence[pydantic.BaseModel],
    context: writing.WriteContext,
    *,
    partial: bool,
    loc: Loc,
) -> None:
    nested = f.nested
    assert nested is not None
    column = _parent_column(f)
    model = nested.model
    existing = list(model._default_manager.filter(**{column: parent.pk}).order_by("pk"))
    plan = _match_items(parent, nested, existing, items, loc)

    used = {target.pk for target, _, _ in plan if target is not None}
    stale = [obj.pk for obj in existing if obj.pk not in used]
    if stale:
        model._default_manager.filter(pk__in=stale).delete()
    for target, item, item_loc in plan:
        if target is not None:
            writing.update(target, nested, item, context, partial=partial, loc=item_loc)
        else:
            _create(nested, item, context, {column: parent.pk}, item_loc)


def _match_items(
    parent: models.Model,
    nested: SchemaMapping,
    existing: list[models.Model],
    items: Sequence[pydantic.BaseModel],
    loc: Loc,
) -> list[tuple[models.Model | None, pydantic.BaseModel, Loc]]:
    """Pair each sent item with the existing row it updates (by id, else by matching fields), or None."""
    by_pk = {obj.pk: obj for obj in existing}
    pk_field = nested.primary_key
    matching = [
        m for m in nested.fields if m.options.is_sync_matching_field and isinstance(m.model_field, models.Field)
    ]
    used: set[Any] = set()
    plan: list[tuple[models.Model | None, pydantic.BaseModel, Loc]] = []
    for index, item in enumerate(items):
        item_loc = (*loc, index)
        item_pk = getattr(item, pk_field.name) if pk_field is not None else None
        target: models.Model | None = None
        if item_pk is not None:
            target = by_pk.get(item_pk)
            if target is None or target.pk in used:
                assert pk_field is not None
                raise RequestValidationError(
                    [
                        {
                            "type": "value_error",
                            "loc": (*item_loc, pk_field.name),
                            "msg": f"No {nested.model.__name__} with this id belongs to this {type(parent).__name__}.",
                            "input": str(item_pk),
                        }
                    ]
                )
        elif matching:
            target = next(
                (
                    obj
                    for obj in existing
                    if obj.pk not in used
                    and all(
                        getattr(obj, m.model_field.attname) == writing.db_value(getattr(item, m.name))  # type: ignore[union-attr]
                        for m in matching
                    )
                ),
                None,
            )
        if target is not None:
            used.add(target.pk)
        plan.append((target, item, item_loc))
    return plan

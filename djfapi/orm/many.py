"""Many-to-many relations: how they are stored, and how a body sets them.

A many-to-many field of a write schema is either a list of the related rows' ids
(``skill_ids: list[UUID] = Field(orm_field="skills")``) or a list of nested schemas
holding only the related row's primary key (``skills: list[SkillRef]``). Either way it
has set semantics: left out of a PUT or PATCH body it is untouched; sent, it *is* the
new set (an empty list clears it). Every id must name a row the caller may reference —
through its node's row filter and the ancestors the written row shares with it, as
foreign keys are checked — and an id that is not is answered exactly like one that
does not exist (409 ``integrity:<the through table's foreign key>``). The rows are set
with the relation's manager (``set()``), so a custom ``through`` model gets its
defaults and ``m2m_changed`` is sent; it runs in the write's transaction.

Extra columns of a custom ``through`` model are written as what they are: rows of the
through model, a nested list of its reverse foreign key (``skill_links``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
from django.core.exceptions import ValidationError
from django.db import models
from fastapi.exceptions import RequestValidationError

from djfapi.errors import Conflict
from djfapi.errors.integrity import foreign_key_constraint_name
from djfapi.orm.mapping import FieldKind, FieldMapping

Loc = tuple[str | int, ...]
#: The primary keys among ``values`` of rows of ``model`` that the caller may reference.
VisibleReferences = Callable[[type[models.Model], Sequence[Any]], set[Any]]


@dataclass(frozen=True)
class ManyToMany:
    """A many-to-many relation seen from one side: its through model and the two columns."""

    accessor: str  # the attribute of the instance (its related manager)
    related_model: type[models.Model]
    through: type[models.Model]
    source: models.ForeignKey  # the through model's key to the row on this side
    target: models.ForeignKey  # the through model's key to the related row


def relation(f: FieldMapping) -> ManyToMany:
    """The many-to-many relation field ``f`` maps to (forward field or reverse relation)."""
    model_field = f.model_field
    if isinstance(model_field, models.ManyToManyField):
        field, forward = model_field, True
    else:
        assert isinstance(model_field, models.ManyToManyRel)
        field, forward = model_field.field, False
    through = field.remote_field.through
    assert isinstance(through, type)
    source_name, target_name = field.m2m_field_name(), field.m2m_reverse_field_name()
    if not forward:
        source_name, target_name = target_name, source_name
    source = through._meta.get_field(source_name)
    target = through._meta.get_field(target_name)
    assert isinstance(source, models.ForeignKey) and isinstance(target, models.ForeignKey)
    return ManyToMany(f.path[0], target.related_model, through, source, target)


def is_many_to_many(f: FieldMapping) -> bool:
    return f.kind in (FieldKind.IDS, FieldKind.LIST) and bool(getattr(f.model_field, "many_to_many", False))


def sent_ids(f: FieldMapping, value: Sequence[Any], loc: Loc) -> list[Any]:
    """The ids a body sent for ``f``: the list itself, or each nested item's primary key."""
    if f.kind is FieldKind.IDS:
        return [_plain(item) for item in value]
    assert f.nested is not None and f.nested.primary_key is not None
    name = f.nested.primary_key.name
    ids = []
    for index, item in enumerate(value):
        pk = getattr(item, name) if isinstance(item, pydantic.BaseModel) else None
        if pk is None:
            raise RequestValidationError(
                [
                    {
                        "type": "missing",
                        "loc": (*loc, f.name, index, name),
                        "msg": f"Items of {f.name} select existing rows: give the {name} of each.",
                        "input": None,
                    }
                ]
            )
        ids.append(_plain(pk))
    return ids


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _key(model: type[models.Model], value: Any) -> Any:
    """``value`` as the primary key's Python value, or None when it cannot be one."""
    try:
        return model._meta.pk.to_python(value)
    except (ValidationError, ValueError, TypeError):
        return None


def write(
    instance: models.Model,
    f: FieldMapping,
    value: Sequence[Any] | None,
    visible: VisibleReferences,
    loc: Loc,
) -> None:
    """Make ``value`` the set of rows ``instance`` is related to through ``f`` (checked first)."""
    many = relation(f)
    sent = [_key(many.related_model, pk) for pk in sent_ids(f, value or (), loc)]
    ids = list(dict.fromkeys(pk for pk in sent if pk is not None))  # a set: repeats are one member
    if sent:
        allowed = visible(many.related_model, ids) if ids else set()
        for index, pk in enumerate(sent):
            if pk is None or pk not in allowed:
                where = ".".join(str(p) for p in (*loc[1:], f.name, index))
                raise Conflict(
                    f"{where} refers to a {many.related_model.__name__} that does not exist.",
                    code=f"integrity:{foreign_key_constraint_name(many.through, many.target)}",
                    detail={"field": where},
                )
    getattr(instance, many.accessor).set(ids)

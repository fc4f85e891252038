"""URL pieces of a router schema: its id parameter's name, type and constraints.

The id parameter is the model name in lower case, minus the parent model's name as a
prefix, plus ``_id`` (``CompanyDepartment`` under ``Company`` -> ``department_id``).
Its type follows the primary key, bounded so that an out-of-range or malformed id is
a 422 and never reaches the database.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from fastapi import Path

from djfapi.orm.mapping import SchemaDefinitionError

_AUTO_TO_INTEGER = {
    "AutoField": "IntegerField",
    "BigAutoField": "BigIntegerField",
    "SmallAutoField": "SmallIntegerField",
}
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def check_segment(name: str) -> str:
    if not _SEGMENT.match(name):
        raise SchemaDefinitionError(f"router schema name {name!r} must be a URL segment: letters, digits, '-' and '_'")
    return name


def id_parameter_name(model: type[models.Model], parent_model: type[models.Model] | None) -> str:
    name = model.__name__.lower()
    if parent_model is not None:
        prefix = parent_model.__name__.lower()
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
    return f"{name}_id"


@dataclass(frozen=True)
class IdParameter:
    name: str
    annotation: Any  # the type with its Path() constraints, ready for a signature

    @property
    def placeholder(self) -> str:
        return "{" + self.name + "}"


def id_parameter(model: type[models.Model], name: str) -> IdParameter:
    pk = model._meta.pk
    label = model._meta.verbose_name
    description = f"The {label}'s id"
    internal = pk.get_internal_type()
    if isinstance(pk, models.UUIDField):
        return IdParameter(name, Annotated[uuid.UUID, Path(description=description)])
    integer_type = _AUTO_TO_INTEGER.get(internal, internal)
    if integer_type in BaseDatabaseOperations.integer_field_ranges:
        low, high = BaseDatabaseOperations.integer_field_ranges[integer_type]
        if internal in _AUTO_TO_INTEGER:
            low = 1  # generated ids start at 1
        return IdParameter(name, Annotated[int, Path(description=description, ge=low, le=high)])
    if isinstance(pk, models.CharField | models.SlugField | models.TextField):
        max_length = getattr(pk, "max_length", None)
        return IdParameter(
            name,
            Annotated[str, Path(description=description, min_length=1, max_length=max_length, pattern=r"^[^\x00]+$")],
        )
    raise SchemaDefinitionError(
        f"{model.__name__}: primary key type {internal} is not supported for URL ids (use an integer, UUID or "
        f"string primary key)"
    )

"""Upstream djdantic's ``transfer_to_orm``/``transfer_from_orm``, as shims (deprecated).

Code written for upstream imported them from ``djdantic.utils.pydantic_django``; with
``djdantic`` replaced by ``djfapi`` they land here and run djfapi's own schema <-> ORM
layer: ``transfer_to_orm`` writes a body into an instance as the generated routes do
(field scopes, references, nested lists synced, all in one transaction) and
``transfer_from_orm`` reads an instance through a schema.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import pydantic
from django.db import models, transaction

from djfapi.compat import deprecated
from djfapi.schemas.access import Access

__all__ = ["TransferAction", "transfer_from_orm", "transfer_to_orm"]

Schema = TypeVar("Schema", bound=pydantic.BaseModel)


class TransferAction(enum.Enum):
    """Upstream's write modes. djfapi creates a new (unsaved) instance and updates a saved one."""

    CREATE = "CREATE"
    SYNC = "SYNC"
    NO_SUBOBJECTS = "NO_SUBOBJECTS"


def transfer_to_orm(
    pydantic_obj: pydantic.BaseModel,
    django_obj: models.Model,
    *,
    action: TransferAction | None = None,
    exclude_unset: bool = False,
    access: Access | None = None,
    **_: Any,
) -> None:
    """Write ``pydantic_obj`` into ``django_obj`` and save it (``exclude_unset``: only the fields sent).

    Field scopes are checked against ``access`` (403), foreign keys and many-to-many ids
    must be visible to it (tenant filter), and everything runs in one transaction.
    """
    from djfapi.orm import writing
    from djfapi.orm.mapping import mapping_for
    from djfapi.routing import queries

    deprecated("djfapi.utils.pydantic_django.transfer_to_orm", "a router schema's generated write routes")

    def referable(model: type[models.Model]) -> Any:
        return model._default_manager.filter(queries.default_objects_filter(model, access))

    context = writing.WriteContext(
        access=access,
        reference_exists=lambda field, value: referable(field.related_model).filter(pk=value).exists(),
        visible_references=lambda model, values: set(
            referable(model).filter(pk__in=values).values_list("pk", flat=True)
        ),
    )
    mapping = mapping_for(type(pydantic_obj), type(django_obj))
    with transaction.atomic(using=django_obj._state.db or "default"):
        writing.transfer(django_obj, mapping, pydantic_obj, context, partial=exclude_unset)


def transfer_from_orm(pydantic_cls: type[Schema], django_obj: models.Model, *args: Any, **kwargs: Any) -> Schema:
    """``django_obj`` read through ``pydantic_cls`` (nested schemas included).

    Field read scopes apply when a response is rendered (``djfapi.orm.visibility``),
    not here: upstream's ``access=`` is accepted and not needed.
    """
    deprecated("djfapi.utils.pydantic_django.transfer_from_orm", "Schema.model_validate(instance)")
    return pydantic_cls.model_validate(django_obj)  # djfapi.BaseModel reads instances through the mapping

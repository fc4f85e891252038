"""``BaseModel``: a pydantic 2 model that can be built straight from a Django instance."""

from __future__ import annotations

from typing import Any

import pydantic
from django.db import models
from pydantic import ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from djfapi.orm.fields import field_options


class BaseModel(pydantic.BaseModel):
    """Base class for djfapi schemas.

    ``Schema.model_validate(instance)`` (and nesting one schema in another) reads a
    Django model instance through the fields' ORM options: related objects become
    nested schemas, reverse relations become lists. ``Schema.from_orm(instance)`` is
    the same, spelled as in djdantic.
    """

    model_config = ConfigDict(from_attributes=True, validate_by_name=True, validate_by_alias=True)

    @model_validator(mode="before")
    @classmethod
    def _read_django_instance(cls, data: Any) -> Any:
        if isinstance(data, models.Model):
            from djfapi.orm.mapping import mapping_for
            from djfapi.orm.reading import read

            return read(mapping_for(cls, type(data)), data)
        return data

    @classmethod
    def from_orm(cls, obj: Any) -> BaseModel:
        return cls.model_validate(obj)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        if handler.mode == "serialization":
            # A field with read scopes is left out of the body for callers without
            # them, so a response may lack it even when the schema requires it.
            hidden = {
                field.serialization_alias or field.alias or name
                for name, field in cls.model_fields.items()
                if field_options(field).read_scopes
            }
            if hidden:
                target = handler.resolve_ref_schema(json_schema)
                required = [name for name in target.get("required", []) if name not in hidden]
                if required:
                    target["required"] = required
                else:
                    target.pop("required", None)
        return json_schema

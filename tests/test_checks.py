"""``manage.py check`` reports a router tree that would not start (djfapi.E001), with the
message the start would fail with; a tree that builds reports nothing."""

from __future__ import annotations

import gc

from django.core import checks

from djfapi import BaseModel
from djfapi.checks import TREES_TAG
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import Company


class CompanyOut(BaseModel):
    name: str


def tree_errors() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks(tags=[TREES_TAG]) if m.id == "djfapi.E001"]


def test_a_tree_that_would_not_start_is_an_error_of_manage_py_check() -> None:
    broken = DjangoRouterSchema(name="companies", model=Company, get=CompanyOut, filter_fields=["nonexistent"])
    sound = DjangoRouterSchema(name="companies", model=Company, get=CompanyOut, filter_fields=["name"])

    errors = {error.obj: error for error in tree_errors()}  # other tests' broken trees may linger until collected

    assert broken in errors and sound not in errors
    assert "nonexistent" in errors[broken].msg
    assert sound.router.routes
    del broken, errors
    gc.collect()
    assert not [error for error in tree_errors() if getattr(error.obj, "filter_fields", None) == ("nonexistent",)]

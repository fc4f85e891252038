"""``DJFAPI["GC_THRESHOLD"]``: the collector's young threshold, applied by ``create_app`` only when
asked, refused by ``manage.py check`` when it would turn collection off or is no threshold."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import djfapi
from djfapi import checks
from djfapi.ops.collector import apply_gc_threshold, configured_threshold

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def restored_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # the interpreter's defaults, whatever an earlier test applied
    yield
    gc.set_threshold(*before)


def djfapi_settings(**overrides: Any) -> override_settings:
    from django.conf import settings

    base = {key: value for key, value in settings.DJFAPI.items() if key != "GC_THRESHOLD"}
    return override_settings(DJFAPI={**base, **overrides})


def e003(value: Any) -> list[str]:
    with djfapi_settings(GC_THRESHOLD=value):
        return [message.id for message in checks.check_gc_threshold() if message.id]


def test_an_integer_sets_the_young_threshold_and_keeps_the_older_two() -> None:
    with djfapi_settings(GC_THRESHOLD=12_345):
        assert apply_gc_threshold() == (12_345, 10, 10)
    assert gc.get_threshold() == (12_345, 10, 10)


def test_a_list_sets_each_generation_it_names() -> None:
    with djfapi_settings(GC_THRESHOLD=[5_000, 20, 30]):
        apply_gc_threshold()
    assert gc.get_threshold() == (5_000, 20, 30)


def test_without_the_setting_the_interpreter_is_left_alone() -> None:
    gc.set_threshold(901, 11, 12)
    with djfapi_settings():
        assert configured_threshold() is None
        assert apply_gc_threshold() == (901, 11, 12)
    assert gc.get_threshold() == (901, 11, 12)


def test_create_app_applies_it() -> None:
    with djfapi_settings(GC_THRESHOLD=10_000):
        djfapi.create_app("testproject.api:router")
    assert gc.get_threshold()[0] == 10_000


@pytest.mark.parametrize("value", [10_000, [10_000], [10_000, 10], (10_000, 10, 10)])
def test_thresholds_pass_the_check(value: Any) -> None:
    assert e003(value) == []


@pytest.mark.parametrize(
    "value",
    [
        0,  # turns automatic collection off: cycles would never be freed
        -1,
        [0, 10, 10],
        [700, 0],
        "10000",
        True,
        10.5,
        [],
        [1, 2, 3, 4],
        {"young": 10_000},
    ],
)
def test_values_that_are_no_threshold_are_refused_by_the_check_and_at_start(value: Any) -> None:
    assert e003(value) == ["djfapi.E003"]
    with djfapi_settings(GC_THRESHOLD=value):
        with pytest.raises(ValueError, match="GC_THRESHOLD"):
            apply_gc_threshold()
        with pytest.raises(ImproperlyConfigured, match=r"djfapi\.E003"):
            djfapi.create_app("testproject.api:router")
    assert gc.get_threshold() == (700, 10, 10)


def test_the_check_names_why_zero_is_refused() -> None:
    with djfapi_settings(GC_THRESHOLD=0):
        (message,) = checks.check_gc_threshold()
    assert "turns automatic collection off" in message.msg
    assert message.hint and "10_000" in message.hint


@pytest.mark.parametrize(("environment", "expected"), [({}, "10000"), ({"DJFAPI_GC_THRESHOLD": "default"}, "None")])
def test_the_demo_raises_the_young_threshold_unless_told_not_to(environment: dict[str, str], expected: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "DJFAPI_GC_THRESHOLD"}
    shown = subprocess.run(
        [sys.executable, "-c", "import testproject.settings as s; print(s.DJFAPI.get('GC_THRESHOLD'))"],
        env={**env, **environment},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == expected

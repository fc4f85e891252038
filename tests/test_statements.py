"""Nested-list reads compiled once per shape (``djfapi.orm.statements``).

A kept statement answers later reads of its shape with their own keys — the same rows
as a fresh queryset, one query, counted like any other — and a shape is not kept when
its parameters are more than the keys: a default manager that filters with a value of
its own must see that value anew on every read.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from djfapi.orm.statements import CACHE_ATTRIBUTE, ChildStatement, read_children
from tests.testapp import models as testapp
from tests.testapp.models import Book, Episode, Playlist, Shelf

COLUMNS = ("shelf_id", "pk", "title")


def _shapes() -> dict[tuple[Any, ...], ChildStatement | None]:
    return connections[DEFAULT_DB_ALIAS].__dict__.setdefault(CACHE_ATTRIBUTE, {})


@pytest.fixture
def shelves(db: None) -> list[Shelf]:
    connections[DEFAULT_DB_ALIAS].__dict__.pop(CACHE_ATTRIBUTE, None)
    made = []
    for code in ("A", "B", "C"):
        shelf = Shelf.objects.create(code=code, tenant_id="t", name=code)
        for number in range(3):
            Book.objects.create(shelf=shelf, title=f"{code}{number}", isbn=f"{code}-{number}", pages=1)
        made.append(shelf)
    return made


def _fresh(keys: list[str], stop: int) -> list[dict[str, Any]]:
    return list(Book.objects.filter(shelf_id__in=keys).order_by("title", "pk").values(*COLUMNS)[:stop])


def test_a_kept_statement_answers_other_keys_like_a_fresh_queryset(
    shelves: list[Shelf],
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    first = read_children(Book, "shelf_id", ["A", "B"], ("title", "pk"), COLUMNS, 7)
    shape = (Book, "shelf_id", ("title", "pk"), COLUMNS, 2, 7)

    with django_assert_num_queries(1):
        second = read_children(Book, "shelf_id", ["C", "A"], ("title", "pk"), COLUMNS, 7)

    assert isinstance(_shapes()[shape], ChildStatement)
    assert first == _fresh(["A", "B"], 7)
    assert second == _fresh(["C", "A"], 7)
    assert [row["title"] for row in second] == ["A0", "A1", "A2", "C0", "C1", "C2"]


def test_the_limit_and_the_number_of_keys_are_part_of_the_shape(shelves: list[Shelf]) -> None:
    read_children(Book, "shelf_id", ["A"], ("pk",), COLUMNS, 3)

    fewer = read_children(Book, "shelf_id", ["B"], ("pk",), COLUMNS, 2)
    more = read_children(Book, "shelf_id", ["A", "B", "C"], ("pk",), COLUMNS, 10)

    assert len(fewer) == 2
    assert len(more) == 9


def test_repeated_keys_are_read_through_a_fresh_queryset(shelves: list[Shelf]) -> None:
    read_children(Book, "shelf_id", ["A", "B"], ("pk",), COLUMNS, 10)

    # Django drops repeated values from IN (...): the kept SQL has a placeholder per distinct key
    rows = read_children(Book, "shelf_id", ["C", "C"], ("pk",), COLUMNS, 10)

    assert [row["shelf_id"] for row in rows] == ["C", "C", "C"]


def test_converters_run_on_kept_statements(db: None) -> None:
    playlist = Playlist.objects.create(tenant_id="t", name="p")
    Episode.objects.create(playlist=playlist, title="one")
    other = Playlist.objects.create(tenant_id="t", name="q")
    Episode.objects.create(playlist=other, title="two")
    read_children(Episode, "playlist_id", [playlist.pk], ("pk",), ("playlist_id", "pk", "title"), 5)

    (row,) = read_children(Episode, "playlist_id", [other.pk], ("pk",), ("playlist_id", "pk", "title"), 5)

    assert row == {"playlist_id": other.pk, "pk": row["pk"], "title": "two"}
    assert isinstance(row["pk"], int)


def test_a_manager_that_filters_with_its_own_value_is_never_kept(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    connections[DEFAULT_DB_ALIAS].__dict__.pop(CACHE_ATTRIBUTE, None)
    playlist = Playlist.objects.create(tenant_id="t", name="p")
    for title in ("pilot", "finale"):
        Episode.objects.create(playlist=playlist, title=title)
    columns = ("playlist_id", "pk", "title")

    monkeypatch.setattr(testapp, "HIDDEN_EPISODE_TITLES", ["finale"])
    before = read_children(Episode, "playlist_id", [playlist.pk], ("pk",), columns, 5)
    monkeypatch.setattr(testapp, "HIDDEN_EPISODE_TITLES", ["pilot"])
    after = read_children(Episode, "playlist_id", [playlist.pk], ("pk",), columns, 5)

    assert [row["title"] for row in before] == ["pilot"]
    assert [row["title"] for row in after] == ["finale"]  # a kept statement would still hide the finale
    assert _shapes()[(Episode, "playlist_id", ("pk",), columns, 1, 5)] is None

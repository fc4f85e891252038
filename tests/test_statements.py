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
from django.test.utils import CaptureQueriesContext

from djfapi.orm.statements import CACHE_ATTRIBUTE, ChildStatement, _with_key_array, read_children
from testproject.business.models import Company, CompanyDepartment
from tests.testapp import models as testapp
from tests.testapp.models import Book, Chapter, Episode, Playlist, Shelf

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


def test_keys_that_preparing_leaves_unchanged_are_sent_as_they_are(shelves: list[Shelf]) -> None:
    read_children(Book, "shelf_id", ["A"], ("pk",), COLUMNS, 5)

    rows = read_children(Book, "shelf_id", ["B"], ("pk",), COLUMNS, 5)

    statement = _shapes()[(Book, "shelf_id", ("pk",), COLUMNS, 1, 5)]
    assert isinstance(statement, ChildStatement)
    assert statement.unchanged is str  # a CharField key: Django's preparation hands it back as it was
    assert rows == _fresh(["B"], 5)


def test_keys_of_another_type_than_the_shape_was_kept_with_are_prepared(shelves: list[Shelf]) -> None:
    first, second = Book.objects.filter(title__in=["A0", "B0"]).order_by("title")
    for book in (first, second):
        Chapter.objects.create(book=book, title=f"{book.title} one", number=1)
    columns = ("book_id", "pk", "title")
    read_children(Chapter, "book_id", [first.pk], ("pk",), columns, 5)
    assert _shapes()[(Chapter, "book_id", ("pk",), columns, 1, 5)].unchanged is int  # type: ignore[union-attr]

    # a key as text, as a path parameter might carry it: prepared to the column's type, not sent as text
    (row,) = read_children(Chapter, "book_id", [str(second.pk)], ("pk",), columns, 5)

    assert row["title"] == "B0 one"
    assert row["book_id"] == second.pk


def test_uuid_keys_go_to_postgresql_as_one_array_and_read_the_same_rows(db: None) -> None:
    connections[DEFAULT_DB_ALIAS].__dict__.pop(CACHE_ATTRIBUTE, None)
    companies = [Company.objects.create(tenant_id="t", name=f"c{number}") for number in range(4)]
    for company in companies:
        for number in range(2):
            CompanyDepartment.objects.create(company=company, name=f"{company.name} d{number}", budget=number)
    columns = ("company_id", "pk", "name", "budget")
    read_children(CompanyDepartment, "company_id", [c.pk for c in companies[:2]], ("name", "pk"), columns, 9)
    keys = [companies[3].pk, companies[2].pk]

    with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as captured:
        rows = read_children(CompanyDepartment, "company_id", keys, ("name", "pk"), columns, 9)

    fresh = CompanyDepartment.objects.filter(company_id__in=keys).order_by("name", "pk").values(*columns)[:9]
    assert rows == list(fresh)
    assert [row["name"] for row in rows] == ["c2 d0", "c2 d1", "c3 d0", "c3 d1"]
    (statement,) = (query["sql"] for query in captured.captured_queries)
    if connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
        assert "= ANY('{" in statement and "}'::uuid[])" in statement and " IN (" not in statement
    else:
        assert " IN (" in statement  # SQLite stores a UUID as text: Django's statement, keys prepared one by one


def test_the_key_array_replaces_only_the_keys_own_placeholders() -> None:
    sql = 'SELECT "c"."id" FROM "c" WHERE "c"."p" IN (%s, %s) ORDER BY 1 LIMIT 5'

    assert _with_key_array(sql, 2) == 'SELECT "c"."id" FROM "c" WHERE "c"."p" = ANY(%s::uuid[]) ORDER BY 1 LIMIT 5'
    assert _with_key_array(sql, 3) is None  # not the keys' placeholders
    assert _with_key_array(sql.replace("LIMIT 5", "AND x IN (%s, %s)"), 2) is None  # two such groups: left alone

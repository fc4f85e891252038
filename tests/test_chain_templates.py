"""Row-chain queries built once per shape, then filled with each request's ids
(``djfapi.routing.chain_templates``, used by ``routing.queries.rows_in_chain``).

A filled template must be the very query a fresh build gives — same SQL, same
parameters, same rows, same number of statements — and must never carry one caller's
row filter to another: the refused cases are another tenant, a filter that is not a
plain value (``Exists``, ``F()``), a default manager that filters with a value of its
own, and a probe that lands where it cannot be refilled.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.transaction import TransactionManagementError
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.routing import chain_templates, queries
from djfapi.routing.chain_templates import TemplateCache, build_template, filter_key, plain_manager_rows, probe_for
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas.access import Access, AccessToken
from djfapi.security.jwt import JWTToken
from testproject.business.models import Company, CompanyDepartment, Employee
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.test_plan import make_client
from tests.test_routes import BookOut, BookWrite, ShelfOut
from tests.test_written_rows import EpisodeOut
from tests.testapp import models as testapp
from tests.testapp.models import Book, Episode, Playlist, Shelf

READ = ["tests.chain.read"]
SCOPES = SecurityScopes(get=READ, delete=READ)
HEADERS = auth(scopes=["tests.chain.read"])
OTHER_HEADERS = auth(tenant=OTHER_TENANT, scopes=["tests.chain.read"])


class PlaylistOut(BaseModel):
    id: int
    name: str


def _library() -> DjangoRouterSchema:
    books = DjangoRouterSchema(name="books", model=Book, get=BookOut, security_scopes=SCOPES)
    return DjangoRouterSchema(
        name="shelves", model=Shelf, get=ShelfOut, children=[books], security=JWTToken(), security_scopes=SCOPES
    )


@pytest.fixture(autouse=True)
def fresh_templates() -> Iterator[None]:
    queries._TEMPLATES.clear()
    yield
    queries._TEMPLATES.clear()


@pytest.fixture
def shelves(db: None) -> dict[str, Book]:
    books = {}
    for code, tenant in (("A", TENANT), ("B", OTHER_TENANT)):
        shelf = Shelf.objects.create(code=code, tenant_id=tenant, name=code)
        books[code] = Book.objects.create(shelf=shelf, title=f"{code} book", isbn=code, pages=1)
    return books


def _access(tenant: str) -> Access:
    return Access(token=AccessToken(exp=2**31, sub="u", ten=tenant))


def _statement(rows: Any) -> tuple[str, tuple[Any, ...]]:
    return rows.query.get_compiler(using=rows.db).as_sql()


def test_a_filled_template_is_the_query_a_fresh_build_gives(shelves: dict[str, Book]) -> None:
    books = _library().children[0]
    access = _access(TENANT)
    book = shelves["A"]

    for _ in range(2):  # the second sighting builds the template
        queries.rows_in_chain(books, access, {"shelf_id": "A"}, pk=book.pk)
    ((key, template),) = queries._TEMPLATES._templates.items()
    assert isinstance(template, chain_templates.ChainTemplate)

    for ids, pk in (({"shelf_id": "A"}, book.pk), ({"shelf_id": "B"}, book.pk), ({"shelf_id": "A"}, 424242)):
        filled = queries.rows_in_chain(books, access, ids, pk=pk)
        queries._TEMPLATES.clear()
        fresh = queries.rows_in_chain(books, access, ids, pk=pk)  # a first sighting: built as before
        assert _statement(filled) == _statement(fresh)
        assert list(filled.values_list("pk", flat=True)) == list(fresh.values_list("pk", flat=True))
        queries._TEMPLATES._templates[key] = template

    assert list(queries.rows_in_chain(books, access, {"shelf_id": "A"}, pk=book.pk)) == [book]
    assert list(queries.rows_in_chain(books, access, {"shelf_id": "B"}, pk=shelves["B"].pk)) == []  # other tenant


def test_lists_without_a_primary_key_are_templated_too(shelves: dict[str, Book]) -> None:
    books = _library().children[0]
    access = _access(OTHER_TENANT)

    for _ in range(3):
        rows = queries.rows_in_chain(books, access, {"shelf_id": "B"})

    assert list(rows) == [shelves["B"]]
    assert list(queries.rows_in_chain(books, access, {"shelf_id": "A"})) == []
    assert [template for template in queries._TEMPLATES._templates.values() if template is not None]


def test_a_warm_template_never_serves_another_tenant(
    shelves: dict[str, Book],
    shared_connection: None,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    tree = _library()
    with make_client(tree) as client:
        mine = f"/shelves/A/books/{shelves['A'].pk}"
        theirs = f"/shelves/B/books/{shelves['B'].pk}"
        for _ in range(3):
            with django_assert_num_queries(1):  # the same one statement on every sighting
                assert client.get(mine, headers=HEADERS).status_code == 200

        assert client.get(mine, headers=OTHER_HEADERS).status_code == 404
        assert client.get(theirs, headers=HEADERS).status_code == 404
        assert client.get(theirs, headers=OTHER_HEADERS).json() == {"id": shelves["B"].pk, "title": "B book"}
        assert client.get(f"/shelves/B/books/{shelves['A'].pk}", headers=OTHER_HEADERS).status_code == 404

    kept = [key for key, template in queries._TEMPLATES._templates.items() if template and key[0] is tree.children[0]]
    assert len(kept) == 2  # one per tenant for the books' chain: the tenant's id is part of the shape


def test_a_manager_that_filters_with_a_value_of_its_own_is_built_every_time(
    shared_connection: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    episodes = DjangoRouterSchema(name="episodes", model=Episode, get=EpisodeOut)
    tree = DjangoRouterSchema(name="playlists", model=Playlist, get=PlaylistOut, children=[episodes])
    playlist = Playlist.objects.create(tenant_id="t", name="p")
    pilot = Episode.objects.create(playlist=playlist, title="pilot")
    url = f"/playlists/{playlist.pk}/episodes/{pilot.pk}"

    with make_client(tree) as client:
        monkeypatch.setattr(testapp, "HIDDEN_EPISODE_TITLES", ["finale"])
        assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
        monkeypatch.setattr(testapp, "HIDDEN_EPISODE_TITLES", ["pilot"])
        assert client.get(url).status_code == 404  # a template would have frozen the manager's first value

    assert plain_manager_rows(Episode) is None
    assert plain_manager_rows(Playlist) is not None
    assert all(template is None for template in queries._TEMPLATES._templates.values())


def test_a_row_filter_with_a_subquery_is_built_every_time(client: TestClient) -> None:
    """The demo's ``own`` scope filters with ``Exists(...)``: no key, so no template."""
    company = Company.objects.create(name="Owned", tenant_id=TENANT)
    other = Company.objects.create(name="Not owned", tenant_id=TENANT)
    Employee.objects.create(
        company=company, user_id="owner", type=Employee.Type.OWNER, hired_at=datetime.date(2026, 1, 1)
    )
    own = auth(user="owner", scopes=["business.companies.read.own"])
    everything = auth(user="owner", scopes=["business.companies.read.any"])

    for _ in range(3):
        assert client.get(f"/companies/{other.pk}", headers=everything).status_code == 200
        assert client.get(f"/companies/{company.pk}", headers=own).status_code == 200
    assert client.get(f"/companies/{other.pk}", headers=own).status_code == 404


def test_plain_values_are_keyed_with_their_types() -> None:
    assert filter_key(Q(a=1)) == filter_key(Q(a=1))
    assert len({filter_key(Q(a=1)), filter_key(Q(a=1.0)), filter_key(Q(a=True)), filter_key(Q(a="1"))}) == 4
    assert filter_key(Q(a=Decimal("1.0"))) != filter_key(Q(a=Decimal("1")))  # different strings stored
    assert filter_key(Q(a=uuid.UUID(int=1), b=[1, 2], c=None, d=datetime.date(2026, 1, 1))) is not None
    assert filter_key(Q(a=1) & ~Q(b=2)) != filter_key(Q(a=1) & Q(b=2))
    assert filter_key(Q(a=Employee.Type.OWNER)) != filter_key(Q(a=str(Employee.Type.OWNER.value)))


@pytest.mark.parametrize(
    "q",
    [
        Q(name=F("tenant_id")),
        Q(Exists(Employee.objects.filter(company=OuterRef("pk")))),
        Q(pk__in=Company.objects.values("pk")),
        Q(name={"a"}),
        Q(name=object()),
    ],
    ids=["F", "Exists", "queryset", "set", "object"],
)
def test_values_that_are_not_plain_literals_have_no_key(q: Q) -> None:
    assert filter_key(q) is None


def test_a_shape_is_built_on_its_second_sighting_and_churning_shapes_never() -> None:
    cache = TemplateCache(size=4)
    built: list[int] = []

    def build() -> None:
        built.append(1)
        return None

    for minute in range(10):  # a filter holding the time: a new key every time
        assert cache.get(("now", minute), build) is None
    assert built == []
    cache.get("steady", build)
    cache.get("steady", build)
    cache.get("steady", build)
    assert built == [1]  # built once; its "no template" answer is kept as well


def test_a_probe_that_lands_anywhere_but_one_equality_gives_no_template(db: None) -> None:
    probe = probe_for(Book._meta.pk)
    twice = Book.objects.filter(Q(pk=probe) | Q(pages=probe)).query
    compared = Book.objects.filter(pk__gt=probe).query
    once = Book.objects.filter(pk=probe).query

    key = [Book._meta.pk]
    assert build_template(twice, key, [probe]) is None
    assert build_template(compared, key, [probe]) is None
    assert build_template(once, key, [probe]) is not None


def test_probes_fit_the_key_types_djfapi_fills() -> None:
    assert isinstance(probe_for(Company._meta.pk), uuid.UUID)
    assert isinstance(probe_for(Book._meta.pk), int) and probe_for(Book._meta.pk) < 0
    assert probe_for(Shelf._meta.pk).startswith("djfapi-probe-")
    assert probe_for(CompanyDepartment._meta.get_field("budget")) is None  # a decimal key is not filled


@pytest.mark.parametrize(
    ("shelf", "book", "expected"),
    [
        ("A", "A", True),
        ("B", "A", False),  # the book is not on that shelf
        ("A", "B", False),  # another tenant's book
        ("A", 999_999, False),  # no such book
        ("A", 2**70, False),  # beyond the column's range: no row, not a database error
        ("A", -(2**70), False),
    ],
)
def test_exists_from_the_compiled_statement_answers_as_the_orm_does(
    shelves: dict[str, Book],
    shelf: str,
    book: Any,
    expected: bool,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    books = _library().children[0]
    access = _access(TENANT)
    pk = shelves[book].pk if isinstance(book, str) else book
    for _ in range(2):  # warm: the template, then its statement on this connection
        queries.exists_in_chain(books, access, {"shelf_id": "A"}, shelves["A"].pk)

    with django_assert_num_queries(1 if abs(pk) < 2**63 else 0):
        found = queries.exists_in_chain(books, access, {"shelf_id": shelf}, pk)
    queries._TEMPLATES.clear()
    fresh = queries.rows_in_chain(books, access, {"shelf_id": shelf}, pk=pk).exists()

    assert found is fresh is expected


def test_a_create_under_another_tenants_parent_is_refused_once_warm(
    shelves: dict[str, Book], shared_connection: None
) -> None:
    """``require_parent`` through the compiled statement: the warm path still says 404."""
    writable = SecurityScopes(get=READ, post=READ, delete=READ)
    books = DjangoRouterSchema(name="books", model=Book, get=BookOut, create=BookWrite, security_scopes=writable)
    tree = DjangoRouterSchema(
        name="shelves", model=Shelf, get=ShelfOut, children=[books], security=JWTToken(), security_scopes=SCOPES
    )
    with make_client(tree) as client:
        for number in range(3):
            created = client.post("/shelves/A/books", json={"title": "t", "isbn": f"n{number}"}, headers=HEADERS)
            assert created.status_code == 201, created.text
        refused = client.post("/shelves/A/books", json={"title": "t", "isbn": "x"}, headers=OTHER_HEADERS)
        missing = client.post("/shelves/Z/books", json={"title": "t", "isbn": "y"}, headers=HEADERS)

    assert refused.status_code == missing.status_code == 404
    assert not Book.objects.filter(isbn__in=["x", "y"]).exists()


def test_values_and_instances_from_compiled_statements_match_the_orm(
    shelves: dict[str, Book],
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    books = _library().children[0]
    access = _access(TENANT)
    mine = shelves["A"]
    for _ in range(3):  # the template, then each read's statement on this connection
        queries.values_in_chain(books, access, {"shelf_id": "A"}, mine.pk, ["id", "title", "pages"], 5)
        queries.object_in_chain(books, access, {"shelf_id": "A"}, mine.pk)

    for shelf, pk in (("A", mine.pk), ("A", shelves["B"].pk), ("B", mine.pk), ("A", 2**70)):
        ids = {"shelf_id": shelf}
        with django_assert_num_queries(1 if pk < 2**63 else 0):
            rows = queries.values_in_chain(books, access, ids, pk, ["id", "title", "pages"], 5)
        with django_assert_num_queries(1 if pk < 2**63 else 0):
            found = queries.object_in_chain(books, access, ids, pk)
        fresh = queries.rows_in_chain(books, access, ids, pk=pk)
        assert rows == list(fresh.values("id", "title", "pages")[:5])
        assert found == (fresh.first() if pk < 2**63 else None)

    found = queries.object_in_chain(books, access, {"shelf_id": "A"}, mine.pk)
    assert found is not None
    assert (found.pk, found.title, found.shelf_id, found.pages) == (mine.pk, "A book", "A", 1)
    assert not found._state.adding
    assert found._state.db == "default"
    found.title = "saved"
    found.save(update_fields=["title"])  # a loaded instance: an UPDATE, not an INSERT
    assert Book.objects.get(pk=mine.pk).title == "saved"


def test_a_locking_read_outside_a_transaction_is_left_to_the_orm(transactional_db: None) -> None:
    shelf = Shelf.objects.create(code="A", tenant_id=TENANT, name="A")
    book = Book.objects.create(shelf=shelf, title="t", isbn="i", pages=1)
    books = _library().children[0]
    access = _access(TENANT)
    for _ in range(2):
        assert queries.object_in_chain(books, access, {"shelf_id": "A"}, book.pk) == book

    with transaction.atomic():
        assert queries.object_in_chain(books, access, {"shelf_id": "A"}, book.pk, lock=True) == book
    if connection.features.has_select_for_update:
        with pytest.raises(TransactionManagementError):  # as Django says, not a silently unlocked row
            queries.object_in_chain(books, access, {"shelf_id": "A"}, book.pk, lock=True)
    else:
        assert queries.object_in_chain(books, access, {"shelf_id": "A"}, book.pk, lock=True) == book


@pytest.mark.postgresql
def test_the_compiled_instance_read_locks_the_row_on_postgresql(
    shelves: dict[str, Book],
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    books = _library().children[0]
    access = _access(TENANT)
    for _ in range(2):
        queries.object_in_chain(books, access, {"shelf_id": "A"}, shelves["A"].pk, lock=True)

    with django_assert_num_queries(1) as captured:
        queries.object_in_chain(books, access, {"shelf_id": "A"}, shelves["A"].pk, lock=True)

    assert "FOR UPDATE" in captured.captured_queries[0]["sql"]

"""A write answers from what it wrote: the row's own columns come from the saved instance,
normalised as the database gives them back, and only the nested lists are read again
(``djfapi.orm.rows.ValuesReader.read_written``).

Each test compares the write's answer with a read of the same row afterwards — same
body, same ETag — and counts the statement the shortcut saves; the refused cases are
the ones where the instance cannot be trusted (a hook that changes the row behind it, a
column that is not the model's own, a deferred column, an expression the database
evaluates), which read the row again.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID

import pytest
from django.db import models
from django.db.models import F
from django.db.models.signals import post_save, pre_save
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.orm.mapping import mapping_for
from djfapi.orm.rows import ValuesReader, values_reader, written_value
from djfapi.orm.side_effects import saves_only_themselves
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.routing.hooks import WriteEvent
from djfapi.security.jwt import JWTToken
from testproject.business.models import Company, CompanyDepartment, CompanyDepartmentTeam
from tests.helpers import TENANT, auth
from tests.test_plan import make_client
from tests.testapp.models import HIDDEN_EPISODE_TITLES, Book, Journal, Ledger, Note, Playlist, Shelf


def _company() -> Company:
    return Company.objects.create(tenant_id=TENANT, name="Written Ltd")


def test_a_created_department_answers_what_a_read_shows(client: TestClient) -> None:
    company = _company()
    body = {"name": "Research", "budget": "1000.5", "teams": [{"name": "Core", "size": 3}]}

    created = client.post(f"/companies/{company.pk}/departments", json=body, headers=auth())
    read = client.get(f"/companies/{company.pk}/departments/{created.json()['id']}", headers=auth())

    assert created.status_code == 201, created.text
    assert created.json()["budget"] == "1000.50"  # at the column's two places, as stored
    assert created.json() == read.json()
    assert created.headers["etag"] == read.headers["etag"]


def test_a_patched_department_answers_what_a_read_shows(client: TestClient) -> None:
    company = _company()
    department = CompanyDepartment.objects.create(company=company, name="Sales", budget=Decimal("10.00"))
    url = f"/companies/{company.pk}/departments/{department.pk}"

    patched = client.patch(url, json={"budget": "7"}, headers=auth())
    read = client.get(url, headers=auth())

    assert patched.status_code == 200, patched.text
    assert patched.json()["budget"] == "7.00"
    assert patched.json() == read.json()
    assert patched.headers["etag"] == read.headers["etag"]


# -- the test app: decimals of four places, a time stamped on save ------------------------


class LedgerOut(BaseModel):
    id: int
    tenant_id: str
    amount: Decimal


class LedgerWrite(BaseModel):
    amount: Decimal


class NoteOut(BaseModel):
    id: int
    title: str
    pinned: bool
    updated_at: datetime.datetime


class NoteWrite(BaseModel):
    author_id: str
    title: str
    pinned: bool = False


SCOPES = SecurityScopes(
    get=["tests.rows.read"], post=["tests.rows.write"], patch=["tests.rows.write"], delete=["tests.rows.write"]
)
HEADERS = auth(scopes=["tests.rows.read", "tests.rows.write"])


def _tenant_tree(name: str, model: type[models.Model], get: type[BaseModel], write: type[BaseModel]) -> TestClient:
    tree = DjangoRouterSchema(
        name=name, model=model, get=get, create=write, update=write, security=JWTToken(), security_scopes=SCOPES
    )
    client = make_client(tree)
    client.headers.update(HEADERS)
    return client


@pytest.fixture
def ledgers(shared_connection: None) -> Iterator[TestClient]:
    with _tenant_tree("ledgers", Ledger, LedgerOut, LedgerWrite) as client:
        yield client


@pytest.fixture
def notes(shared_connection: None) -> Iterator[TestClient]:
    with _tenant_tree("notes", Note, NoteOut, NoteWrite) as client:
        yield client


def test_decimals_are_answered_at_the_columns_places(ledgers: TestClient) -> None:
    created = ledgers.post("/ledgers", json={"amount": "1.5"})
    read = ledgers.get(f"/ledgers/{created.json()['id']}")

    assert created.status_code == 201, created.text
    assert created.json()["amount"] == "1.5000"
    assert created.json() == read.json()


def test_a_time_stamped_by_save_is_answered_as_stored(notes: TestClient) -> None:
    created = notes.post("/notes", json={"author_id": "ann", "title": "First"})
    patched = notes.patch(f"/notes/{created.json()['id']}", json={"pinned": True})
    read = notes.get(f"/notes/{created.json()['id']}")

    assert created.status_code == 201 and patched.status_code == 200
    assert patched.json() == read.json()
    assert read.json()["updated_at"].endswith("Z")
    assert read.json()["updated_at"] >= created.json()["updated_at"]


def test_the_answer_costs_one_statement_less_than_a_read_back(
    ledgers: TestClient,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    # SAVEPOINT + INSERT + RELEASE: no SELECT of the row just written
    with django_assert_num_queries(3):
        response = ledgers.post("/ledgers", json={"amount": "2"})

    assert response.status_code == 201
    assert response.json()["amount"] == "2.0000"
    assert response.json()["tenant_id"] == TENANT


# -- when the instance cannot be trusted, the row is read again ------------------------------


class BookOut(BaseModel):
    id: int
    title: str
    pages: int


class BookWrite(BaseModel):
    title: str
    isbn: str
    pages: int = 1


class ShelfOut(BaseModel):
    code: str
    name: str


def test_a_hook_that_changes_the_row_behind_the_instance_is_seen(
    shared_connection: None,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    books = DjangoRouterSchema(name="books", model=Book, get=BookOut, create=BookWrite, update=BookWrite)
    tree = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfOut, children=[books])

    @books.hook("after_update")
    def double_pages(event: WriteEvent) -> None:
        Book.objects.filter(pk=event.instance.pk).update(pages=F("pages") * 2)  # not through the instance

    shelf = Shelf.objects.create(code="S1", tenant_id="t", name="Main")
    book = Book.objects.create(shelf=shelf, title="Dune", isbn="1", pages=10)
    with make_client(tree) as client:
        response = client.patch(f"/shelves/S1/books/{book.pk}", json={"pages": 20})

    assert response.status_code == 200, response.text
    assert response.json()["pages"] == 40  # read again: what the database holds, not the instance's 20


class BookWithShelf(BaseModel):
    id: int
    title: str
    shelf_name: str


def test_columns_that_are_not_the_models_own_are_read_again(shared_connection: None) -> None:
    shelf = Shelf.objects.create(code="S1", tenant_id="t", name="Main")
    book = Book.objects.create(shelf=shelf, title="Dune", isbn="1", pages=10)
    related = ValuesReader(Book, (("id", "id"), ("shelf_name", "shelf__name")), ())
    plain = ValuesReader(Book, (("id", "id"), ("title", "title")), ())

    assert related.read_written([book]) is None
    assert plain.read_written([book]) == [{"id": book.pk, "title": "Dune"}]


def test_deferred_columns_and_expressions_are_read_again(shared_connection: None) -> None:
    shelf = Shelf.objects.create(code="S1", tenant_id="t", name="Main")
    Book.objects.create(shelf=shelf, title="Dune", isbn="1", pages=10)
    reader = ValuesReader(Book, (("id", "id"), ("title", "title"), ("pages", "pages")), ())
    deferred = Book.objects.only("id", "title").get()
    pending = Book.objects.get()
    pending.pages = F("pages") + 1

    assert reader.read_written([deferred]) is None
    assert reader.read_written([pending]) is None
    assert reader.read_written([Book.objects.get()]) == [{"id": deferred.pk, "title": "Dune", "pages": 10}]


def test_the_demos_department_reader_takes_the_shortcut() -> None:
    from testproject.business.schemas import Department

    reader = values_reader(mapping_for(Department, CompanyDepartment))

    assert reader is not None
    assert reader._own_columns is not None


def test_written_values_are_normalised_as_the_database_returns_them() -> None:
    decimal = models.DecimalField(max_digits=14, decimal_places=2)
    stamp = models.DateTimeField()
    berlin = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))

    assert written_value(decimal, Decimal("3.1")) == Decimal("3.10")
    assert str(written_value(decimal, 3)) == "3.00"
    assert written_value(stamp, berlin) == datetime.datetime(2026, 1, 1, 11, 0, tzinfo=datetime.UTC)
    assert written_value(stamp, berlin).tzinfo is datetime.UTC
    # naive: made aware in TIME_ZONE (UTC in the tests), as Django does when it stores one
    assert written_value(stamp, datetime.datetime(2026, 1, 1, 12, 0)).utcoffset() == datetime.timedelta(0)
    assert written_value(decimal, None) is None


# -- a create's nested lists: what it created, unless something else can add rows ---------------


def test_a_created_departments_teams_are_answered_without_reading_them(
    client: TestClient,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    company = _company()
    body = {"name": "Ops", "budget": "5", "teams": [{"name": f"T{n}", "size": n} for n in range(5)]}

    # SAVEPOINT, parent check, INSERT department, its change event, 5 INSERTs of teams, RELEASE
    with django_assert_num_queries(1 + 1 + 1 + 1 + 5 + 1):
        created = client.post(f"/companies/{company.pk}/departments", json=body, headers=auth())
    read = client.get(f"/companies/{company.pk}/departments/{created.json()['id']}", headers=auth())

    assert created.status_code == 201, created.text
    assert created.json() == read.json()  # teams in the database's order (by their UUID keys)
    assert created.headers["etag"] == read.headers["etag"]


def test_a_receiver_that_adds_rows_makes_the_create_read_its_lists(client: TestClient) -> None:
    def default_team(sender: type[models.Model], instance: CompanyDepartment, created: bool, **_: object) -> None:
        if created:
            CompanyDepartmentTeam.objects.create(department=instance, name="Default", size=0)

    company = _company()
    post_save.connect(default_team, sender=CompanyDepartment)
    try:
        created = client.post(
            f"/companies/{company.pk}/departments",
            json={"name": "Ops", "budget": "5", "teams": [{"name": "Core", "size": 3}]},
            headers=auth(),
        )
    finally:
        post_save.disconnect(default_team, sender=CompanyDepartment)
    read = client.get(f"/companies/{company.pk}/departments/{created.json()['id']}", headers=auth())

    assert created.status_code == 201, created.text
    assert sorted(team["name"] for team in created.json()["teams"]) == ["Core", "Default"]
    assert created.json() == read.json()


class EntryOut(BaseModel):
    id: UUID
    text: str


class EntryWrite(BaseModel):
    id: UUID | None = None
    text: str


class JournalOut(BaseModel):
    id: int
    title: str
    entries: list[EntryOut]


class JournalWrite(BaseModel):
    title: str
    entries: list[EntryWrite] = Field(default_factory=list)


class EpisodeOut(BaseModel):
    id: int
    title: str


class PlaylistOut(BaseModel):
    id: int
    name: str
    episodes: list[EpisodeOut]


class EpisodeWrite(BaseModel):
    id: int | None = None
    title: str


class PlaylistWrite(BaseModel):
    name: str
    episodes: list[EpisodeWrite] = Field(default_factory=list)


def test_a_save_that_adds_rows_makes_the_create_read_its_lists(shared_connection: None) -> None:
    with _tenant_tree("journals", Journal, JournalOut, JournalWrite) as client:
        created = client.post("/journals", json={"title": "Log", "entries": [{"text": "first"}]})
        read = client.get(f"/journals/{created.json()['id']}")

    assert created.status_code == 201, created.text
    assert sorted(entry["text"] for entry in created.json()["entries"]) == ["first", "opened"]
    assert created.json() == read.json()


def test_a_list_whose_manager_hides_rows_answers_as_a_read_would(shared_connection: None) -> None:
    body = {"name": "Show", "episodes": [{"title": "pilot"}, {"title": HIDDEN_EPISODE_TITLES[0]}]}
    with _tenant_tree("playlists", Playlist, PlaylistOut, PlaylistWrite) as client:
        created = client.post("/playlists", json=body)
        read = client.get(f"/playlists/{created.json()['id']}")

    assert created.status_code == 201, created.text
    assert [episode["title"] for episode in created.json()["episodes"]] == ["pilot"]
    assert created.json() == read.json()


def test_only_djfapis_own_receivers_and_djangos_save_count_as_harmless() -> None:
    def audit(**_: object) -> None: ...

    assert saves_only_themselves(CompanyDepartment)  # the change feed's receivers are djfapi's
    assert not saves_only_themselves(Journal)  # save() overridden
    pre_save.connect(audit, sender=CompanyDepartmentTeam)
    try:
        assert not saves_only_themselves(CompanyDepartmentTeam)
    finally:
        pre_save.disconnect(audit, sender=CompanyDepartmentTeam)
    assert saves_only_themselves(CompanyDepartmentTeam)

"""``owner_field``: the creating user from the token, declared on the node — set on create
(also for rows created as nested items), never writable from a body, and what the default
row filter narrows to under an ``own`` scope.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.testapp.models import Account, Note, NoteComment, Reminder

READ_ANY, READ_OWN = "notes.notes.read.any", "notes.notes.read.own"
CREATE, UPDATE_ANY, UPDATE_OWN = "notes.notes.create", "notes.notes.update.any", "notes.notes.update.own"
EVERYTHING = [READ_ANY, CREATE, UPDATE_ANY]
OWN_ONLY = [READ_OWN, CREATE, UPDATE_OWN]


class CommentOut(BaseModel):
    id: int
    author_id: str
    text: str


class NoteOut(BaseModel):
    id: int
    author_id: str
    title: str
    comments: list[CommentOut]


class CommentWrite(BaseModel):
    id: int | None = None
    text: str


class NoteWrite(BaseModel):
    title: str
    comments: list[CommentWrite] = Field(default_factory=list)


def notes_tree(create: type[BaseModel] = NoteWrite) -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="notes",
        model=Note,
        get=NoteOut,
        create=create,
        update=NoteWrite,
        owner_field="author_id",
        security=JWTToken(),
        security_scopes=SecurityScopes(
            get=[READ_ANY, READ_OWN], post=[CREATE], patch=[UPDATE_ANY, UPDATE_OWN], delete=[UPDATE_ANY, UPDATE_OWN]
        ),
        children=[
            DjangoRouterSchema(
                name="comments",
                model=NoteComment,
                get=CommentOut,
                create=CommentWrite,
                update=CommentWrite,
                owner_field="author_id",
                security_scopes=SecurityScopes(post=[READ_ANY, READ_OWN]),  # anyone who can read may comment
            )
        ],
    )


def serve(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    app.include_router(tree.router)
    return TestClient(app)


@pytest.fixture
def api(shared_connection: None) -> Iterator[TestClient]:
    with serve(notes_tree()) as client:
        yield client


def as_user(user: str, scopes: list[str] = EVERYTHING, tenant: str = TENANT) -> dict[str, str]:
    return auth(tenant=tenant, user=user, scopes=scopes)


def test_create_takes_the_owner_from_the_token_at_every_level(api: TestClient) -> None:
    created = api.post("/notes", json={"title": "Mine", "comments": [{"text": "first"}]}, headers=as_user("ann"))
    note_id = created.json()["id"]
    reply = api.post(f"/notes/{note_id}/comments", json={"text": "a reply"}, headers=as_user("bob"))

    assert created.status_code == 201, created.text
    assert created.json()["author_id"] == "ann"
    assert created.json()["comments"][0]["author_id"] == "ann"  # a nested row of an owned model: the same rule
    assert reply.status_code == 201
    assert reply.json()["author_id"] == "bob"
    assert sorted(NoteComment.objects.values_list("author_id", flat=True)) == ["ann", "bob"]


def test_a_body_cannot_choose_or_change_the_owner(api: TestClient) -> None:
    smuggled = api.post("/notes", json={"title": "x", "author_id": "mallory"}, headers=as_user("ann"))
    note = Note.objects.create(tenant_id=TENANT, author_id="ann", title="Mine")
    moved = api.patch(f"/notes/{note.pk}", json={"author_id": "mallory"}, headers=as_user("ann"))
    renamed = api.patch(f"/notes/{note.pk}", json={"title": "Renamed"}, headers=as_user("bob"))  # update.any

    assert smuggled.status_code == moved.status_code == 422
    assert smuggled.json()["detail"][0]["loc"] == ["body", "author_id"]
    assert renamed.status_code == 200
    assert Note.objects.values_list("author_id", "title").get() == ("ann", "Renamed")


def test_a_write_schema_that_declares_the_owner_is_refused_at_start_up() -> None:
    class NoteWriteWithAuthor(BaseModel):
        title: str
        author_id: str

    with pytest.raises(SchemaDefinitionError) as refused:
        notes_tree(create=NoteWriteWithAuthor).router  # noqa: B018

    assert str(refused.value) == (
        "NoteWriteWithAuthor.author_id: Note.author_id is the owner_field, set from the token's user on create and "
        "never from a body; remove it from the write schema."
    )


def test_an_own_scope_narrows_every_route_to_the_callers_rows(api: TestClient) -> None:
    mine = Note.objects.create(tenant_id=TENANT, author_id="ann", title="Ann's")
    theirs = Note.objects.create(tenant_id=TENANT, author_id="bob", title="Bob's")
    Note.objects.create(tenant_id=OTHER_TENANT, author_id="ann", title="Ann's elsewhere")

    own_list = api.get("/notes", headers=as_user("ann", OWN_ONLY)).json()["items"]
    any_list = api.get("/notes", headers=as_user("ann")).json()["items"]
    hidden = api.get(f"/notes/{theirs.pk}", headers=as_user("ann", OWN_ONLY))
    not_patched = api.patch(f"/notes/{theirs.pk}", json={"title": "Mine now"}, headers=as_user("ann", OWN_ONLY))
    patched = api.patch(f"/notes/{mine.pk}", json={"title": "Still mine"}, headers=as_user("ann", OWN_ONLY))

    assert [n["title"] for n in own_list] == ["Ann's"]
    assert sorted(n["title"] for n in any_list) == ["Ann's", "Bob's"]
    assert hidden.status_code == not_patched.status_code == 404
    assert hidden.json()["detail"]["code"] == "not_exist:note"
    assert patched.status_code == 200
    theirs.refresh_from_db()
    assert theirs.title == "Bob's"


class ReminderOut(BaseModel):
    id: int
    owner_id: int
    text: str


class ReminderWrite(BaseModel):
    text: str


def test_an_owner_foreign_key_takes_the_tokens_user_id_and_refuses_one_that_is_not_an_id(
    shared_connection: None,
) -> None:
    tree = DjangoRouterSchema(
        name="reminders",
        model=Reminder,
        get=ReminderOut,
        create=ReminderWrite,
        owner_field="owner",
        delete=False,
        security=JWTToken(),
        security_scopes=SecurityScopes(get=[READ_ANY], post=[CREATE]),
    )
    user = Account.objects.create(name="ann")

    with serve(tree) as client:
        created = client.post("/reminders", json={"text": "call"}, headers=as_user(str(user.pk)))
        refused = client.post("/reminders", json={"text": "call"}, headers=as_user("not-a-number"))

    assert created.status_code == 201
    assert created.json()["owner_id"] == user.pk
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "user_invalid"
    assert Reminder.objects.count() == 1

"""References stay inside the written row's parents, primary keys are the server's, and no
answer tells another tenant's id from a random one (issue 12, parts 1 and 2; SPEC §10).

A foreign key sent in a body that points at a node of the tree is looked up through that
node's chain with the ancestor ids the written row shares: an employee's department must be
a department of the employee's company. Otherwise the answer is exactly that of a missing
row — at every level, in nested lists and in bulk creates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.hooks import WriteEvent
from testproject.business.models import Company, CompanyDepartment, CompanyDepartmentTeam, Employee
from tests.factories import make_company, make_department
from tests.helpers import OTHER_TENANT, auth
from tests.testapp.models import Artwork, Gallery, Museum

MISSING = ("conflict", "integrity:business_employee_department_id_fk")


def error_of(response: Any) -> tuple[str, str]:
    return response.json()["detail"]["type"], response.json()["detail"]["code"]


def hire(**fields: Any) -> dict[str, Any]:
    return {"user_id": f"user-{uuid.uuid4().hex[:8]}", "hired_at": "2024-01-02", **fields}


@pytest.fixture
def two_companies() -> tuple[Company, Company, CompanyDepartment, CompanyDepartment]:
    mine, sibling = make_company(name="B0"), make_company(name="B1")  # one tenant, two companies
    return mine, sibling, make_department(mine, "Own"), make_department(sibling, "Sibling's")


# -- the demo: an employee's department must be one of the employee's company -------------------------------------


def test_an_employee_cannot_be_put_into_a_department_of_another_company(client: TestClient, two_companies: Any) -> None:
    mine, _, own, siblings = two_companies
    employee = Employee.objects.create(company=mine, user_id="e", type="MEMBER", hired_at="2024-01-01")
    path = f"/companies/{mine.pk}/employees/{employee.pk}"

    across = client.patch(path, json={"department_id": str(siblings.pk)}, headers=auth())
    missing = client.patch(path, json={"department_id": str(uuid.uuid4())}, headers=auth())
    inside = client.patch(path, json={"department_id": str(own.pk)}, headers=auth())

    assert (across.status_code, error_of(across)) == (409, MISSING)
    assert across.json()["detail"]["message"] == missing.json()["detail"]["message"]
    assert across.json() == missing.json()
    assert inside.status_code == 200
    assert inside.json()["department_id"] == str(own.pk)


def test_create_and_bulk_create_keep_references_inside_the_company(client: TestClient, two_companies: Any) -> None:
    mine, _, own, siblings = two_companies
    path = f"/companies/{mine.pk}/employees"

    single = client.post(path, json=hire(department_id=str(siblings.pk)), headers=auth())
    bulk = client.post(
        path, json=[hire(department_id=str(own.pk)), hire(department_id=str(siblings.pk))], headers=auth()
    )
    accepted = client.post(path, json=[hire(department_id=str(own.pk)), hire()], headers=auth())

    assert (single.status_code, error_of(single)) == (409, MISSING)
    assert (bulk.status_code, error_of(bulk)) == (409, MISSING)
    assert accepted.status_code == 201
    assert Employee.objects.count() == 2  # the refused bulk left none of its items


def test_a_department_of_another_tenant_is_the_same_answer(client: TestClient, two_companies: Any) -> None:
    mine, _, _, _ = two_companies
    foreign = make_department(make_company(tenant=OTHER_TENANT, name="Elsewhere"))
    path = f"/companies/{mine.pk}/employees"

    other_tenant = client.post(path, json=hire(department_id=str(foreign.pk), user_id="x"), headers=auth())
    random_id = client.post(path, json=hire(department_id=str(uuid.uuid4()), user_id="x"), headers=auth())

    assert other_tenant.status_code == random_id.status_code == 409
    assert other_tenant.json() == random_id.json()


# -- three levels: an artwork's lender must be a gallery of the artwork's museum -----------------------------------


class ArtworkOut(BaseModel):
    id: uuid.UUID
    title: str
    loaned_from_id: int | None


class ArtworkWrite(BaseModel):
    id: uuid.UUID | None = None
    title: str
    loaned_from_id: int | None = None


class GalleryOut(BaseModel):
    id: int
    name: str
    artworks: list[ArtworkOut]


class GalleryWrite(BaseModel):
    name: str
    artworks: list[ArtworkWrite] = Field(default_factory=list)


class MuseumOut(BaseModel):
    id: int
    name: str


def museums_tree() -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="museums",
        model=Museum,
        get=MuseumOut,
        children=[
            DjangoRouterSchema(
                name="galleries",
                model=Gallery,
                get=GalleryOut,
                create=GalleryWrite,
                update=GalleryWrite,
                children=[
                    DjangoRouterSchema(
                        name="artworks",
                        model=Artwork,
                        get=ArtworkOut,
                        create=ArtworkWrite,
                        update=ArtworkWrite,
                        parent_field="gallery",
                        create_multi=10,
                    )
                ],
            )
        ],
    )


@pytest.fixture
def museums(shared_connection: None) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(museums_tree().router)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def galleries() -> dict[str, Gallery]:
    louvre, prado = (
        Museum.objects.create(tenant_id="t", name="Louvre"),
        Museum.objects.create(tenant_id="t", name="Prado"),
    )
    return {
        "home": Gallery.objects.create(museum=louvre, name="Denon"),
        "neighbour": Gallery.objects.create(museum=louvre, name="Sully"),
        "abroad": Gallery.objects.create(museum=prado, name="Sala 12"),
    }


def test_a_leaf_refers_only_to_galleries_of_its_own_museum(museums: TestClient, galleries: dict[str, Gallery]) -> None:
    home, neighbour, abroad = galleries["home"], galleries["neighbour"], galleries["abroad"]
    path = f"/museums/{home.museum_id}/galleries/{home.pk}/artworks"

    refused = museums.post(path, json={"title": "Mona Lisa", "loaned_from_id": abroad.pk})
    missing = museums.post(path, json={"title": "Mona Lisa", "loaned_from_id": 10_000})
    accepted = museums.post(path, json={"title": "Mona Lisa", "loaned_from_id": neighbour.pk})
    moved = museums.patch(f"{path}/{accepted.json()['id']}", json={"loaned_from_id": abroad.pk})

    assert refused.status_code == missing.status_code == moved.status_code == 409
    assert refused.json() == missing.json() == moved.json()
    assert refused.json()["detail"]["code"] == "integrity:testapp_artwork_loaned_from_id_fk"
    assert accepted.status_code == 201
    assert Artwork.objects.get().loaned_from_id == neighbour.pk


def test_nested_items_and_bulk_creates_are_held_to_the_same_parents(
    museums: TestClient, galleries: dict[str, Gallery]
) -> None:
    home, neighbour, abroad = galleries["home"], galleries["neighbour"], galleries["abroad"]
    gallery_path = f"/museums/{home.museum_id}/galleries/{home.pk}"
    nested = {"name": "Denon", "artworks": [{"title": "A", "loaned_from_id": neighbour.pk}]}
    nested_abroad = {"name": "Denon", "artworks": [{"title": "A"}, {"title": "B", "loaned_from_id": abroad.pk}]}

    synced_bad = museums.put(gallery_path, json=nested_abroad)
    created_bad = museums.post(f"/museums/{home.museum_id}/galleries", json=nested_abroad)
    bulk_bad = museums.post(
        f"{gallery_path}/artworks", json=[{"title": "A"}, {"title": "B", "loaned_from_id": abroad.pk}]
    )
    synced = museums.put(gallery_path, json=nested)

    for response in (synced_bad, created_bad, bulk_bad):
        assert response.status_code == 409, response.text
        assert response.json()["detail"]["code"] == "integrity:testapp_artwork_loaned_from_id_fk"
    assert synced.status_code == 200, synced.text
    assert [(a.title, a.loaned_from_id) for a in Artwork.objects.all()] == [("A", neighbour.pk)]
    assert Gallery.objects.count() == 3  # the refused nested create left no gallery


# -- primary keys are the server's ------------------------------------------------------------------------------------


def test_an_id_in_a_new_nested_item_is_the_same_422_for_a_random_id_and_another_tenants(client: TestClient) -> None:
    mine = make_company()
    foreign_team = CompanyDepartmentTeam.objects.create(
        department=make_department(make_company(tenant=OTHER_TENANT)), name="Theirs"
    )
    path = f"/companies/{mine.pk}/departments"

    answers = [
        client.post(path, json={"name": "d", "teams": [{"id": str(team_id), "name": "t"}]}, headers=auth())
        for team_id in (uuid.uuid4(), foreign_team.pk)
    ]

    assert [a.status_code for a in answers] == [422, 422]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["detail"][0]["loc"] == ["body", "teams", 0, "id"]
    assert not CompanyDepartment.objects.filter(company=mine).exists()


def test_a_schema_may_let_the_client_choose_a_generated_key_explicitly(museums: TestClient, galleries: Any) -> None:
    class ChosenArtwork(BaseModel):
        id: uuid.UUID = Field(client_key=True)
        title: str

    tree = DjangoRouterSchema(
        name="artworks", model=Artwork, get=ArtworkOut, create=ChosenArtwork, parent_field="gallery"
    )
    gallery = galleries["home"]
    app = FastAPI()
    app.include_router(DjangoRouterSchema(name="galleries", model=Gallery, get=GalleryOut, children=[tree]).router)
    chosen = uuid.uuid4()

    with TestClient(app) as client:
        created = client.post(f"/galleries/{gallery.pk}/artworks", json={"id": str(chosen), "title": "A"})
        again = client.post(f"/galleries/{gallery.pk}/artworks", json={"id": str(chosen), "title": "B"})

    assert created.status_code == 201
    assert created.json()["id"] == str(chosen)
    assert again.status_code == 409
    assert again.json()["detail"]["code"] == "integrity:testapp_artwork_pkey"  # the same on SQLite and PostgreSQL


def test_a_foreign_key_the_database_refuses_has_one_code_on_every_database(transactional_db: None) -> None:
    """A row referred to was deleted meanwhile: the database refuses the write at commit.

    SQLite does not say which constraint failed, so neither does PostgreSQL's answer.
    """

    class EmployeeOut(BaseModel):
        id: uuid.UUID

    class EmployeeWrite(BaseModel):
        user_id: str

    tree = DjangoRouterSchema(name="employees", model=Employee, get=EmployeeOut, update=EmployeeWrite)

    @tree.hook("after_update")
    def point_nowhere(event: WriteEvent) -> None:
        Employee.objects.filter(pk=event.instance.pk).update(department_id=uuid.uuid4())

    employee = Employee.objects.create(company=make_company(), user_id="e", hired_at="2024-01-01")
    app = FastAPI()
    app.include_router(tree.router)
    with TestClient(app) as client:
        response = client.patch(f"/employees/{employee.pk}", json={"user_id": "f"})

    assert response.status_code == 409, response.text
    assert response.json()["detail"]["code"] == "integrity:foreign_key"
    assert Employee.objects.get().user_id == "e"

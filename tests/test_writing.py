"""Writes through HTTP (SPEC §6): create with nested lists, PATCH vs PUT, nested-list sync,
rollback of a failed request, ``orm_method`` writes and reads, unknown body fields, and
Decimal precision — on the demo and on trees built here over the testapp models.
"""

from __future__ import annotations

import datetime
import hashlib
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ConfigDict

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTToken
from testproject.business import schemas as demo_schemas
from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.testapp.models import Book, Exhibit, Genre, Member, Room, Shelf

# -- demo helpers ------------------------------------------------------------------------


def make_company(name: str = "Acme", *, tenant: str = TENANT, costcenters: tuple[str, ...] = ()) -> Company:
    company = Company.objects.create(tenant_id=tenant, name=name)
    for code in costcenters:
        CompanyCostcenter.objects.create(company=company, code=code, name=f"Cost {code}")
    return company


def costcenters_of(company: Company) -> list[tuple[int, str, str]]:
    return list(company.costcenters.order_by("code").values_list("id", "code", "name"))


def make_employee(company: Company) -> Employee:
    department = CompanyDepartment.objects.create(company=company, name="R&D")
    return Employee.objects.create(
        company=company,
        user_id="emp-1",
        type=Employee.Type.MEMBER,
        department=department,
        salary=Decimal("1000.00"),
        hired_at=datetime.date(2020, 1, 1),
    )


def counts() -> dict[str, int]:
    return {
        "companies": Company.objects.count(),
        "costcenters": CompanyCostcenter.objects.count(),
        "departments": CompanyDepartment.objects.count(),
        "teams": CompanyDepartmentTeam.objects.count(),
    }


# -- testapp trees -----------------------------------------------------------------------

KEY = "writing-tests-secret-key-of-32-bytes"
ISSUER = "writing-tests"


def serve(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


def bearer(tenant: str, *scopes: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "tester", "ten": tenant, "aud": list(scopes), "iat": now, "exp": now + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='HS256')}"}


class MemberOut(BaseModel):
    id: int
    name: str
    has_password: bool = Field(orm_method="has_password")


class MemberWrite(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    password: str | None = Field(None, min_length=1, orm_method="set_password")


class StrictMemberWrite(MemberWrite):
    model_config = ConfigDict(extra="forbid")


class LaxMemberWrite(BaseModel):
    """Lets ``null`` through for a column that is NOT NULL: Django has to refuse it."""

    name: str | None = None


class MemberWriteThroughFunction(BaseModel):
    name: str
    password: str | None = Field(None, orm_method=Member.set_password)


class BookOut(BaseModel):
    id: int
    title: str
    title_upper: str = Field(orm_method="title_upper")


class ShelfOut(BaseModel):
    code: str
    name: str


class ShelfWrite(BaseModel):
    code: str = Field(min_length=1, max_length=20)
    name: str


class GenreRef(BaseModel):
    name: str


class ExhibitOut(BaseModel):
    id: int
    title: str
    genre: GenreRef | None


class ExhibitWrite(BaseModel):
    title: str
    genre_id: int | None = None


class RoomOut(BaseModel):
    id: int
    name: str


class RoomWrite(BaseModel):
    name: str


class LooseTeam(BaseModel):
    """Lets any integer through, so that Django's own validation has to catch a negative size."""

    name: str
    size: int


class DepartmentOut(BaseModel):
    id: uuid.UUID
    name: str
    teams: list[demo_schemas.Team]


class DepartmentWithLooseTeams(BaseModel):
    company_id: uuid.UUID
    name: str
    teams: list[LooseTeam] = []


@pytest.fixture
def members(shared_connection: None) -> Iterator[TestClient]:
    tree = DjangoRouterSchema(name="members", model=Member, get=MemberOut, create=MemberWrite, update=MemberWrite)
    with serve(tree) as client:
        yield client


@pytest.fixture
def rooms(shared_connection: None) -> Iterator[TestClient]:
    exhibits = DjangoRouterSchema(
        name="exhibits", model=Exhibit, get=ExhibitOut, create=ExhibitWrite, parent_field="room"
    )
    tree = DjangoRouterSchema(
        name="rooms",
        model=Room,
        get=RoomOut,
        create=RoomWrite,
        delete=False,
        security=JWTToken(key=KEY, algorithms=["HS256"], issuer=ISSUER),
        security_scopes=SecurityScopes(get=["lib.rooms.read"], post=["lib.rooms.write"], patch=["lib.rooms.write"]),
        children=[exhibits],
    )
    with serve(tree) as client:
        yield client


# -- create --------------------------------------------------------------------------------


def test_create_returns_201_with_the_get_schema(client: TestClient) -> None:
    response = client.post(
        "/companies", json={"name": "Acme", "costcenters": [{"code": "A", "name": "Alpha"}]}, headers=auth()
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == set(demo_schemas.Company.model_fields)
    assert body["tenant_id"] == TENANT
    assert body["status"] == "active"
    assert body["departments"] == []
    assert body["costcenters"] == [{"id": body["costcenters"][0]["id"], "code": "A", "name": "Alpha"}]


def test_create_writes_the_nested_list_with_its_parent(client: TestClient) -> None:
    body = {"name": "Acme", "costcenters": [{"code": "A", "name": "Alpha"}, {"code": "B", "name": "Beta"}]}

    response = client.post("/companies", json=body, headers=auth())

    company = Company.objects.get(pk=response.json()["id"])
    assert [(code, name) for _, code, name in costcenters_of(company)] == [("A", "Alpha"), ("B", "Beta")]


def test_create_of_a_child_takes_the_parent_from_the_url_not_the_body(client: TestClient) -> None:
    company, decoy = make_company(), make_company("Decoy")
    body = {"name": "R&D", "company_id": str(decoy.pk), "teams": [{"name": "Core", "size": 4}]}

    refused = client.post(f"/companies/{company.pk}/departments", json=body, headers=auth())
    del body["company_id"]
    response = client.post(f"/companies/{company.pk}/departments", json=body, headers=auth())

    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["body", "company_id"]]
    assert response.status_code == 201
    department = CompanyDepartment.objects.get(pk=response.json()["id"])
    assert department.company_id == company.pk
    assert list(department.teams.values_list("name", "size")) == [("Core", 4)]


def test_create_writes_a_string_primary_key_sent_in_the_body(shared_connection: None) -> None:
    tree = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfOut, create=ShelfWrite)

    with serve(tree) as client:
        response = client.post("/shelves", json={"code": "A1", "name": "Atlas"})

    assert response.status_code == 201
    assert response.json() == {"code": "A1", "name": "Atlas"}
    assert list(Shelf.objects.values_list("code", "name")) == [("A1", "Atlas")]


# -- create: one transaction ---------------------------------------------------------------


def test_create_with_a_duplicate_in_the_last_nested_item_leaves_nothing(client: TestClient) -> None:
    before = counts()
    body = {"name": "Acme", "costcenters": [{"code": c, "name": c} for c in ("A", "B", "A")]}

    response = client.post("/companies", json=body, headers=auth())

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "integrity:company_costcenter_code_unique"
    assert counts() == before


def test_create_without_the_duplicate_writes_everything(client: TestClient) -> None:
    before = counts()
    body = {"name": "Acme", "costcenters": [{"code": c, "name": c} for c in ("A", "B", "C")]}

    assert client.post("/companies", json=body, headers=auth()).status_code == 201
    assert counts() == {**before, "companies": before["companies"] + 1, "costcenters": before["costcenters"] + 3}


def post_department_with_teams(client: TestClient, company: Company, last_size: int) -> Any:
    body = {
        "company_id": str(company.pk),
        "name": "R&D",
        "teams": [{"name": "One", "size": 1}, {"name": "Two", "size": 2}, {"name": "Three", "size": last_size}],
    }
    return client.post("/departments", json=body)


def department_tree() -> DjangoRouterSchema:
    return DjangoRouterSchema(
        name="departments", model=CompanyDepartment, get=DepartmentOut, create=DepartmentWithLooseTeams
    )


def test_create_with_a_last_nested_item_django_refuses_leaves_nothing(shared_connection: None) -> None:
    company = make_company()
    before = counts()

    with serve(department_tree()) as client:
        response = post_department_with_teams(client, company, last_size=-1)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "teams", 2, "size"]
    assert counts() == before


def test_create_with_a_valid_last_nested_item_writes_department_and_teams(shared_connection: None) -> None:
    company = make_company()
    before = counts()

    with serve(department_tree()) as client:
        response = post_department_with_teams(client, company, last_size=3)

    assert response.status_code == 201
    assert sorted(team["size"] for team in response.json()["teams"]) == [1, 2, 3]  # ordered by (UUID) pk
    assert counts() == {**before, "departments": before["departments"] + 1, "teams": before["teams"] + 3}


# -- PATCH -------------------------------------------------------------------------------------


def employee_url(employee: Employee) -> str:
    return f"/companies/{employee.company_id}/employees/{employee.pk}"


def test_patch_changes_only_the_fields_sent(client: TestClient) -> None:
    employee = make_employee(make_company())

    response = client.patch(employee_url(employee), json={"type": "ADMIN"}, headers=auth())

    assert response.status_code == 200
    employee_after = Employee.objects.get(pk=employee.pk)
    assert employee_after.type == "ADMIN"
    assert employee_after.department_id == employee.department_id
    assert employee_after.salary == Decimal("1000.00")
    assert employee_after.hired_at == datetime.date(2020, 1, 1)


def test_patch_with_an_explicit_null_sets_a_nullable_foreign_key_to_null(client: TestClient) -> None:
    employee = make_employee(make_company())

    response = client.patch(employee_url(employee), json={"department_id": None}, headers=auth())

    assert response.status_code == 200
    assert response.json()["department_id"] is None
    employee_after = Employee.objects.get(pk=employee.pk)
    assert employee_after.department_id is None
    assert employee_after.salary == Decimal("1000.00")


def test_patch_with_an_explicit_null_sets_a_nullable_decimal_to_null(client: TestClient) -> None:
    employee = make_employee(make_company())

    response = client.patch(employee_url(employee), json={"salary": None}, headers=auth())

    assert response.status_code == 200
    assert response.json()["salary"] is None
    assert Employee.objects.get(pk=employee.pk).salary is None


@pytest.mark.parametrize("field", ["name", "status"])
def test_patch_with_null_for_a_non_nullable_field_is_422(client: TestClient, field: str) -> None:
    company = make_company()

    response = client.patch(f"/companies/{company.pk}", json={field: None}, headers=auth())

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    company.refresh_from_db()
    assert (company.name, company.status) == ("Acme", "active")


def test_patch_with_null_for_a_not_null_column_the_schema_allows_is_422(shared_connection: None) -> None:
    member = Member.objects.create(name="Ann")
    tree = DjangoRouterSchema(name="members", model=Member, get=MemberOut, update=LaxMemberWrite)

    with serve(tree) as client:
        refused = client.patch(f"/members/{member.pk}", json={"name": None})
        accepted = client.patch(f"/members/{member.pk}", json={"name": "Anna"})

    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "name"]
    assert accepted.json()["name"] == "Anna"
    assert Member.objects.get(pk=member.pk).name == "Anna"


def test_patch_without_the_nested_list_leaves_it_alone(client: TestClient) -> None:
    company = make_company(costcenters=("A", "B"))
    before = costcenters_of(company)

    response = client.patch(f"/companies/{company.pk}", json={"name": "Renamed"}, headers=auth())

    assert response.json()["name"] == "Renamed"
    assert costcenters_of(company) == before


# -- PUT ----------------------------------------------------------------------------------------


def test_put_gives_omitted_fields_the_schema_default(client: TestClient) -> None:
    employee = make_employee(make_company())

    response = client.put(employee_url(employee), json={"type": "ADMIN", "hired_at": "2021-02-03"}, headers=auth())

    assert response.status_code == 200
    employee_after = Employee.objects.get(pk=employee.pk)
    assert (employee_after.type, employee_after.hired_at) == ("ADMIN", datetime.date(2021, 2, 3))
    assert employee_after.department_id is None
    assert employee_after.salary is None


def test_patch_with_the_same_body_keeps_the_omitted_fields(client: TestClient) -> None:
    employee = make_employee(make_company())

    client.patch(employee_url(employee), json={"type": "ADMIN", "hired_at": "2021-02-03"}, headers=auth())

    employee_after = Employee.objects.get(pk=employee.pk)
    assert employee_after.department_id == employee.department_id
    assert employee_after.salary == Decimal("1000.00")


def test_put_resets_an_omitted_field_with_a_non_null_default(client: TestClient) -> None:
    company = make_company()
    department = CompanyDepartment.objects.create(company=company, name="R&D")
    team = CompanyDepartmentTeam.objects.create(department=department, name="Core", size=7)
    url = f"/companies/{company.pk}/departments/{department.pk}/teams/{team.pk}"

    response = client.put(url, json={"name": "Kernel"}, headers=auth())

    assert response.json() == {"id": str(team.pk), "name": "Kernel", "size": 0}


def test_put_without_a_required_field_is_422(client: TestClient) -> None:
    company = make_company()

    response = client.put(f"/companies/{company.pk}", json={"status": "inactive"}, headers=auth())

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    company.refresh_from_db()
    assert company.status == "active"


def test_put_without_the_nested_list_leaves_it_alone(client: TestClient) -> None:
    company = make_company(costcenters=("A", "B"))
    before = costcenters_of(company)

    response = client.put(f"/companies/{company.pk}", json={"name": "New", "status": "inactive"}, headers=auth())

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["status"]) == ("New", "inactive")
    assert costcenters_of(company) == before


# -- nested-list sync ---------------------------------------------------------------------------


def put_costcenters(client: TestClient, company: Company, items: list[dict[str, Any]]) -> Any:
    body = {"name": company.name, "status": "active", "costcenters": items}
    return client.put(f"/companies/{company.pk}", json=body, headers=auth())


def test_sync_updates_an_item_sent_with_its_id(client: TestClient) -> None:
    company = make_company(costcenters=("A",))
    ((pk, _, _),) = costcenters_of(company)

    response = put_costcenters(client, company, [{"id": pk, "code": "A2", "name": "Renamed"}])

    assert response.status_code == 200
    assert costcenters_of(company) == [(pk, "A2", "Renamed")]


def test_sync_matches_an_item_without_id_by_its_matching_field(client: TestClient) -> None:
    company = make_company(costcenters=("A", "B"))
    (_, (pk_b, _, _)) = costcenters_of(company)

    put_costcenters(client, company, [{"code": "B", "name": "Matched"}])

    assert costcenters_of(company) == [(pk_b, "B", "Matched")]


def test_sync_creates_an_item_without_id_that_matches_nothing(client: TestClient) -> None:
    company = make_company(costcenters=("A",))
    ((pk_a, _, _),) = costcenters_of(company)

    put_costcenters(client, company, [{"id": pk_a, "code": "A", "name": "Cost A"}, {"code": "N", "name": "New"}])

    after = costcenters_of(company)
    assert after[0] == (pk_a, "A", "Cost A")
    assert after[1][1:] == ("N", "New")
    assert after[1][0] != pk_a


def test_sync_deletes_rows_missing_from_the_list(client: TestClient) -> None:
    company = make_company(costcenters=("A", "B", "C"))
    (_, (pk_b, _, _), _) = costcenters_of(company)

    put_costcenters(client, company, [{"id": pk_b, "code": "B", "name": "Cost B"}])

    assert costcenters_of(company) == [(pk_b, "B", "Cost B")]


def test_sync_with_an_empty_list_deletes_them_all(client: TestClient) -> None:
    company = make_company(costcenters=("A", "B"))
    other = make_company("Other", costcenters=("A",))

    response = put_costcenters(client, company, [])

    assert response.json()["costcenters"] == []
    assert costcenters_of(company) == []
    assert len(costcenters_of(other)) == 1


def test_sync_deletes_first_so_an_item_may_take_the_code_of_a_removed_row(client: TestClient) -> None:
    company = make_company(costcenters=("A", "B"))
    (_, (pk_b, _, _)) = costcenters_of(company)

    # Row "A" is not listed (deleted); row B takes its code in the same request.
    response = put_costcenters(client, company, [{"id": pk_b, "code": "A", "name": "Was B"}])

    assert response.status_code == 200
    assert costcenters_of(company) == [(pk_b, "A", "Was B")]


def test_sync_updates_a_team_by_its_uuid(client: TestClient) -> None:
    company = make_company()
    department = CompanyDepartment.objects.create(company=company, name="R&D", budget=Decimal("5.00"))
    kept = CompanyDepartmentTeam.objects.create(department=department, name="Core", size=3)
    CompanyDepartmentTeam.objects.create(department=department, name="Gone", size=1)
    body = {"name": "R&D", "budget": "5.00", "teams": [{"id": str(kept.pk), "name": "Kernel", "size": 4}]}

    response = client.put(f"/companies/{company.pk}/departments/{department.pk}", json=body, headers=auth())

    assert response.json()["teams"] == [{"id": str(kept.pk), "name": "Kernel", "size": 4}]
    assert list(department.teams.values_list("pk", "name", "size")) == [(kept.pk, "Kernel", 4)]


def test_patch_syncs_a_nested_list_that_is_sent(client: TestClient) -> None:
    company = make_company(costcenters=("A", "B"))
    ((pk_a, _, _), _) = costcenters_of(company)
    items = [{"id": pk_a, "code": "A", "name": "Alpha"}, {"code": "C", "name": "Gamma"}]

    response = client.patch(f"/companies/{company.pk}", json={"costcenters": items}, headers=auth())

    assert response.status_code == 200
    assert [(code, name) for _, code, name in costcenters_of(company)] == [("A", "Alpha"), ("C", "Gamma")]
    assert costcenters_of(company)[0][0] == pk_a


def test_sync_refuses_an_id_of_another_companys_costcenter_and_changes_nothing(client: TestClient) -> None:
    company = make_company(costcenters=("A",))
    other = make_company("Other", costcenters=("X",))
    ((own_pk, _, _),) = costcenters_of(company)
    ((foreign_pk, _, _),) = costcenters_of(other)
    before = (costcenters_of(company), costcenters_of(other))
    items = [{"id": own_pk, "code": "A", "name": "Renamed"}, {"id": foreign_pk, "code": "X", "name": "Stolen"}]

    response = client.put(
        f"/companies/{company.pk}", json={"name": "Changed", "status": "active", "costcenters": items}, headers=auth()
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "costcenters", 1, "id"]
    assert Company.objects.get(pk=company.pk).name == "Acme"
    assert (costcenters_of(company), costcenters_of(other)) == before


def test_sync_accepts_the_same_body_with_only_own_ids(client: TestClient) -> None:
    company = make_company(costcenters=("A",))
    ((own_pk, _, _),) = costcenters_of(company)
    items = [{"id": own_pk, "code": "A", "name": "Renamed"}]

    response = client.put(
        f"/companies/{company.pk}", json={"name": "Changed", "status": "active", "costcenters": items}, headers=auth()
    )

    assert response.status_code == 200
    assert Company.objects.get(pk=company.pk).name == "Changed"
    assert costcenters_of(company) == [(own_pk, "A", "Renamed")]


def test_sync_refuses_the_same_id_twice(client: TestClient) -> None:
    company = make_company(costcenters=("A",))
    ((pk, _, _),) = costcenters_of(company)
    items = [{"id": pk, "code": "A", "name": "One"}, {"id": pk, "code": "B", "name": "Two"}]

    response = put_costcenters(client, company, items)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "costcenters", 1, "id"]
    assert costcenters_of(company) == [(pk, "A", "Cost A")]


# -- orm_method ------------------------------------------------------------------------------------


def sha256(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def test_orm_method_writes_through_the_model_method(members: TestClient) -> None:
    response = members.post("/members", json={"name": "Ann", "password": "s3cret"})

    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], "name": "Ann", "has_password": True}
    assert Member.objects.get(pk=response.json()["id"]).password_hash == sha256("s3cret")


def test_orm_method_given_as_a_function_writes_through_it(shared_connection: None) -> None:
    tree = DjangoRouterSchema(name="members", model=Member, get=MemberOut, create=MemberWriteThroughFunction)

    with serve(tree) as client:
        response = client.post("/members", json={"name": "Ann", "password": "s3cret"})

    assert response.json()["has_password"] is True
    assert Member.objects.get().password_hash == sha256("s3cret")


def test_orm_method_field_left_out_of_a_patch_is_not_called(members: TestClient) -> None:
    member = Member.objects.create(name="Ann", password_hash=sha256("s3cret"))

    response = members.patch(f"/members/{member.pk}", json={"name": "Anna"})

    assert response.json()["name"] == "Anna"
    assert Member.objects.get(pk=member.pk).password_hash == sha256("s3cret")


def test_orm_method_field_sent_in_a_patch_is_written(members: TestClient) -> None:
    member = Member.objects.create(name="Ann", password_hash=sha256("s3cret"))

    members.patch(f"/members/{member.pk}", json={"password": "n3w"})

    member.refresh_from_db()
    assert (member.name, member.password_hash) == ("Ann", sha256("n3w"))


def test_orm_method_reads_through_the_model_method(shared_connection: None) -> None:
    shelf = Shelf.objects.create(code="S1", tenant_id=TENANT, name="Novels")
    book = Book.objects.create(shelf=shelf, title="Dune", isbn="1")

    with serve(DjangoRouterSchema(name="books", model=Book, get=BookOut)) as client:
        response = client.get(f"/books/{book.pk}")

    assert response.json() == {"id": book.pk, "title": "Dune", "title_upper": "DUNE"}


# -- unknown body fields -----------------------------------------------------------------------------


def test_schemas_keep_pydantics_default_of_ignoring_unknown_fields() -> None:
    assert BaseModel.model_config.get("extra") is None  # pydantic's default: "ignore"
    assert demo_schemas.CompanyCreate.model_config.get("extra") is None


def test_unknown_body_fields_are_refused_by_default_each_named(client: TestClient) -> None:
    sent_id = str(uuid.uuid4())
    body = {
        "name": "Acme",
        "id": sent_id,
        "tenant_id": OTHER_TENANT,
        "nonsense": 1,
        "created_at": "2000-01-01T00:00:00Z",
        "costcenters": [{"code": "A", "name": "Alpha", "budget": 5}],
    }

    refused = client.post("/companies", json=body, headers=auth())

    assert refused.status_code == 422
    assert {tuple(e["loc"]) for e in refused.json()["detail"]} == {
        ("body", "id"),
        ("body", "tenant_id"),
        ("body", "nonsense"),
        ("body", "created_at"),
        ("body", "costcenters", 0, "budget"),
    }
    assert {e["type"] for e in refused.json()["detail"]} == {"extra_forbidden"}
    assert not Company.objects.exists()


def test_a_schema_that_chooses_extra_ignore_keeps_dropping_unknown_fields(shared_connection: None) -> None:
    class IgnoringMemberWrite(MemberWrite):
        model_config = ConfigDict(extra="ignore")

    tree = DjangoRouterSchema(name="members", model=Member, get=MemberOut, create=IgnoringMemberWrite)

    with serve(tree) as client:
        accepted = client.post("/members", json={"name": "Ann", "nonsense": 1})

    assert accepted.status_code == 201
    assert Member.objects.get().name == "Ann"


def test_unknown_body_fields_are_refused_when_the_schema_forbids_extras(shared_connection: None) -> None:
    tree = DjangoRouterSchema(name="members", model=Member, get=MemberOut, create=StrictMemberWrite)

    with serve(tree) as client:
        refused = client.post("/members", json={"name": "Ann", "nonsense": 1})
        accepted = client.post("/members", json={"name": "Ann"})

    assert refused.status_code == 422
    assert refused.json()["detail"][0]["type"] == "extra_forbidden"
    assert refused.json()["detail"][0]["loc"] == ["body", "nonsense"]
    assert accepted.status_code == 201
    assert Member.objects.count() == 1


# -- Decimal ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["12345678.90", "12345678.9", 12345678.9])
def test_decimal_comes_back_as_a_string_with_exact_precision(client: TestClient, sent: Any) -> None:
    company = make_company()

    created = client.post(f"/companies/{company.pk}/departments", json={"name": "R&D", "budget": sent}, headers=auth())
    read = client.get(f"/companies/{company.pk}/departments/{created.json()['id']}", headers=auth())

    assert created.json()["budget"] == "12345678.90"
    assert read.json()["budget"] == "12345678.90"
    assert CompanyDepartment.objects.get(pk=created.json()["id"]).budget == Decimal("12345678.90")


def test_largest_decimal_keeps_every_digit(client: TestClient) -> None:
    company = make_company()

    response = client.post(
        f"/companies/{company.pk}/departments", json={"name": "R&D", "budget": "999999999999.99"}, headers=auth()
    )

    assert response.json()["budget"] == "999999999999.99"


# -- foreign keys to models that are not tree nodes ---------------------------------------------------


def test_foreign_key_to_another_tenants_row_of_a_non_node_model_is_409(rooms: TestClient) -> None:
    room = Room.objects.create(tenant_id=TENANT, name="Hall")
    foreign = Genre.objects.create(tenant_id=OTHER_TENANT, name="Secret")
    headers = bearer(TENANT, "lib.rooms.read", "lib.rooms.write")

    response = rooms.post(f"/rooms/{room.pk}/exhibits", json={"title": "Vase", "genre_id": foreign.pk}, headers=headers)

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "integrity:testapp_exhibit_genre_id_fk"
    assert not Exhibit.objects.exists()


def test_foreign_key_to_an_own_row_of_a_non_node_model_is_written(rooms: TestClient) -> None:
    room = Room.objects.create(tenant_id=TENANT, name="Hall")
    own = Genre.objects.create(tenant_id=TENANT, name="Clay")
    headers = bearer(TENANT, "lib.rooms.read", "lib.rooms.write")

    response = rooms.post(f"/rooms/{room.pk}/exhibits", json={"title": "Vase", "genre_id": own.pk}, headers=headers)

    assert response.status_code == 201
    assert response.json()["genre"] == {"name": "Clay"}
    assert Exhibit.objects.get().room_id == room.pk


def test_create_under_a_parent_with_two_foreign_keys_sets_only_the_chosen_one(rooms: TestClient) -> None:
    room = Room.objects.create(tenant_id=TENANT, name="Hall")
    headers = bearer(TENANT, "lib.rooms.read", "lib.rooms.write")

    response = rooms.post(f"/rooms/{room.pk}/exhibits", json={"title": "Vase"}, headers=headers)

    exhibit = Exhibit.objects.get(pk=response.json()["id"])
    assert (exhibit.room_id, exhibit.origin_room_id, exhibit.genre_id) == (room.pk, None, None)

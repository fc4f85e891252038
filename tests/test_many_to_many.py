"""Many-to-many: the demo's employees <-> skills (a custom ``through`` model) and a plain
playlist <-> genres (Django's own through table, a target that is no node of the tree).

Set semantics on every write; every target checked through its node's filter and the
references rule (another company's or another tenant's skill answers exactly as a
random id); atomic with the rest of the write; no N+1 on read (counts stated).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema
from testproject.api import employees
from testproject.business.models import Company, Employee, EmployeeSkill, Skill
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.testapp.models import Genre, Playlist


@pytest.fixture
def acme(db: None) -> dict[str, Any]:
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    skills = [Skill.objects.create(company=company, name=name) for name in ("Python", "SQL", "Django")]
    return {"company": company, "skills": sorted(skills, key=lambda s: s.pk)}


def ids(*skills: Skill) -> list[str]:
    return [str(skill.pk) for skill in sorted(skills, key=lambda s: s.pk)]


def hire(client: TestClient, company: Company, **fields: Any) -> Any:
    body = {"user_id": f"u-{uuid.uuid4().hex[:6]}", "hired_at": "2026-01-02", **fields}
    return client.post(f"/companies/{company.pk}/employees", json=body, headers=auth())


def test_create_read_and_set_semantics(client: TestClient, acme: dict[str, Any]) -> None:
    company, (python, sql, django) = acme["company"], acme["skills"]
    created = hire(client, company, skill_ids=[str(python.pk), str(sql.pk)])
    assert created.status_code == 201, created.text
    assert created.json()["skill_ids"] == ids(python, sql)
    path = f"/companies/{company.pk}/employees/{created.json()['id']}"
    assert client.get(path, headers=auth()).json()["skill_ids"] == ids(python, sql)

    # sent: the new set
    patched = client.patch(path, json={"skill_ids": [str(django.pk), str(sql.pk)]}, headers=auth())
    assert patched.json()["skill_ids"] == ids(sql, django)
    # left out of a PATCH or a PUT: untouched
    assert client.patch(path, json={"type": "ADMIN"}, headers=auth()).json()["skill_ids"] == ids(sql, django)
    put = client.put(path, json={"type": "MEMBER", "hired_at": "2026-01-02"}, headers=auth())
    assert put.json()["skill_ids"] == ids(sql, django)
    # repeats are one member; an empty list clears the set
    again = client.put(
        path, json={"type": "MEMBER", "hired_at": "2026-01-02", "skill_ids": [str(sql.pk)] * 3}, headers=auth()
    )
    assert again.json()["skill_ids"] == ids(sql)
    assert client.patch(path, json={"skill_ids": []}, headers=auth()).json()["skill_ids"] == []
    assert not EmployeeSkill.objects.exists()


def test_the_custom_through_model_gets_its_defaults(client: TestClient, acme: dict[str, Any]) -> None:
    hire(client, acme["company"], skill_ids=[str(acme["skills"][0].pk)])
    link = EmployeeSkill.objects.get()
    assert link.recorded_at is not None and link.skill == acme["skills"][0]


@pytest.mark.parametrize("whose", ["another company's", "another tenant's", "a random id"])
def test_a_skill_the_caller_may_not_reference_reads_as_a_missing_one(
    client: TestClient, acme: dict[str, Any], whose: str
) -> None:
    company = acme["company"]
    if whose == "another company's":
        target = Skill.objects.create(company=Company.objects.create(tenant_id=TENANT, name="Beta"), name="Go").pk
    elif whose == "another tenant's":
        target = Skill.objects.create(
            company=Company.objects.create(tenant_id=OTHER_TENANT, name="Rival"), name="Go"
        ).pk
    else:
        target = uuid.uuid4()
    good = str(acme["skills"][0].pk)
    refused = hire(client, company, skill_ids=[good, str(target)])
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": {
            "type": "conflict",
            "code": "integrity:business_employeeskill_skill_id_fk",
            "message": "skill_ids.1 refers to a Skill that does not exist.",
            "detail": {"field": "skill_ids.1"},
        }
    }
    assert not Employee.objects.exists()  # the whole create rolled back
    # the accepted case next to it
    assert hire(client, company, skill_ids=[good]).status_code == 201


def test_a_refused_skill_rolls_back_the_rest_of_the_write(client: TestClient, acme: dict[str, Any]) -> None:
    company, (python, *_) = acme["company"], acme["skills"]
    employee = hire(client, company, skill_ids=[str(python.pk)]).json()
    path = f"/companies/{company.pk}/employees/{employee['id']}"
    refused = client.patch(path, json={"type": "ADMIN", "skill_ids": [str(uuid.uuid4())]}, headers=auth())
    assert refused.status_code == 409
    after = client.get(path, headers=auth()).json()
    assert (after["type"], after["skill_ids"]) == ("MEMBER", ids(python))


def test_a_dry_run_sets_nothing(client: TestClient, acme: dict[str, Any]) -> None:
    company, (python, sql, _) = acme["company"], acme["skills"]
    employee = hire(client, company, skill_ids=[str(python.pk)]).json()
    path = f"/companies/{company.pk}/employees/{employee['id']}"
    tried = client.patch(f"{path}?dry_run=true", json={"skill_ids": [str(sql.pk)]}, headers=auth())
    assert tried.json()["skill_ids"] == ids(sql)
    assert client.get(path, headers=auth()).json()["skill_ids"] == ids(python)


def test_malformed_ids_are_a_422(client: TestClient, acme: dict[str, Any]) -> None:
    response = hire(client, acme["company"], skill_ids=["not-a-uuid"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "skill_ids", 0]


def test_no_n_plus_one_and_the_plan_shows_the_prefetch(
    client: TestClient, acme: dict[str, Any], django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    company, skills = acme["company"], acme["skills"]
    assert "prefetch: skills (Skill" in str(employees.query_plan)
    for count in (2, 12):
        Employee.objects.all().delete()
        for index in range(count):
            employee = Employee.objects.create(company=company, user_id=f"e{index}", hired_at="2026-01-01")
            employee.skills.set(skills[: index % 4])
        # the employees, their skill ids from the through table: 2 queries for 2 or 12 employees
        with django_assert_num_queries(2):
            page = client.get(f"/companies/{company.pk}/employees", headers=auth()).json()["items"]
        assert sorted(len(item["skill_ids"]) for item in page) == sorted(index % 4 for index in range(count))
    # not selected, not read
    with django_assert_num_queries(1):
        client.get(f"/companies/{company.pk}/employees?fields=user_id", headers=auth())


# -- a plain many-to-many, nested schemas, a target that is no node ------------------------


class GenreRef(BaseModel):
    id: int


class GenreOut(BaseModel):
    id: int
    name: str


class PlaylistOut(BaseModel):
    id: int
    name: str
    genres: list[GenreOut]
    genre_ids: list[int] = Field(orm_field="genres")


class PlaylistWrite(BaseModel):
    name: str
    genres: list[GenreRef] = []


@pytest.fixture
def playlists(shared_connection: None) -> Iterator[TestClient]:
    tree = DjangoRouterSchema(
        name="playlists", model=Playlist, get=PlaylistOut, create=PlaylistWrite, update=PlaylistWrite
    )
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    with TestClient(app) as client:
        yield client


def test_nested_schemas_select_rows_by_id(playlists: TestClient, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    jazz, rock = Genre.objects.create(name="Jazz"), Genre.objects.create(name="Rock")
    created = playlists.post("/playlists", json={"name": "Mix", "genres": [{"id": rock.pk}, {"id": jazz.pk}]})
    assert created.status_code == 201, created.text
    assert created.json()["genres"] == [{"id": jazz.pk, "name": "Jazz"}, {"id": rock.pk, "name": "Rock"}]
    assert created.json()["genre_ids"] == [jazz.pk, rock.pk]
    path = f"/playlists/{created.json()['id']}"
    assert playlists.patch(path, json={"genres": [{"id": rock.pk}]}).json()["genre_ids"] == [rock.pk]
    missing = playlists.patch(path, json={"genres": [{}]})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "genres", 0, "id"]
    assert playlists.patch(path, json={"genres": [{"id": 10**9}]}).status_code == 409
    # instances (nested schemas): 1 query for the playlists, 1 for their genres (genres and genre_ids share it)
    for count in (1, 8):
        for index in range(count):
            Playlist.objects.create(name=f"P{index}").genres.set([jazz, rock])
        with django_assert_num_queries(2):
            assert playlists.get("/playlists").status_code == 200


class GenreWithName(BaseModel):
    id: int | None = None
    name: str


class PlaylistWithGenreNames(BaseModel):
    name: str
    genres: list[GenreWithName] = []


def test_a_many_to_many_item_schema_with_more_than_the_id_is_refused_at_definition_time() -> None:
    tree = DjangoRouterSchema(name="playlists", model=Playlist, get=PlaylistOut, create=PlaylistWithGenreNames)
    with pytest.raises(SchemaDefinitionError, match=r"must hold Genre\.id and nothing else \(name would be ignored\)"):
        tree.router  # noqa: B018


def test_a_list_of_ids_of_a_one_to_many_relation_is_refused_at_definition_time() -> None:
    class CompanyWithIds(BaseModel):
        employee_ids: list[uuid.UUID] = Field(orm_field="employees")

    with pytest.raises(SchemaDefinitionError, match="relation to many rows"):
        DjangoRouterSchema(name="companies", model=Company, get=CompanyWithIds).router  # noqa: B018


def test_a_changed_set_is_one_update_event_of_the_row(client: TestClient, acme: dict[str, Any]) -> None:
    from djfapi.live.models import ChangeEvent

    company, (python, sql, _) = acme["company"], acme["skills"]
    employee = hire(client, company, skill_ids=[str(python.pk)]).json()
    path = f"/companies/{company.pk}/employees/{employee['id']}"
    events = list(ChangeEvent.objects.filter(object_id=employee["id"]).values_list("action", flat=True))
    assert events == ["INSERT"]  # created with its skills: one event
    client.patch(path, json={"skill_ids": [str(sql.pk)]}, headers=auth())  # removes one, adds one
    client.patch(path, json={"type": "ADMIN", "skill_ids": []}, headers=auth())  # a column and the set
    client.patch(path, json={"skill_ids": []}, headers=auth())  # nothing changes
    events = list(ChangeEvent.objects.filter(object_id=employee["id"]).order_by("id").values_list("action", flat=True))
    assert events == ["INSERT", "UPDATE", "UPDATE"]


class PlaylistIds(BaseModel):
    name: str
    genre_ids: list[int] = Field(orm_field="genres", max_items=2)


class PlaylistIdsThroughInstances(PlaylistIds):
    shout: str = Field(orm_method=lambda playlist: playlist.name.upper())


# values: the playlists, their links up to 3 x 2 (+1) rows, and, as there are more, the first 2 of
# each through a window function; instances: the playlists, their genres through a capped prefetch
@pytest.mark.parametrize(
    ("schema", "queries"), [(PlaylistIds, 3), (PlaylistIdsThroughInstances, 2)], ids=["values", "instances"]
)
def test_a_list_of_ids_is_capped_alike_by_both_readers(
    shared_connection: None, schema: type[BaseModel], queries: int, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    genres = [Genre.objects.create(name=f"G{index}") for index in range(4)]
    for index in range(3):
        Playlist.objects.create(name=f"P{index}").genres.set(genres[index:])
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(DjangoRouterSchema(name="playlists", model=Playlist, get=schema).router)
    with TestClient(app) as client, django_assert_num_queries(queries):
        items = client.get("/playlists").json()["items"]
    # each playlist's first two genres in the genres' order (their key): the cap of Field(max_items=2)
    assert [item["genre_ids"] for item in items] == [[g.pk for g in genres[index:][:2]] for index in range(3)]

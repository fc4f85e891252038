"""``?dry_run=true`` on POST, PATCH and PUT: the whole write runs — validation, hooks,
constraints, nested rows, the read-back — and is rolled back. The answer is the write's,
nothing stays, no change event is published. Next to each dry run: the same write for
real (so the test could fail), and the refusals (a misspelled parameter, a 4xx).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.live.models import ChangeEvent
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.hooks import WriteEvent
from testproject.business.models import Company, CompanyCostcenter, Employee
from tests.helpers import TENANT, USER, auth
from tests.testapp.models import Shelf


def make_company(**fields: Any) -> Company:
    company = Company.objects.create(tenant_id=TENANT, name="Acme", **fields)
    CompanyCostcenter.objects.create(company=company, code="CC1", name="Main")
    return company


def test_a_dry_run_create_answers_201_and_stores_nothing(client: TestClient) -> None:
    body = {"name": "Tried", "costcenters": [{"code": "T1", "name": "Trial"}]}
    events = ChangeEvent.objects.count()
    tried = client.post("/companies?dry_run=true", json=body, headers=auth())
    assert tried.status_code == 201, tried.text
    assert tried.json()["name"] == "Tried"
    assert [c["code"] for c in tried.json()["costcenters"]] == ["T1"]
    assert not Company.objects.filter(name="Tried").exists()
    assert not CompanyCostcenter.objects.filter(code="T1").exists()
    assert ChangeEvent.objects.count() == events  # no change published
    # the same write for real: stored and published, with the answer the dry run gave
    done = client.post("/companies", json=body, headers=auth())
    assert done.status_code == 201
    assert {k: v for k, v in done.json().items() if k not in ("id", "created_at", "costcenters")} == {
        k: v for k, v in tried.json().items() if k not in ("id", "created_at", "costcenters")
    }
    assert Company.objects.filter(name="Tried").exists()
    assert ChangeEvent.objects.count() > events


def test_a_dry_run_answers_the_4xx_the_write_would(client: TestClient) -> None:
    duplicate = {"name": "Twice", "costcenters": [{"code": "X", "name": "a"}, {"code": "X", "name": "b"}]}
    conflict = client.post("/companies?dry_run=true", json=duplicate, headers=auth())
    assert conflict.status_code == 409  # the database constraint ran
    assert conflict.json()["detail"]["code"] == "integrity:company_costcenter_code_unique"
    invalid = client.post("/companies?dry_run=true", json={"name": ""}, headers=auth())
    assert invalid.status_code == 422
    assert not Company.objects.exists()


def test_a_dry_run_patch_and_put_answer_the_change_and_keep_the_row(client: TestClient) -> None:
    company = make_company()
    path = f"/companies/{company.pk}"
    patched = client.patch(f"{path}?dry_run=true", json={"name": "Renamed"}, headers=auth())
    assert patched.status_code == 200 and patched.json()["name"] == "Renamed"
    replaced = client.put(
        f"{path}?dry_run=true", json={"name": "Put", "status": "inactive", "costcenters": []}, headers=auth()
    )
    assert replaced.status_code == 200
    assert replaced.json()["costcenters"] == [] and replaced.json()["status"] == "inactive"
    company.refresh_from_db()
    assert (company.name, company.status) == ("Acme", "active")
    assert CompanyCostcenter.objects.filter(company=company).count() == 1
    assert client.get(path, headers=auth()).json()["name"] == "Acme"


def test_a_dry_run_runs_the_hooks(client: TestClient) -> None:
    company = make_company()
    owner = Employee.objects.create(company=company, user_id=USER, type="OWNER", hired_at="2026-01-01")
    path = f"/companies/{company.pk}/employees/{owner.pk}?dry_run=true"
    demoted = client.patch(path, json={"type": "MEMBER"}, headers=auth())
    assert demoted.status_code == 422  # the demo's keep-an-owner hook refused it
    assert demoted.json()["detail"][0]["loc"] == ["body", "type"]


def test_a_dry_run_of_a_bulk_create_is_all_or_nothing_too(client: TestClient) -> None:
    company = make_company()
    hires = [{"user_id": f"u{i}", "hired_at": "2026-02-01"} for i in range(3)]
    tried = client.post(f"/companies/{company.pk}/employees?dry_run=true", json=hires, headers=auth())
    assert tried.status_code == 201 and len(tried.json()["items"]) == 3
    assert not Employee.objects.exists()


@pytest.mark.parametrize("query", ["dryrun=true", "dry_run=true&dry=1", "fields=id"])
def test_an_unknown_query_parameter_on_a_write_is_a_422_not_a_commit(client: TestClient, query: str) -> None:
    response = client.post(f"/companies?{query}", json={"name": "Typo"}, headers=auth())
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"
    assert not Company.objects.filter(name="Typo").exists()
    company = make_company()
    refused = client.patch(f"/companies/{company.pk}?{query}", json={"name": "Typo"}, headers=auth())
    assert refused.status_code == 422
    assert Company.objects.get(pk=company.pk).name == "Acme"


def test_dry_run_false_writes(client: TestClient) -> None:
    assert client.post("/companies?dry_run=false", json={"name": "Real"}, headers=auth()).status_code == 201
    assert Company.objects.filter(name="Real").exists()
    assert client.post("/companies?dry_run=maybe", json={"name": "Real"}, headers=auth()).status_code == 422


def test_dry_run_is_in_openapi_on_every_write(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for path, method in [
        ("/companies", "post"),
        ("/companies/{company_id}", "patch"),
        ("/companies/{company_id}", "put"),
    ]:
        assert "dry_run" in {p["name"] for p in paths[path][method]["parameters"]}
    assert "dry_run" not in {
        p["name"] for p in paths["/companies/{company_id}"].get("delete", {}).get("parameters", [])
    }


class ShelfIn(BaseModel):
    code: str = Field(client_key=True)
    name: str


class ShelfOut(BaseModel):
    code: str
    name: str


@pytest.fixture
def shelves(transactional_db: None) -> Iterator[tuple[TestClient, list[WriteEvent]]]:
    """Its own connections and real commits: the dry run's rollback is the outermost transaction's."""
    seen: list[WriteEvent] = []
    tree = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfOut, create=ShelfIn, update=ShelfIn)
    tree.hook("after_create")(seen.append)
    tree.hook("after_update")(seen.append)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    with TestClient(app) as client:
        yield client, seen


def test_a_dry_run_rolls_back_a_real_transaction_and_tells_the_hooks(
    shelves: tuple[TestClient, list[WriteEvent]],
) -> None:
    client, seen = shelves
    assert client.post("/shelves?dry_run=true", json={"code": "S1", "name": "One"}).status_code == 201
    assert not Shelf.objects.exists()
    assert client.post("/shelves", json={"code": "S1", "name": "One"}).status_code == 201
    assert client.put("/shelves/S1?dry_run=true", json={"code": "S1", "name": "Two"}).json()["name"] == "Two"
    assert Shelf.objects.get().name == "One"
    assert [event.dry_run for event in seen] == [True, False, True]

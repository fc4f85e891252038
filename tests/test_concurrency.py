"""Optimistic concurrency: ETags, If-Match (412 on a stale tag) and If-None-Match (304),
and two real concurrent writers of one object: exactly one wins."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from djfapi.routing.hooks import WriteEvent
from testproject.business.models import Company, CompanyCostcenter, Employee
from tests.helpers import USER, auth

OWN_READER = ["business.companies.read.own", "business.companies.update.own"]


@pytest.fixture
def company() -> Company:
    company = Company.objects.create(tenant_id="tenant-a", name="Acme")
    CompanyCostcenter.objects.create(company=company, code="A", name="Alpha")
    return company


def test_get_returns_a_stable_etag(client: TestClient, company: Company) -> None:
    first = client.get(f"/companies/{company.pk}", headers=auth())
    second = client.get(f"/companies/{company.pk}", headers=auth())

    assert first.headers["etag"].startswith('"') and first.headers["etag"].endswith('"')
    assert first.headers["etag"] == second.headers["etag"]


def test_the_etag_changes_with_the_object_and_with_a_nested_list(client: TestClient, company: Company) -> None:
    path = f"/companies/{company.pk}"
    original = client.get(path, headers=auth()).headers["etag"]
    costcenter = company.costcenters.get()

    client.patch(f"{path}/costcenters/{costcenter.pk}", json={"name": "Renamed"}, headers=auth())
    after_nested_change = client.get(path, headers=auth()).headers["etag"]
    client.patch(path, json={"name": "Acme 2"}, headers=auth())
    after_own_change = client.get(path, headers=auth()).headers["etag"]

    assert len({original, after_nested_change, after_own_change}) == 3


def test_callers_who_see_different_fields_get_different_etags(client: TestClient, company: Company) -> None:
    employee = Employee.objects.create(
        company=company, user_id=USER, type="OWNER", salary="10.00", hired_at="2020-01-01"
    )
    path = f"/companies/{company.pk}/employees/{employee.pk}"

    with_salary = client.get(path, headers=auth())
    without_salary = client.get(path, headers=auth(scopes=OWN_READER))

    assert "salary" in with_salary.json() and "salary" not in without_salary.json()
    assert with_salary.headers["etag"] != without_salary.headers["etag"]


def test_if_none_match_answers_304_while_the_object_is_unchanged(client: TestClient, company: Company) -> None:
    path = f"/companies/{company.pk}"
    tag = client.get(path, headers=auth()).headers["etag"]

    unchanged = client.get(path, headers={**auth(), "If-None-Match": tag})
    client.patch(path, json={"name": "Changed"}, headers=auth())
    changed = client.get(path, headers={**auth(), "If-None-Match": tag})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag


def test_if_match_with_a_stale_tag_is_412_and_changes_nothing(client: TestClient, company: Company) -> None:
    path = f"/companies/{company.pk}"
    stale = client.get(path, headers=auth()).headers["etag"]
    client.patch(path, json={"name": "Someone else's change"}, headers=auth())

    refused = client.patch(path, json={"name": "Mine"}, headers={**auth(), "If-Match": stale})
    replaced = client.put(path, json={"name": "Mine", "status": "active"}, headers={**auth(), "If-Match": stale})
    deleted = client.delete(path, headers={**auth(), "If-Match": stale})

    for response in (refused, replaced, deleted):
        assert response.status_code == 412
        assert response.json()["detail"]["code"] == "etag_mismatch"
    company.refresh_from_db()
    assert (company.name, company.status) == ("Someone else's change", "active")


def test_if_match_with_the_current_tag_writes_and_returns_the_new_tag(client: TestClient, company: Company) -> None:
    path = f"/companies/{company.pk}"
    current = client.get(path, headers=auth()).headers["etag"]

    written = client.patch(path, json={"name": "Mine"}, headers={**auth(), "If-Match": f'"other", {current}'})

    assert written.status_code == 200
    assert written.headers["etag"] == client.get(path, headers=auth()).headers["etag"] != current
    deleted = client.delete(path, headers={**auth(), "If-Match": written.headers["etag"]})
    assert deleted.status_code == 204


def test_if_match_star_passes_and_a_weak_tag_never_matches(client: TestClient, company: Company) -> None:
    path = f"/companies/{company.pk}"
    current = client.get(path, headers=auth()).headers["etag"]

    weak = client.patch(path, json={"name": "x"}, headers={**auth(), "If-Match": f"W/{current}"})
    star = client.patch(path, json={"name": "y"}, headers={**auth(), "If-Match": "*"})

    assert weak.status_code == 412
    assert star.status_code == 200


def test_a_hidden_object_is_404_before_any_precondition(client: TestClient, company: Company) -> None:
    response = client.patch(
        f"/companies/{company.pk}", json={"name": "x"}, headers={**auth(tenant="tenant-b"), "If-Match": "*"}
    )

    assert response.status_code == 404


# -- two real concurrent writers -----------------------------------------------------------------------------------


class CompanyOut(BaseModel):
    id: object
    name: str


class CompanyWrite(BaseModel):
    name: str


def racing_app() -> FastAPI:
    """Companies whose update hook lingers inside the transaction, so two writers overlap."""
    tree = DjangoRouterSchema(name="companies", model=Company, get=CompanyOut, update=CompanyWrite)

    @tree.hook("before_update")
    def linger(event: WriteEvent) -> None:
        time.sleep(0.3)

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return app


@pytest.fixture
def racing_client(transactional_db: None) -> Iterator[TestClient]:
    # Real per-thread connections (no shared test transaction), as in production.
    with TestClient(racing_app()) as client:
        yield client


def test_two_writers_with_the_same_tag_exactly_one_wins(racing_client: TestClient) -> None:
    company = Company.objects.create(tenant_id="tenant-a", name="Original")
    path = f"/companies/{company.pk}"
    tag = racing_client.get(path).headers["etag"]
    assert racing_client.get(path).headers["etag"] == tag  # both clients read the same version
    start = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def write(name: str) -> None:
        start.wait()
        statuses[name] = racing_client.patch(path, json={"name": name}, headers={"If-Match": tag}).status_code

    writers = [threading.Thread(target=write, args=(name,)) for name in ("first", "second")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    assert sorted(statuses.values()) == [200, 412]
    winner = next(name for name, status in statuses.items() if status == 200)
    company.refresh_from_db()
    assert company.name == winner


def test_without_if_match_both_writers_succeed_one_after_the_other(racing_client: TestClient) -> None:
    """The control: the 412 above comes from the precondition, not from a failed write."""
    company = Company.objects.create(tenant_id="tenant-a", name="Original")
    path = f"/companies/{company.pk}"
    start = threading.Barrier(2)
    statuses: list[int] = []

    def write(name: str) -> None:
        start.wait()
        statuses.append(racing_client.patch(path, json={"name": name}).status_code)

    writers = [threading.Thread(target=write, args=(name,)) for name in ("first", "second")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    assert statuses == [200, 200]

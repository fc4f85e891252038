"""The demo's own write rules: hooks that keep an owner in every company, and bulk hiring.

``testproject.api`` registers two hooks on employees (demoting the last owner is a
422, removing them a 409) and ``create_multi=100`` (``POST`` a list of employees).
These run through the demo app, as its users see them.
"""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from testproject.business.models import Company, Employee
from tests.factories import make_company, make_employee
from tests.helpers import auth

OWNER, ADMIN, MEMBER = Employee.Type.OWNER, Employee.Type.ADMIN, Employee.Type.MEMBER


def employee_path(company: Company, employee: Employee | None = None) -> str:
    path = f"/companies/{company.pk}/employees"
    return f"{path}/{employee.pk}" if employee is not None else path


def hire(user_id: str, **fields: object) -> dict[str, object]:
    return {"user_id": user_id, "hired_at": "2026-01-05", **fields}


# -- the last owner stays --------------------------------------------------------------


def test_demoting_the_last_owner_is_a_422_and_changes_nothing(client: TestClient) -> None:
    company = make_company()
    owner = make_employee(company, "owner-1", OWNER)

    response = client.patch(employee_path(company, owner), json={"type": ADMIN}, headers=auth())

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "type"]
    assert "last owner" in error["msg"]
    owner.refresh_from_db()
    assert owner.type == OWNER


def test_demoting_an_owner_when_another_remains_is_allowed(client: TestClient) -> None:
    company = make_company()
    first = make_employee(company, "owner-1", OWNER)
    make_employee(company, "owner-2", OWNER)

    response = client.patch(employee_path(company, first), json={"type": MEMBER}, headers=auth())

    assert response.status_code == 200
    assert response.json()["type"] == MEMBER


def test_updating_the_last_owner_without_demoting_them_is_allowed(client: TestClient) -> None:
    company = make_company()
    owner = make_employee(company, "owner-1", OWNER)

    response = client.patch(employee_path(company, owner), json={"hired_at": "2020-02-02"}, headers=auth())

    assert response.status_code == 200
    assert response.json()["hired_at"] == "2020-02-02"


def test_removing_the_last_owner_is_a_409_naming_the_rule(client: TestClient) -> None:
    company = make_company()
    owner = make_employee(company, "owner-1", OWNER)

    response = client.delete(employee_path(company, owner), headers=auth())

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "last_owner"
    assert Employee.objects.filter(pk=owner.pk).exists()


def test_removing_an_owner_when_another_remains_and_members_freely(client: TestClient) -> None:
    company = make_company()
    first = make_employee(company, "owner-1", OWNER)
    make_employee(company, "owner-2", OWNER)
    member = make_employee(company, "member-1", MEMBER)

    assert client.delete(employee_path(company, member), headers=auth()).status_code == 204
    assert client.delete(employee_path(company, first), headers=auth()).status_code == 204
    assert list(Employee.objects.filter(company=company).values_list("user_id", flat=True)) == ["owner-2"]


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_owners_demoted_at_once_leave_one_owner(app: FastAPI) -> None:
    """The hook locks the company row first, so concurrent demotions queue and the second sees the first."""
    company = make_company()
    owners = [make_employee(company, f"owner-{i}", OWNER) for i in (1, 2)]
    statuses: list[int] = []
    start = threading.Barrier(2)

    def demote(client: TestClient, employee: Employee) -> None:
        start.wait()
        statuses.append(
            client.patch(employee_path(company, employee), json={"type": MEMBER}, headers=auth()).status_code
        )

    with TestClient(app) as first, TestClient(app) as second:
        threads = [threading.Thread(target=demote, args=pair) for pair in zip((first, second), owners, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(statuses) == [200, 422]
    assert Employee.objects.filter(company=company, type=OWNER).count() == 1


# -- bulk hiring --------------------------------------------------------------------------


def test_a_list_of_employees_is_hired_in_order(client: TestClient) -> None:
    company = make_company()
    body = [hire(f"user-{i}", type=MEMBER if i else ADMIN) for i in range(5)]

    response = client.post(employee_path(company), json=body, headers=auth())

    assert response.status_code == 201
    assert [row["user_id"] for row in response.json()["items"]] == [f"user-{i}" for i in range(5)]
    assert Employee.objects.filter(company=company).count() == 5


def test_a_list_with_one_duplicate_hires_nobody(client: TestClient) -> None:
    company = make_company()
    make_employee(company, "user-3", MEMBER)
    body = [hire(f"user-{i}") for i in range(5)]  # user-3 is already employed: unique constraint, last-ish

    response = client.post(employee_path(company), json=body, headers=auth())

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "integrity:employee_company_user_unique"
    assert list(Employee.objects.filter(company=company).values_list("user_id", flat=True)) == ["user-3"]


def test_more_than_100_employees_at_once_is_a_422(client: TestClient) -> None:
    company = make_company()
    body = [hire(f"user-{i}") for i in range(101)]

    response = client.post(employee_path(company), json=body, headers=auth())

    assert response.status_code == 422
    assert not Employee.objects.filter(company=company).exists()

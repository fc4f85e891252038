"""The README's complete example runs as written and behaves as the README says."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from testproject.business.models import Company, Employee
from tests.helpers import OTHER_TENANT, TENANT, USER, auth

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- readme-example -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "README.md lost its '<!-- readme-example -->' python block"
    return match.group(1)


@pytest.fixture(scope="module")
def example() -> Iterator[dict[str, Any]]:
    # A real module, as if the block were a file of the user's project: pydantic resolves
    # the schemas' annotations through sys.modules.
    module = types.ModuleType("readme_example")
    sys.modules[module.__name__] = module
    try:
        exec(compile(readme_example(), str(README), "exec"), module.__dict__)
        yield module.__dict__
    finally:
        del sys.modules[module.__name__]


@pytest.fixture
def readme_client(example: dict[str, Any], shared_connection: None) -> Iterator[TestClient]:
    with TestClient(example["app"]) as client:
        yield client


def test_example_builds_the_documented_routes(example: dict[str, Any]) -> None:
    paths = set(example["app"].openapi()["paths"])
    assert paths == {
        "/companies",
        "/companies/{company_id}",
        "/companies/{company_id}/departments",
        "/companies/{company_id}/departments/{department_id}",
        "/companies/{company_id}/departments/{department_id}/teams",
        "/companies/{company_id}/departments/{department_id}/teams/{team_id}",
        "/companies/{company_id}/employees",
        "/companies/{company_id}/employees/{employee_id}",
    }


def test_example_creates_three_levels_and_isolates_tenants(readme_client: TestClient) -> None:
    company = readme_client.post("/companies", json={"name": "Wayne"}, headers=auth())
    assert company.status_code == 201, company.text
    company_id = company.json()["id"]
    department = readme_client.post(
        f"/companies/{company_id}/departments", json={"name": "R&D", "budget": "125000.10"}, headers=auth()
    )
    assert department.status_code == 201, department.text
    assert department.json()["budget"] == "125000.10"
    team_path = f"/companies/{company_id}/departments/{department.json()['id']}/teams"
    team = readme_client.post(team_path, json={"name": "Gadgets", "size": 4}, headers=auth())
    assert team.status_code == 201, team.text

    read = readme_client.get(f"/companies/{company_id}", headers=auth())
    assert read.json()["departments"][0]["teams"] == [team.json()]
    other = readme_client.get(f"{team_path}/{team.json()['id']}", headers=auth(tenant=OTHER_TENANT))
    assert other.status_code == 404
    assert other.json()["detail"]["code"] == "not_exist:company"


def test_example_own_scope_and_hidden_salary(readme_client: TestClient) -> None:
    owned = Company.objects.create(tenant_id=TENANT, name="Mine")
    Company.objects.create(tenant_id=TENANT, name="Not mine")
    Employee.objects.create(company=owned, user_id=USER, type="OWNER", salary="1000.00", hired_at="2020-01-01")
    own_only = auth(scopes=["business.companies.read.own"])

    listed = readme_client.get("/companies", headers=own_only).json()["items"]
    assert [c["name"] for c in listed] == ["Mine"]
    employees = readme_client.get(f"/companies/{owned.pk}/employees", headers=own_only).json()["items"]
    assert "salary" not in employees[0]
    with_any = readme_client.get(f"/companies/{owned.pk}/employees", headers=auth()).json()["items"]
    assert with_any[0]["salary"] == "1000.00"


def test_example_critical_field_needs_a_critical_token(readme_client: TestClient) -> None:
    refused = readme_client.post("/companies", json={"name": "V", "is_verified": True}, headers=auth())
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "critical_token_required"
    accepted = readme_client.post("/companies", json={"name": "V", "is_verified": True}, headers=auth(critical=True))
    assert accepted.status_code == 201
    assert accepted.json()["is_verified"] is True

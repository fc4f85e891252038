"""The README's example runs as written and behaves as the README says.

The same module is docs_src/index/example.py (tests/test_docs.py keeps the two equal);
the guide's complete example is docs_src/concepts/complete.py (tests/test_docs_examples.py).
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from testproject.business.models import Company, CompanyDepartment
from tests.helpers import OTHER_TENANT, TENANT, auth

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
    paths = example["app"].openapi()["paths"]
    assert {path: sorted(set(item) - {"options"}) for path, item in paths.items()} == {
        "/companies": ["get", "post"],
        "/companies/{company_id}": ["delete", "get", "patch", "put"],
        "/companies/{company_id}/departments": ["get", "post"],
        "/companies/{company_id}/departments/{department_id}": ["delete", "get"],
    }


def test_example_creates_and_reads_a_company_with_its_departments(readme_client: TestClient) -> None:
    company = readme_client.post("/companies", json={"name": "Wayne"}, headers=auth())
    assert company.status_code == 201, company.text
    assert company.json() == {"id": company.json()["id"], "name": "Wayne", "departments": []}
    company_id = company.json()["id"]
    department = readme_client.post(
        f"/companies/{company_id}/departments", json={"name": "R&D", "budget": "125000.10"}, headers=auth()
    )
    assert department.status_code == 201, department.text
    assert department.json()["budget"] == "125000.10"  # a decimal string: no precision lost

    read = readme_client.get(f"/companies/{company_id}", headers=auth())
    assert read.json()["departments"] == [department.json()]
    assert Company.objects.get(pk=company_id).tenant_id == TENANT  # from the token, not the body
    renamed = readme_client.patch(f"/companies/{company_id}", json={"name": "Wayne Enterprises"}, headers=auth())
    assert renamed.json()["name"] == "Wayne Enterprises"


def test_example_keeps_tenants_apart_at_every_level(readme_client: TestClient) -> None:
    company = readme_client.post("/companies", json={"name": "Wayne"}, headers=auth()).json()
    path = f"/companies/{company['id']}/departments"
    department = readme_client.post(path, json={"name": "R&D"}, headers=auth()).json()
    other = auth(tenant=OTHER_TENANT)

    assert readme_client.get("/companies", headers=other).json() == {"items": []}
    for url in (f"/companies/{company['id']}", path, f"{path}/{department['id']}"):
        response = readme_client.get(url, headers=other)
        assert response.status_code == 404, url
        assert response.json()["detail"]["code"] == "not_exist:company"
    deleted = readme_client.delete(f"{path}/{department['id']}", headers=other)
    assert deleted.status_code == 404
    assert CompanyDepartment.objects.filter(pk=department["id"]).exists()


def test_example_needs_the_scopes_it_declares(readme_client: TestClient) -> None:
    assert readme_client.get("/companies").status_code == 401
    refused = readme_client.post("/companies", json={"name": "W"}, headers=auth(scopes=["business.companies.read.any"]))
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "required_scope_missing"

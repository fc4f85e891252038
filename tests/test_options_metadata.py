"""``OPTIONS`` answers what this caller may do — derived both ways and compared.

For a set of callers (every scope; read ``own`` as an owner; read ``any`` only;
update ``own`` without reads; a critical token; a token with no scope of the tree) the
OPTIONS answer of a collection, an item, a child collection and a child item is
compared with what the routes actually do: every method probed (writes as dry runs),
every field selected, written, filtered and ordered on. Listed means allowed; left out
means the route refuses (403/404/405).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from djfapi.routing.django import DjangoRouterSchema
from testproject.api import companies, employees
from testproject.business.models import Company, Employee
from tests.helpers import TENANT, USER, auth

READ_ANY, READ_OWN = "business.companies.read.any", "business.companies.read.own"
UPDATE_ANY, UPDATE_OWN = "business.companies.update.any", "business.companies.update.own"
CREATE, DELETE_ANY = "business.companies.create", "business.companies.delete.any"

CALLERS: dict[str, dict[str, Any]] = {
    "everything": {},
    "everything, critical": {"critical": True},
    "read own": {"scopes": [READ_OWN]},
    "read any": {"scopes": [READ_ANY]},
    "update own, no reads": {"scopes": [UPDATE_OWN, CREATE]},
    "read own, update any": {"scopes": [READ_OWN, UPDATE_ANY]},
    "unrelated scope": {"scopes": ["shop.shops.read.any"]},
    "stranger reading any": {"scopes": [READ_ANY, UPDATE_ANY, DELETE_ANY], "user": "someone-else"},
}
#: A value each writable field accepts, to probe writing it alone.
SAMPLES = {
    "name": "Probe",
    "status": "inactive",
    "is_verified": True,
    "costcenters": [],
    "user_id": "probe-user",
    "type": "ADMIN",
    "department_id": None,
    "salary": "5.00",
    "hired_at": "2026-01-01",
    "skill_ids": [],
}
MINIMAL = {companies: {"name": "Probe"}, employees: {"user_id": "probe-user", "hired_at": "2026-01-01"}}
FULL_UPDATE = {companies: {"name": "Probe", "status": "active"}, employees: {"type": "ADMIN", "hired_at": "2026-01-01"}}


@pytest.fixture
def rows(db: None) -> dict[str, Any]:
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    Employee.objects.create(company=company, user_id=USER, type="OWNER", hired_at="2026-01-01")
    member = Employee.objects.create(company=company, user_id="member", type="OWNER", hired_at="2026-01-01")
    return {"company": company, "member": member}


def sample(value_type: Any) -> str:
    """A query-string value a filter of ``value_type`` accepts."""
    schema = TypeAdapter(value_type).json_schema()
    schema = schema.get("items", schema)
    if "enum" in schema:
        return str(schema["enum"][0])
    if "anyOf" in schema:
        schema = next(option for option in schema["anyOf"] if option.get("type") != "null")
    kind, fmt = schema.get("type"), schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date":
        return "2026-01-01"
    if fmt == "date-time":
        return "2026-01-01T00:00:00Z"
    return {"integer": "1", "number": "1", "boolean": "true"}.get(kind, "1")


def allowed(response: Any) -> bool:
    assert response.status_code != 500, response.text
    return response.status_code not in (401, 403, 404, 405)


def probe_methods(
    client: TestClient, node: DjangoRouterSchema, path: str, headers: dict[str, str], *, detail: bool
) -> set[str]:
    found = set()
    if allowed(client.get(path, headers=headers)):
        found.add("GET")
    if detail:
        if allowed(client.patch(f"{path}?dry_run=true", json={}, headers=headers)):
            found.add("PATCH")
        if allowed(client.put(f"{path}?dry_run=true", json=FULL_UPDATE[node], headers=headers)):
            found.add("PUT")
        # a stale If-Match: 412 when the caller may delete it, and nothing is deleted either way
        if allowed(client.delete(path, headers={**headers, "If-Match": '"stale"'})):
            found.add("DELETE")
    elif allowed(client.post(f"{path}?dry_run=true", json=MINIMAL[node], headers=headers)):
        found.add("POST")
    return found | {"OPTIONS"}


def probe_fields(
    client: TestClient, node: DjangoRouterSchema, path: str, headers: dict[str, str], *, detail: bool, methods: set[str]
) -> dict[str, list[str]]:
    mapping = node.get_mapping if detail else node.list_mapping
    candidates = [name for name in mapping.schema.model_fields]
    for f in mapping.fields:
        if f.nested is not None:
            candidates += [f"{f.name}.{inner}" for inner in f.nested.schema.model_fields]
    readable = [
        c for c in candidates if "GET" in methods and allowed(client.get(f"{path}?fields={c}", headers=headers))
    ]
    writable = []
    schema = node.update_body if detail else node.create_body
    assert schema is not None
    for name in schema.model_fields:
        if detail and "PATCH" in methods:
            answer = client.patch(f"{path}?dry_run=true", json={name: SAMPLES[name]}, headers=headers)
        elif not detail and "POST" in methods:
            answer = client.post(f"{path}?dry_run=true", json={**MINIMAL[node], name: SAMPLES[name]}, headers=headers)
        else:
            continue
        if allowed(answer):
            writable.append(name)
    filterable, orderable = [], []
    if not detail and "GET" in methods:
        for spec in node.filters.specs.values():
            if allowed(client.get(path, params={spec.name: sample(spec.value_type)}, headers=headers)):
                filterable.append(spec.name)
        for name in node.ordering.fields:
            if allowed(client.get(path, params={"order_by": name}, headers=headers)):
                orderable.append(name)
    return {
        "readable": sorted(readable),
        "writable": writable,
        "filterable": sorted(filterable),
        "orderable": sorted(orderable),
    }


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("where", ["companies", "company", "employees", "employee"])
def test_options_says_what_the_routes_do(client: TestClient, rows: dict[str, Any], caller: str, where: str) -> None:
    company, member = rows["company"], rows["member"]
    path, node, detail = {
        "companies": ("/companies", companies, False),
        "company": (f"/companies/{company.pk}", companies, True),
        "employees": (f"/companies/{company.pk}/employees", employees, False),
        "employee": (f"/companies/{company.pk}/employees/{member.pk}", employees, True),
    }[where]
    headers = auth(**CALLERS[caller])
    answer = client.options(path, headers=headers)
    methods = probe_methods(client, node, path, headers, detail=detail)
    if answer.status_code == 404:
        assert methods == {"OPTIONS"}, f"OPTIONS hid {path} from a caller who may {methods}"
        return
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["methods"]) == methods
    assert answer.headers["allow"] == ", ".join(body["methods"])
    probed = probe_fields(client, node, path, headers, detail=detail, methods=methods)
    assert {**body["fields"], "readable": sorted(body["fields"]["readable"])} == probed
    assert Company.objects.get(pk=company.pk).name == "Acme"  # every probe was a dry run or refused


def test_salary_is_readable_filterable_and_writable_only_with_its_scopes(
    client: TestClient, rows: dict[str, Any]
) -> None:
    path = f"/companies/{rows['company'].pk}/employees"
    full = client.options(path, headers=auth()).json()["fields"]
    own = client.options(path, headers=auth(scopes=[READ_OWN, UPDATE_OWN])).json()["fields"]
    assert "salary" in full["readable"] and "salary" in full["writable"] and "salary__gte" in full["filterable"]
    assert "salary" not in own["readable"] and "salary" not in own["writable"]
    assert "salary__gte" not in own["filterable"] and "salary" not in own["orderable"]
    assert "user_id" in own["readable"] and "hired_at" in own["writable"]


def test_options_needs_a_valid_token_and_hides_other_tenants(client: TestClient, rows: dict[str, Any]) -> None:
    path = f"/companies/{rows['company'].pk}"
    assert client.options(path).status_code == 401
    assert client.options(path, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    other = client.options(path, headers=auth(tenant="tenant-b"))
    missing = client.options(f"/companies/{uuid.uuid4()}", headers=auth(tenant="tenant-b"))
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()  # another tenant's id reads as a random one


def test_options_costs_one_query_per_method_checked(
    client: TestClient, rows: dict[str, Any], django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    with django_assert_num_queries(0):  # a root collection: scopes only, no lookup
        client.options("/companies", headers=auth())
    with django_assert_num_queries(4):  # GET, PATCH, PUT, DELETE: is the object visible under each one's filter?
        client.options(f"/companies/{rows['company'].pk}", headers=auth())


def test_options_is_in_openapi_and_in_405_allow_headers(client: TestClient, app: Any, rows: dict[str, Any]) -> None:
    paths = app.openapi()["paths"]
    assert "options" in paths["/companies"] and "options" in paths["/companies/{company_id}"]
    refused = client.post(f"/companies/{rows['company'].pk}", headers=auth())
    assert refused.status_code == 405
    assert "OPTIONS" in refused.headers["allow"]

"""Route scopes (SPEC §4): how they are declared, inherited down the tree and matched
against a token, and how the scope a caller is granted (``any`` or ``own``) decides
which rows every level of the demo's tree shows them.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from djfapi import Field
from djfapi.errors import PermissionDenied
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import SecurityScopes
from djfapi.routing.options import resolve_scopes
from djfapi.schemas import AccessToken
from djfapi.security.scopes import grant
from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)
from tests.factories import make_company, make_costcenter, make_department, make_employee, make_team
from tests.helpers import OTHER_TENANT, USER, auth

READ_ANY = "business.companies.read.any"
READ_OWN = "business.companies.read.own"
CREATE = "business.companies.create"
UPDATE_ANY = "business.companies.update.any"
UPDATE_OWN = "business.companies.update.own"
DELETE_ANY = "business.companies.delete.any"
DELETE_OWN = "business.companies.delete.own"
OWN_ONLY = (READ_OWN, UPDATE_OWN, DELETE_OWN)

GET = ("a.items.read.any", "a.items.read.own")
PATCH = ("a.items.update.any",)


# -- declaring scopes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        "",
        "business",
        "business.companies",
        "business.companies.read.any.extra",
        "business..read",
        ".companies.read",
        "business.companies.read.",
    ],
)
def test_malformed_scope_is_refused_at_definition(scope: str) -> None:
    with pytest.raises(SchemaDefinitionError, match="get"):
        SecurityScopes(get=[READ_ANY, scope])


def test_scopes_given_as_a_string_are_refused() -> None:
    """A bare string would otherwise be read as a list of one-character scopes."""
    with pytest.raises(SchemaDefinitionError, match="list of scopes"):
        SecurityScopes(patch=UPDATE_ANY)  # type: ignore[arg-type]


def test_well_formed_scopes_are_kept_in_order() -> None:
    scopes = SecurityScopes(get=[READ_ANY, READ_OWN], post=["billing.invoices.create"])

    assert scopes.get == (READ_ANY, READ_OWN)
    assert scopes.post == ("billing.invoices.create",)
    assert scopes.patch is None


def test_malformed_field_scope_is_refused_at_definition() -> None:
    with pytest.raises(ValueError, match=r"service\.resource\.action"):
        Field(None, scopes=["business.salary"])


# -- inheritance -------------------------------------------------------------------------


def root(**scopes: Any) -> dict[str, tuple[str, ...] | None]:
    return resolve_scopes(SecurityScopes(**scopes), None)


def test_list_and_aggregate_default_to_get() -> None:
    resolved = root(get=list(GET))

    assert resolved["list"] == GET
    assert resolved["aggregate"] == GET


def test_explicit_list_scopes_win_over_get() -> None:
    resolved = root(get=list(GET), list=["a.items.read.any"])

    assert resolved["list"] == ("a.items.read.any",)
    assert resolved["aggregate"] == GET


def test_put_defaults_to_patch() -> None:
    assert root(patch=list(PATCH))["put"] == PATCH


def test_explicit_put_wins_over_patch() -> None:
    assert root(patch=list(PATCH), put=["a.items.replace"])["put"] == ("a.items.replace",)


def test_root_without_a_scope_leaves_it_unset() -> None:
    """Unset at the root: the router refuses to build such a route (checked elsewhere)."""
    resolved = root(get=list(GET))

    assert resolved["post"] is None
    assert resolved["patch"] is None
    assert resolved["delete"] is None


def test_child_reads_with_the_parents_get() -> None:
    parent = root(get=list(GET), patch=list(PATCH))

    child = resolve_scopes(SecurityScopes(), parent)

    assert (child["get"], child["list"], child["aggregate"]) == (GET, GET, GET)


def test_child_writes_with_the_parents_patch() -> None:
    parent = root(get=list(GET), post=["a.items.create"], patch=list(PATCH), delete=["a.items.delete"])

    child = resolve_scopes(SecurityScopes(), parent)

    assert {name: child[name] for name in ("post", "patch", "put", "delete")} == {
        "post": PATCH,
        "patch": PATCH,
        "put": PATCH,
        "delete": PATCH,
    }


def test_grandchild_inherits_through_the_chain() -> None:
    parent = root(get=list(GET), patch=list(PATCH))

    grandchild = resolve_scopes(SecurityScopes(), resolve_scopes(SecurityScopes(), parent))

    assert (grandchild["get"], grandchild["post"], grandchild["delete"]) == (GET, PATCH, PATCH)


def test_explicit_child_scopes_win() -> None:
    parent = root(get=list(GET), patch=list(PATCH))

    child = resolve_scopes(
        SecurityScopes(get=["a.parts.read"], post=["a.parts.create"], delete=["a.parts.delete"]), parent
    )

    assert child["get"] == child["list"] == ("a.parts.read",)
    assert child["post"] == ("a.parts.create",)
    assert child["delete"] == ("a.parts.delete",)
    assert child["patch"] == child["put"] == PATCH


def test_empty_list_means_any_token_and_is_not_inherited_over() -> None:
    parent = root(get=list(GET), patch=list(PATCH))

    child = resolve_scopes(SecurityScopes(get=[], post=[]), parent)

    assert child["get"] == child["list"] == ()
    assert child["post"] == ()
    assert child["patch"] == PATCH


def test_demo_tree_resolves_as_declared() -> None:
    from testproject.api import companies

    departments = next(child for child in companies.children if child.name == "departments")
    teams = departments.children[0]
    company_patch = (UPDATE_ANY, UPDATE_OWN)

    assert companies.scopes["list"] == (READ_ANY, READ_OWN)
    assert departments.scopes["get"] == teams.scopes["list"] == (READ_ANY, READ_OWN)
    assert departments.scopes["post"] == departments.scopes["delete"] == company_patch
    assert teams.scopes["put"] == company_patch


# -- matching a token --------------------------------------------------------------------


def access_token(*scopes: str) -> AccessToken:
    return AccessToken(exp=2_000_000_000, sub=USER, ten="t", aud=list(scopes))


def test_grant_picks_the_first_declared_scope_held() -> None:
    """The token lists ``own`` first; the route's declared order decides."""
    held = access_token(READ_OWN, READ_ANY)

    assert str(grant(held, held.aud, [READ_ANY, READ_OWN]).scope) == READ_ANY
    assert str(grant(held, held.aud, [READ_OWN, READ_ANY]).scope) == READ_OWN


def test_grant_with_only_a_later_scope_gets_that_one() -> None:
    held = access_token(READ_OWN)

    access = grant(held, held.aud, [READ_ANY, READ_OWN])

    assert access.scope is not None
    assert access.scope.selector == "own"


def test_grant_without_required_scopes_accepts_any_token() -> None:
    held = access_token()

    access = grant(held, held.aud, [])

    assert access.scope is None
    assert access.user_id == USER


def test_grant_without_a_matching_scope_is_refused() -> None:
    held = access_token(READ_OWN, CREATE)

    with pytest.raises(PermissionDenied) as refused:
        grant(held, held.aud, [UPDATE_ANY, UPDATE_OWN])

    assert refused.value.code == "required_scope_missing"
    assert refused.value.detail == {"required_scopes": [UPDATE_ANY, UPDATE_OWN]}


# -- the demo: 403s ----------------------------------------------------------------------


def assert_scope_missing(response: Any, required: list[str]) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == {
        "detail": {
            "type": "forbidden",
            "code": "required_scope_missing",
            "message": response.json()["detail"]["message"],
            "detail": {"required_scopes": required},
        }
    }
    assert "Traceback" not in response.text


def test_post_without_the_create_scope_is_403(client: TestClient) -> None:
    response = client.post("/companies", json={"name": "New"}, headers=auth(scopes=[READ_ANY, READ_OWN]))

    assert_scope_missing(response, [CREATE])
    assert not Company.objects.exists()


def test_post_with_the_create_scope_is_201(client: TestClient) -> None:
    response = client.post("/companies", json={"name": "New"}, headers=auth(scopes=[CREATE]))

    assert response.status_code == 201
    assert Company.objects.get().name == "New"


def test_read_without_a_read_scope_is_403(client: TestClient) -> None:
    company = make_company()

    assert_scope_missing(client.get("/companies", headers=auth(scopes=[CREATE])), [READ_ANY, READ_OWN])
    assert_scope_missing(
        client.get(f"/companies/{company.pk}/departments", headers=auth(scopes=[UPDATE_ANY])), [READ_ANY, READ_OWN]
    )


def test_department_write_needs_the_company_update_scope_not_create(client: TestClient) -> None:
    company = make_company()

    response = client.post(
        f"/companies/{company.pk}/departments", json={"name": "Sales"}, headers=auth(scopes=[READ_ANY, CREATE])
    )

    assert_scope_missing(response, [UPDATE_ANY, UPDATE_OWN])
    assert not CompanyDepartment.objects.exists()


def test_department_write_with_the_company_update_scope_is_201(client: TestClient) -> None:
    company = make_company()

    response = client.post(
        f"/companies/{company.pk}/departments", json={"name": "Sales"}, headers=auth(scopes=[UPDATE_ANY])
    )

    assert response.status_code == 201
    assert CompanyDepartment.objects.get().company_id == company.pk


def test_department_delete_needs_the_company_update_scope_not_delete(client: TestClient) -> None:
    department = make_department(make_company())
    path = f"/companies/{department.company_id}/departments/{department.pk}"

    assert_scope_missing(client.delete(path, headers=auth(scopes=[DELETE_ANY])), [UPDATE_ANY, UPDATE_OWN])
    assert CompanyDepartment.objects.filter(pk=department.pk).exists()

    assert client.delete(path, headers=auth(scopes=[UPDATE_ANY])).status_code == 204
    assert not CompanyDepartment.objects.filter(pk=department.pk).exists()


# -- the demo: any versus own ------------------------------------------------------------


@pytest.fixture
def memberships() -> dict[str, Company]:
    """Companies of the caller's tenant by the caller's role in them, plus a foreign one."""
    companies = {
        "Administered": make_company(name="Administered"),
        "Member only": make_company(name="Member only"),
        "Owned": make_company(name="Owned"),
        "Unrelated": make_company(name="Unrelated"),
        "Foreign owned": make_company(tenant=OTHER_TENANT, name="Foreign owned"),
    }
    make_employee(companies["Administered"], role=Employee.Type.ADMIN)
    make_employee(companies["Member only"], role=Employee.Type.MEMBER)
    make_employee(companies["Owned"], role=Employee.Type.OWNER)
    make_employee(companies["Unrelated"], user_id="someone-else", role=Employee.Type.OWNER)
    make_employee(companies["Foreign owned"], role=Employee.Type.OWNER)
    return companies


def company_names(client: TestClient, scopes: tuple[str, ...]) -> list[str]:
    response = client.get("/companies", headers=auth(scopes=scopes))
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_any_and_own_sees_every_company_of_the_tenant(client: TestClient, memberships: dict[str, Company]) -> None:
    """``read.any`` is declared first, so holding both means ``any``, not ``own``."""
    assert company_names(client, (READ_OWN, READ_ANY)) == ["Administered", "Member only", "Owned", "Unrelated"]


def test_own_sees_only_companies_owned_or_administered(client: TestClient, memberships: dict[str, Company]) -> None:
    assert company_names(client, (READ_OWN,)) == ["Administered", "Owned"]


def test_own_item_outside_the_filter_is_404(client: TestClient, memberships: dict[str, Company]) -> None:
    member_only = memberships["Member only"]

    response = client.get(f"/companies/{member_only.pk}", headers=auth(scopes=[READ_OWN]))

    assert response.status_code == 404
    assert response.json()["detail"]["code"] == "not_exist:company"
    assert client.get(f"/companies/{member_only.pk}", headers=auth(scopes=[READ_ANY])).status_code == 200


def test_write_selector_comes_from_the_write_scope(client: TestClient, memberships: dict[str, Company]) -> None:
    """Reading ``any`` does not widen a write held only as ``own``."""
    member_only = memberships["Member only"]
    headers = auth(scopes=[READ_ANY, UPDATE_OWN])

    assert client.get(f"/companies/{member_only.pk}", headers=headers).status_code == 200
    response = client.patch(f"/companies/{member_only.pk}", json={"name": "Renamed"}, headers=headers)

    assert response.status_code == 404
    member_only.refresh_from_db()
    assert member_only.name == "Member only"


def test_update_own_changes_an_owned_company(client: TestClient, memberships: dict[str, Company]) -> None:
    owned = memberships["Owned"]

    response = client.patch(f"/companies/{owned.pk}", json={"name": "Renamed"}, headers=auth(scopes=[UPDATE_OWN]))

    assert response.status_code == 200
    owned.refresh_from_db()
    assert owned.name == "Renamed"


def test_delete_own_refuses_an_unowned_company(client: TestClient, memberships: dict[str, Company]) -> None:
    unrelated, owned = memberships["Unrelated"], memberships["Owned"]
    headers = auth(scopes=[DELETE_OWN])

    assert client.delete(f"/companies/{unrelated.pk}", headers=headers).status_code == 404
    assert client.delete(f"/companies/{owned.pk}", headers=headers).status_code == 204
    assert list(Company.objects.filter(status=Company.Status.DELETED).values_list("name", flat=True)) == ["Owned"]


# -- the demo: own all the way down ------------------------------------------------------


def populate(company: Company) -> dict[str, Any]:
    """A department with a team, a cost centre and a member employee under ``company``."""
    department = make_department(company)
    return {
        "company": company.pk,
        "department": department.pk,
        "team": make_team(department).pk,
        "costcenter": make_costcenter(company).pk,
        "employee": make_employee(company, user_id="colleague", department=department).pk,
    }


COMPANY = "/companies/{company}"
DEPARTMENTS = COMPANY + "/departments"
DEPARTMENT = DEPARTMENTS + "/{department}"
TEAMS = DEPARTMENT + "/teams"
TEAM = TEAMS + "/{team}"
EMPLOYEE = COMPANY + "/employees/{employee}"
COSTCENTER = COMPANY + "/costcenters/{costcenter}"

NESTED_REQUESTS: dict[str, tuple[str, str, dict[str, Any] | None, int]] = {
    "list departments": ("GET", DEPARTMENTS, None, 200),
    "get department": ("GET", DEPARTMENT, None, 200),
    "list teams": ("GET", TEAMS, None, 200),
    "get team": ("GET", TEAM, None, 200),
    "list employees": ("GET", COMPANY + "/employees", None, 200),
    "get employee": ("GET", EMPLOYEE, None, 200),
    "get costcenter": ("GET", COSTCENTER, None, 200),
    "create department": ("POST", DEPARTMENTS, {"name": "New"}, 201),
    "patch department": ("PATCH", DEPARTMENT, {"name": "Renamed"}, 200),
    "create team": ("POST", TEAMS, {"name": "New"}, 201),
    "put team": ("PUT", TEAM, {"name": "Renamed", "size": 9}, 200),
    "delete team": ("DELETE", TEAM, None, 204),
    "patch employee": ("PATCH", EMPLOYEE, {"type": "ADMIN"}, 200),
    "delete employee": ("DELETE", EMPLOYEE, None, 204),
    "put costcenter": ("PUT", COSTCENTER, {"code": "CC-9", "name": "Renamed"}, 200),
}


def send(client: TestClient, request: str, ids: dict[str, Any], scopes: tuple[str, ...]) -> Any:
    method, template, body, _ = NESTED_REQUESTS[request]
    return client.request(method, template.format(**ids), json=body, headers=auth(scopes=scopes))


def tree_state() -> list[list[dict[str, Any]]]:
    return [
        list(model.objects.order_by("pk").values())
        for model in (Company, CompanyDepartment, CompanyDepartmentTeam, CompanyCostcenter, Employee)
    ]


@pytest.mark.parametrize("request_name", NESTED_REQUESTS)
def test_own_caller_cannot_reach_below_an_unowned_company(
    client: TestClient, memberships: dict[str, Company], request_name: str
) -> None:
    ids = populate(memberships["Member only"])
    before = tree_state()

    response = send(client, request_name, ids, OWN_ONLY)

    assert response.status_code == 404, response.text
    assert response.json()["detail"]["code"] == "not_exist:company"
    assert tree_state() == before


@pytest.mark.parametrize("request_name", NESTED_REQUESTS)
def test_own_caller_reaches_below_an_owned_company(
    client: TestClient, memberships: dict[str, Company], request_name: str
) -> None:
    ids = populate(memberships["Owned"])

    response = send(client, request_name, ids, OWN_ONLY)

    assert response.status_code == NESTED_REQUESTS[request_name][3], response.text

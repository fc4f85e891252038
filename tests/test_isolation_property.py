"""Tenant isolation as a property: random interleavings of API calls never cross a tenant.

A hypothesis state machine plays two tenants whose users (``alice``, ``bob``, ``carol``;
the same user ids in both tenants) call the demo API with ``any`` or ``own`` tokens:
they create, read, list, rename and delete companies, departments, teams, cost centres
and employees, make each other owners, admins or members (which changes who "owns"
what), and aim at rows of the other tenant, of companies they do not own, at rows
under the wrong parent and at ids that do not exist.

A model of the world says who owns what. For every call it predicts the exact status
(and the 404's ``not_exist:<model>`` code: an invisible company is always reported as
the company, whatever is below it), what a read or a list must contain, and no more;
after every step the whole database must equal the model, so a write that slipped
through a filter (or a refused write that changed anything) fails at once. No response
may contain the id or the name of a row the caller cannot see.

Quick by default (50 examples of up to 20 steps, derandomised for CI);
``DJFAPI_FUZZ=thorough`` runs 300 examples of up to 40 steps, randomised.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment, CompanyDepartmentTeam, Employee
from tests.helpers import auth
from tests.live.figures import record

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"max_examples": 50, "stateful_step_count": 20, "derandomize": True},
    "thorough": {"max_examples": 300, "stateful_step_count": 40, "derandomize": False},
}
PROFILE = os.environ.get("DJFAPI_FUZZ", "quick")

TENANTS = ("tenant-a", "tenant-b")
USERS = ("alice", "bob", "carol")
ROLES = ("OWNER", "ADMIN", "MEMBER")
OWNING_ROLES = frozenset({"OWNER", "ADMIN"})
CODES = ("C1", "C2", "C3")
SCOPES = {
    selector: [
        f"business.companies.read.{selector}",
        "business.companies.create",
        f"business.companies.update.{selector}",
        f"business.companies.delete.{selector}",
    ]
    for selector in ("any", "own")
}


@dataclass(frozen=True)
class Actor:
    tenant: str
    user: str
    selector: str  # "any" or "own"

    def __str__(self) -> str:
        return f"{self.user}@{self.tenant}/{self.selector}"


ACTORS = [Actor(tenant, user, selector) for tenant in TENANTS for user in USERS for selector in ("any", "own")]
HEADERS = {actor: auth(actor.tenant, actor.user, SCOPES[actor.selector]) for actor in ACTORS}


# -- the model ---------------------------------------------------------------------------


@dataclass
class World:
    """Who owns what, as the API must see it. Dicts keep creation order (for drawing)."""

    companies: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> tenant, name, deleted
    employees: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> company, user, role
    departments: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> company, name
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> department, name
    costcenters: dict[str, dict[str, Any]] = field(default_factory=dict)  # str(id) -> company, code, name
    gone: dict[str, dict[str, Any]] = field(default_factory=dict)  # deleted rows: id -> kind, path, company, ...

    def owns(self, actor: Actor, company: str) -> bool:
        return any(
            row["company"] == company and row["user"] == actor.user and row["role"] in OWNING_ROLES
            for row in self.employees.values()
        )

    def sees(self, actor: Actor, company: str) -> bool:
        row = self.companies.get(company)
        if row is None or row["tenant"] != actor.tenant or row["deleted"]:
            return False
        return actor.selector == "any" or self.owns(actor, company)

    def company_of(self, kind: str, key: str) -> str:
        if kind == "teams":
            return self.departments[self.teams[key]["department"]]["company"]
        return key if kind == "companies" else getattr(self, kind)[key]["company"]

    def children(self, kind: str, parent: str) -> list[str]:
        parent_key = "department" if kind == "teams" else "company"
        return [key for key, row in getattr(self, kind).items() if row[parent_key] == parent]

    def secrets(self, actor: Actor) -> set[str]:
        """Ids and names of every row ``actor`` must not learn about."""
        hidden: set[str] = set()
        for kind in ("companies", "departments", "teams", "costcenters", "employees"):
            for key, row in getattr(self, kind).items():
                if not self.sees(actor, self.company_of(kind, key)):
                    if kind != "costcenters":  # integer ids: too short to search for
                        hidden.add(key)
                    if "name" in row:
                        hidden.add(row["name"])
        return hidden

    def snapshot(self) -> dict[str, dict[str, tuple[Any, ...]]]:
        return {
            "companies": {k: (r["tenant"], r["name"], r["deleted"]) for k, r in self.companies.items()},
            "employees": {k: (r["company"], r["user"], r["role"]) for k, r in self.employees.items()},
            "departments": {k: (r["company"], r["name"]) for k, r in self.departments.items()},
            "teams": {k: (r["department"], r["name"]) for k, r in self.teams.items()},
            "costcenters": {k: (r["company"], r["code"], r["name"]) for k, r in self.costcenters.items()},
        }


def database_snapshot() -> dict[str, dict[str, tuple[Any, ...]]]:
    return {
        "companies": {
            str(pk): (tenant, name, status == Company.Status.DELETED)
            for pk, tenant, name, status in Company.objects.values_list("pk", "tenant_id", "name", "status")
        },
        "employees": {
            str(pk): (str(company), user, role)
            for pk, company, user, role in Employee.objects.values_list("pk", "company_id", "user_id", "type")
        },
        "departments": {
            str(pk): (str(company), name)
            for pk, company, name in CompanyDepartment.objects.values_list("pk", "company_id", "name")
        },
        "teams": {
            str(pk): (str(department), name)
            for pk, department, name in CompanyDepartmentTeam.objects.values_list("pk", "department_id", "name")
        },
        "costcenters": {
            str(pk): (str(company), code, name)
            for pk, company, code, name in CompanyCostcenter.objects.values_list("pk", "company_id", "code", "name")
        },
    }


def fresh_name(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


PATHS = {
    "companies": "/companies/{company}",
    "departments": "/companies/{company}/departments/{key}",
    "costcenters": "/companies/{company}/costcenters/{key}",
    "employees": "/companies/{company}/employees/{key}",
}
NOT_EXIST = {
    "companies": "not_exist:company",
    "departments": "not_exist:companydepartment",
    "teams": "not_exist:companydepartmentteam",
    "costcenters": "not_exist:companycostcenter",
    "employees": "not_exist:employee",
}
STATS: Counter[str] = Counter()


# -- the machine ---------------------------------------------------------------------------


class TenantIsolation(RuleBasedStateMachine):
    client: TestClient  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.savepoint = transaction.savepoint()
        STATS["examples"] += 1

    def teardown(self) -> None:
        transaction.savepoint_rollback(self.savepoint)

    # -- helpers -----------------------------------------------------------------------

    def call(self, actor: Actor, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        hidden = self.world.secrets(actor)
        response = self.client.request(method, path, json=body, headers=HEADERS[actor])
        STATS["requests"] += 1
        STATS[f"status {response.status_code}"] += 1
        sent = path + repr(body)
        leaked = sorted(secret for secret in hidden if secret in response.text and secret not in sent)
        assert not leaked, f"{actor} {method} {path} -> {response.status_code} reveals {leaked}: {response.text}"
        return response

    def expect(self, response: Any, status: int, code: str | None = None) -> None:
        assert response.status_code == status, (response.request.method, response.request.url, response.text)
        if code is not None:
            assert response.json()["detail"]["code"] == code, response.text

    def item_path(self, kind: str, key: str) -> str:
        if kind == "teams":
            department = self.world.teams[key]["department"]
            company = self.world.departments[department]["company"]
            return f"/companies/{company}/departments/{department}/teams/{key}"
        return PATHS[kind].format(company=self.world.company_of(kind, key), key=key)

    def missing_code(self, actor: Actor, kind: str, key: str) -> str | None:
        """The 404 code for ``kind``/``key`` as addressed by ``item_path``, or None when found."""
        company = self.world.company_of(kind, key)
        if not self.world.sees(actor, company):
            return NOT_EXIST["companies"]
        if kind == "teams" and self.world.teams[key]["department"] not in self.world.departments:
            return NOT_EXIST["departments"]
        return None if key in getattr(self.world, kind) else NOT_EXIST[kind]

    def draw_actor(self, data: st.DataObject, company: str | None = None) -> Actor:
        """Any actor; for a target company, as often one who may see it (else most calls are 404s)."""
        insiders = [actor for actor in ACTORS if company is not None and self.world.sees(actor, company)]
        if insiders and data.draw(st.booleans(), label="insider"):
            return data.draw(st.sampled_from(insiders), label="actor")
        return data.draw(st.sampled_from(ACTORS), label="actor")

    def draw_key(self, data: st.DataObject, kind: str) -> str | None:
        keys = list(getattr(self.world, kind))
        return data.draw(st.sampled_from(keys), label=kind) if keys else None

    # -- set-up --------------------------------------------------------------------------

    @initialize()
    def two_tenants(self) -> None:
        """Per tenant two companies; ``alice`` owns one in each tenant, ``bob`` administers one."""
        people = {
            ("tenant-a", 0): [("alice", "OWNER"), ("bob", "MEMBER")],
            ("tenant-a", 1): [("bob", "ADMIN")],
            ("tenant-b", 0): [("alice", "OWNER")],
            ("tenant-b", 1): [("carol", "OWNER"), ("alice", "MEMBER")],
        }
        for (tenant, _), members in people.items():
            company = Company.objects.create(tenant_id=tenant, name=fresh_name("company"))
            key = str(company.pk)
            self.world.companies[key] = {"tenant": tenant, "name": company.name, "deleted": False}
            for user, role in members:
                employee = Employee.objects.create(
                    company=company, user_id=user, type=role, hired_at=datetime.date(2024, 1, 1)
                )
                self.world.employees[str(employee.pk)] = {"company": key, "user": user, "role": role}
            department = CompanyDepartment.objects.create(company=company, name=fresh_name("department"))
            self.world.departments[str(department.pk)] = {"company": key, "name": department.name}
            team = CompanyDepartmentTeam.objects.create(department=department, name=fresh_name("team"))
            self.world.teams[str(team.pk)] = {"department": str(department.pk), "name": team.name}
            costcenter = CompanyCostcenter.objects.create(company=company, code="C1", name=fresh_name("costcenter"))
            self.world.costcenters[str(costcenter.pk)] = {"company": key, "code": "C1", "name": costcenter.name}

    # -- companies -----------------------------------------------------------------------

    @rule(data=st.data())
    def create_company(self, data: st.DataObject) -> None:
        """Anyone with ``create`` may create; the body cannot choose the tenant (422, nothing created)."""
        actor = self.draw_actor(data)
        body: dict[str, Any] = {"name": fresh_name("company")}
        if data.draw(st.booleans(), label="smuggle tenant"):
            body["tenant_id"] = next(tenant for tenant in TENANTS if tenant != actor.tenant)
            response = self.call(actor, "POST", "/companies", body)
            self.expect(response, 422)
            assert [error["loc"] for error in response.json()["detail"]] == [["body", "tenant_id"]]
            return
        response = self.call(actor, "POST", "/companies", body)
        self.expect(response, 201)
        created = response.json()
        assert created["tenant_id"] == actor.tenant
        self.world.companies[created["id"]] = {"tenant": actor.tenant, "name": body["name"], "deleted": False}

    @rule(data=st.data())
    def list_companies(self, data: st.DataObject) -> None:
        """Exactly the companies the caller may see: nothing more, nothing less."""
        actor = self.draw_actor(data)
        response = self.call(actor, "GET", "/companies?limit=1000")
        self.expect(response, 200)
        items = response.json()["items"]
        assert {item["id"] for item in items} == {key for key in self.world.companies if self.world.sees(actor, key)}
        for item in items:
            self.check_company_body(item)

    def check_company_body(self, body: dict[str, Any]) -> None:
        key = body["id"]
        assert body["tenant_id"] == self.world.companies[key]["tenant"]
        assert body["name"] == self.world.companies[key]["name"]
        assert {d["id"] for d in body["departments"]} == set(self.world.children("departments", key))
        assert {str(c["id"]) for c in body["costcenters"]} == set(self.world.children("costcenters", key))

    # -- any node: read, rename, delete ----------------------------------------------------

    @rule(data=st.data(), kind=st.sampled_from(["companies", "departments", "teams", "costcenters", "employees"]))
    def read(self, data: st.DataObject, kind: str) -> None:
        key = self.draw_key(data, kind)
        if key is None:
            return
        actor = self.draw_actor(data, self.world.company_of(kind, key))
        missing = self.missing_code(actor, kind, key)
        response = self.call(actor, "GET", self.item_path(kind, key))
        if missing:
            self.expect(response, 404, missing)
            return
        self.expect(response, 200)
        body = response.json()
        assert str(body["id"]) == key
        if kind == "companies":
            self.check_company_body(body)
        elif kind == "departments":
            assert {team["id"] for team in body["teams"]} == set(self.world.children("teams", key))
        elif kind == "employees":
            assert (body["user_id"], body["type"]) == (
                self.world.employees[key]["user"],
                self.world.employees[key]["role"],
            )

    @rule(data=st.data(), kind=st.sampled_from(["companies", "departments", "teams", "costcenters"]))
    def rename(self, data: st.DataObject, kind: str) -> None:
        key = self.draw_key(data, kind)
        if key is None:
            return
        actor = self.draw_actor(data, self.world.company_of(kind, key))
        name = fresh_name(kind)
        missing = self.missing_code(actor, kind, key)
        response = self.call(actor, "PATCH", self.item_path(kind, key), {"name": name})
        if missing:
            self.expect(response, 404, missing)
            return
        self.expect(response, 200)
        getattr(self.world, kind)[key]["name"] = name

    @rule(data=st.data(), kind=st.sampled_from(["companies", "departments", "teams", "costcenters", "employees"]))
    def delete(self, data: st.DataObject, kind: str) -> None:
        key = self.draw_key(data, kind)
        if key is None:
            return
        actor = self.draw_actor(data, self.world.company_of(kind, key))
        path = self.item_path(kind, key)
        missing = self.missing_code(actor, kind, key)
        response = self.call(actor, "DELETE", path)
        if missing:
            self.expect(response, 404, missing)
            return
        if kind == "employees" and self.is_last_owner(key):
            self.expect(response, 409, "last_owner")
            return
        self.expect(response, 204)
        if kind == "companies":
            self.world.companies[key]["deleted"] = True  # soft delete: the rows stay
            return
        if kind == "departments":  # its teams go with it (ON DELETE CASCADE)
            for team in self.world.children("teams", key):
                self.bury("teams", team)
        self.bury(kind, key)

    def bury(self, kind: str, key: str) -> None:
        self.world.gone[key] = {
            "kind": kind,
            "path": self.item_path(kind, key),
            "company": self.world.company_of(kind, key),
            "department": getattr(self.world, kind)[key].get("department"),
        }
        del getattr(self.world, kind)[key]

    @rule(data=st.data())
    def read_deleted(self, data: st.DataObject) -> None:
        """A deleted row is a 404 naming it (or its deleted department, or its hidden company)."""
        key = self.draw_key(data, "gone")
        if key is None:
            return
        grave = self.world.gone[key]
        actor = self.draw_actor(data, grave["company"])
        response = self.call(actor, "GET", grave["path"])
        if not self.world.sees(actor, grave["company"]):
            self.expect(response, 404, NOT_EXIST["companies"])
        elif grave["kind"] == "teams" and grave["department"] not in self.world.departments:
            self.expect(response, 404, NOT_EXIST["departments"])
        else:
            self.expect(response, 404, NOT_EXIST[grave["kind"]])

    # -- children ----------------------------------------------------------------------------

    @rule(data=st.data(), kind=st.sampled_from(["departments", "costcenters", "employees"]))
    def list_children(self, data: st.DataObject, kind: str) -> None:
        company = self.draw_key(data, "companies")
        if company is None:
            return
        actor = self.draw_actor(data, company)
        response = self.call(actor, "GET", f"/companies/{company}/{kind}")
        if not self.world.sees(actor, company):
            self.expect(response, 404, NOT_EXIST["companies"])
            return
        self.expect(response, 200)
        assert {str(item["id"]) for item in response.json()["items"]} == set(self.world.children(kind, company))

    @rule(data=st.data())
    def create_department(self, data: st.DataObject) -> None:
        company = self.draw_key(data, "companies")
        if company is None:
            return
        actor = self.draw_actor(data, company)
        name = fresh_name("department")
        body: dict[str, Any] = {"name": name}
        if data.draw(st.booleans(), label="smuggle parent"):
            # Refused as an unknown field before anything is looked up: the same 422
            # whether or not the company exists or is visible.
            body["company_id"] = data.draw(st.sampled_from(list(self.world.companies)))
            response = self.call(actor, "POST", f"/companies/{company}/departments", body)
            self.expect(response, 422)
            assert [error["loc"] for error in response.json()["detail"]] == [["body", "company_id"]]
            return
        response = self.call(actor, "POST", f"/companies/{company}/departments", body)
        if not self.world.sees(actor, company):
            self.expect(response, 404, NOT_EXIST["companies"])
            return
        self.expect(response, 201)
        assert response.json()["company_id"] == company
        self.world.departments[response.json()["id"]] = {"company": company, "name": name}

    @rule(data=st.data())
    def create_team(self, data: st.DataObject) -> None:
        department = self.draw_key(data, "departments")
        if department is None:
            return
        company = self.world.departments[department]["company"]
        actor = self.draw_actor(data, company)
        if data.draw(st.booleans(), label="under another company"):
            company = data.draw(st.sampled_from(list(self.world.companies)))
        name = fresh_name("team")
        response = self.call(actor, "POST", f"/companies/{company}/departments/{department}/teams", {"name": name})
        if not self.world.sees(actor, company):
            self.expect(response, 404, NOT_EXIST["companies"])
        elif self.world.departments[department]["company"] != company:
            self.expect(response, 404, NOT_EXIST["departments"])
        else:
            self.expect(response, 201)
            self.world.teams[response.json()["id"]] = {"department": department, "name": name}

    @rule(data=st.data(), code=st.sampled_from(CODES))
    def create_costcenter(self, data: st.DataObject, code: str) -> None:
        company = self.draw_key(data, "companies")
        if company is None:
            return
        actor = self.draw_actor(data, company)
        name = fresh_name("costcenter")
        response = self.call(actor, "POST", f"/companies/{company}/costcenters", {"code": code, "name": name})
        if not self.world.sees(actor, company):
            self.expect(response, 404, NOT_EXIST["companies"])
        elif any(row["code"] == code for row in self.world.costcenters.values() if row["company"] == company):
            self.expect(response, 409, "integrity:company_costcenter_code_unique")
        else:
            self.expect(response, 201)
            self.world.costcenters[str(response.json()["id"])] = {"company": company, "code": code, "name": name}

    # -- employees: who owns what ------------------------------------------------------------

    @rule(data=st.data(), user=st.sampled_from(USERS), role=st.sampled_from(ROLES))
    def hire(self, data: st.DataObject, user: str, role: str) -> None:
        """Adding an OWNER or ADMIN changes the ``own`` set of that user, within one tenant."""
        company = self.draw_key(data, "companies")
        if company is None:
            return
        actor = self.draw_actor(data, company)
        body = {"user_id": user, "type": role, "hired_at": "2024-02-01"}
        response = self.call(actor, "POST", f"/companies/{company}/employees", body)
        if not self.world.sees(actor, company):
            self.expect(response, 404, NOT_EXIST["companies"])
        elif any(row["company"] == company and row["user"] == user for row in self.world.employees.values()):
            self.expect(response, 409, "integrity:employee_company_user_unique")
        else:
            self.expect(response, 201)
            self.world.employees[response.json()["id"]] = {"company": company, "user": user, "role": role}

    @rule(data=st.data(), role=st.sampled_from(ROLES))
    def change_role(self, data: st.DataObject, role: str) -> None:
        key = self.draw_key(data, "employees")
        if key is None:
            return
        actor = self.draw_actor(data, self.world.company_of("employees", key))
        missing = self.missing_code(actor, "employees", key)
        response = self.call(actor, "PATCH", self.item_path("employees", key), {"type": role})
        if missing:
            self.expect(response, 404, missing)
            return
        if role != "OWNER" and self.is_last_owner(key):
            self.expect(response, 422)  # the demo's hook: a company keeps an owner
            return
        self.expect(response, 200)
        self.world.employees[key]["role"] = role

    def is_last_owner(self, key: str) -> bool:
        """The demo refuses to demote or remove the only OWNER of a company (``testproject.api`` hooks)."""
        employee = self.world.employees[key]
        if employee["role"] != "OWNER":
            return False
        owners = [
            e for e in self.world.employees.values() if e["company"] == employee["company"] and e["role"] == "OWNER"
        ]
        return len(owners) == 1

    # -- wrong parents and made-up ids -----------------------------------------------------------

    @rule(data=st.data(), kind=st.sampled_from(["departments", "costcenters", "employees"]))
    def read_under_another_company(self, data: st.DataObject, kind: str) -> None:
        """A real child id under a company that is not its parent: 404 naming the child (or the company)."""
        key = self.draw_key(data, kind)
        company = self.draw_key(data, "companies")
        if key is None or company is None or getattr(self.world, kind)[key]["company"] == company:
            return
        actor = self.draw_actor(data, company)
        response = self.call(actor, "GET", PATHS[kind].format(company=company, key=key))
        code = NOT_EXIST["companies"] if not self.world.sees(actor, company) else NOT_EXIST[kind]
        self.expect(response, 404, code)

    @rule(data=st.data())
    def made_up_company(self, data: st.DataObject) -> None:
        actor = self.draw_actor(data)
        made_up = uuid.UUID(int=data.draw(st.integers(0, 2**128 - 1), label="uuid"), version=4)
        self.expect(self.call(actor, "GET", f"/companies/{made_up}/departments"), 404, NOT_EXIST["companies"])

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        STATS["steps checked"] += 1
        assert database_snapshot() == self.world.snapshot()


@pytest.mark.django_db
def test_no_interleaving_of_calls_crosses_a_tenant_or_an_own_set(
    request: pytest.FixtureRequest, client: TestClient
) -> None:
    """Would fail if any filter were dropped: e.g. with the tenant condition removed from
    ``company_objects_filter``, a ``list_companies`` by one tenant returns the other's
    companies (and ``read`` a 200 where the model says 404); with the ``own`` condition
    removed, an ``own`` caller reads companies it does not own; with a child route not
    resolving its ancestors, ``read_under_another_company`` gets a 200.
    """
    profile = PROFILES[PROFILE]
    TenantIsolation.client = client
    STATS.clear()
    run_state_machine_as_test(
        TenantIsolation,
        settings=settings(
            max_examples=profile["max_examples"],
            stateful_step_count=profile["stateful_step_count"],
            derandomize=profile["derandomize"],
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert STATS["examples"] >= profile["max_examples"]
    statuses = {key.split()[1]: value for key, value in sorted(STATS.items()) if key.startswith("status")}
    record(
        request.config,
        f"tenant isolation property ({PROFILE}): {STATS['examples']} examples, {STATS['steps checked']} states "
        f"checked against the model, {STATS['requests']} requests {statuses}",
    )

"""Every module under docs_src/ runs, and does what its page says it does.

Each module is loaded as a real module (pydantic resolves annotations through
``sys.modules``), its app mounted in a ``TestClient`` that shares the test's database
transaction, and called with real tokens signed by the demo's key.
"""

from __future__ import annotations

import datetime
import gc
import importlib.util
import json
import logging
import re
import sys
import time
import types
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import Permission, User
from django.core.signals import request_finished, request_started
from django.test.utils import CaptureQueriesContext
from django.utils.module_loading import import_string
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient

from djfapi import checks
from djfapi.checks import read_replica_messages
from djfapi.errors import install_error_handlers
from djfapi.live import listeners
from djfapi.live.models import ChangeEvent
from djfapi.ops.collector import apply_gc_threshold
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from djfapi.utils.fastapi_django import request_signalling
from testproject.business.models import Company, CompanyDepartment, CompanyDepartmentTeam, Employee
from tests.helpers import OTHER_TENANT, TENANT, USER, auth

ROOT = Path(__file__).resolve().parent.parent
DOCS_SRC = ROOT / "docs_src"
READ_ANY = ["business.companies.read.any"]
ReadAny = Annotated[Access, Security(JWTToken(), scopes=READ_ANY)]
_loaded: dict[str, types.ModuleType] = {}


def load(name: str, *, fresh: bool = False) -> types.ModuleType:
    """``docs_src/<name>.py`` as a module (once per session unless ``fresh``)."""
    if name in _loaded and not fresh:
        return _loaded[name]
    module_name = "docs_src_" + name.replace("/", "_")
    spec = importlib.util.spec_from_file_location(module_name, DOCS_SRC / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    _loaded[name] = module
    return module


@pytest.fixture
def connect(shared_connection: None) -> Iterator[Callable[[FastAPI], TestClient]]:
    """A ``TestClient`` for an example's app, on the test's database transaction."""
    clients: list[TestClient] = []

    def make(app: FastAPI) -> TestClient:
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_every_docs_src_module_has_a_test() -> None:
    """Here, unless another test module runs its page's examples (tests/test_tokens.py: docs_src/tokens)."""
    claimed = {
        match.group(1)
        for other in Path(__file__).parent.glob("test_*.py")
        if other.name != Path(__file__).name
        for match in re.finditer(r'docs_src"?\s*/\s*"?(\w+)', other.read_text())
    }
    modules = {str(path.relative_to(DOCS_SRC))[:-3] for path in DOCS_SRC.rglob("*.py")}
    source = Path(__file__).read_text()
    untested = {name for name in modules if f'load("{name}"' not in source and name.split("/")[0] not in claimed}
    assert not untested, f"docs_src modules without a test: {sorted(untested)}"


# -- index ----------------------------------------------------------------------------------


def test_index_example_serves_the_routes_the_page_lists() -> None:
    app = load("index/example").app
    methods = {path: sorted(set(item) - {"options"}) for path, item in app.openapi()["paths"].items()}
    assert methods == {
        "/companies": ["get", "post"],
        "/companies/{company_id}": ["delete", "get", "patch", "put"],
        "/companies/{company_id}/departments": ["get", "post"],
        "/companies/{company_id}/departments/{department_id}": ["delete", "get"],
    }


# -- concepts -------------------------------------------------------------------------------


def test_print_plan_prints_what_concepts_shows(capsys: pytest.CaptureFixture[str]) -> None:
    load("concepts/print_plan", fresh=True)
    printed = capsys.readouterr().out
    page = (ROOT / "docs/concepts.md").read_text()
    shown = re.search(r'print_plan\.py"\n```\n\n[^\n]*\n\n```text\n(.*?)```', page, re.S)
    assert shown and shown.group(1) == printed


def test_query_plan_function_adds_the_prefetch_and_queries_do_not_grow(connect: Any) -> None:
    example = load("concepts/query_plan")
    departments = example.companies.children[0]
    assert "prefetch_related: teams" in str(departments.query_plan)
    client = connect(example.app)
    company = Company.objects.create(tenant_id=TENANT, name="Acme")

    def count_queries(departments: int) -> int:
        for index in range(departments):
            department = CompanyDepartment.objects.create(company=company, name=f"D{index}")
            CompanyDepartmentTeam.objects.create(department=department, name="T", size=2)
        from django.db import connection

        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/companies/{company.pk}/departments", headers=auth(scopes=READ_ANY))
        assert response.status_code == 200, response.text
        assert {item["team_count"] for item in response.json()["items"]} == {1}
        return len(queries)

    assert count_queries(1) == count_queries(9)


def test_signalling_sends_the_request_signals_around_the_call(connect: Any) -> None:
    example = load("concepts/signalling")
    Company.objects.create(tenant_id=TENANT, name="Acme")
    signals: list[str] = []

    def started(**_: Any) -> None:
        signals.append("started")

    def finished(**_: Any) -> None:
        signals.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        response = connect(example.app).get("/stats")
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert response.json() == {"companies": 1}
    assert signals == ["started", "finished"]

    async def not_sync() -> None: ...

    with pytest.raises(TypeError, match="sync callables only"):
        request_signalling(not_sync)


@pytest.fixture
def complete(connect: Any) -> TestClient:
    return connect(load("concepts/complete").app)


def test_complete_example_creates_three_levels_and_isolates_tenants(complete: TestClient) -> None:
    company = complete.post("/companies", json={"name": "Wayne"}, headers=auth())
    assert company.status_code == 201, company.text
    company_id = company.json()["id"]
    department = complete.post(
        f"/companies/{company_id}/departments", json={"name": "R&D", "budget": "125000.10"}, headers=auth()
    )
    assert department.status_code == 201, department.text
    assert department.json()["budget"] == "125000.10"
    team_path = f"/companies/{company_id}/departments/{department.json()['id']}/teams"
    team = complete.post(team_path, json={"name": "Gadgets", "size": 4}, headers=auth())
    assert team.status_code == 201, team.text

    read = complete.get(f"/companies/{company_id}", headers=auth())
    assert read.json()["departments"][0]["teams"] == [team.json()]
    other = complete.get(f"{team_path}/{team.json()['id']}", headers=auth(tenant=OTHER_TENANT))
    assert other.status_code == 404
    assert other.json()["detail"]["code"] == "not_exist:company"


def test_complete_example_own_scope_and_hidden_salary(complete: TestClient) -> None:
    owned = Company.objects.create(tenant_id=TENANT, name="Mine")
    Company.objects.create(tenant_id=TENANT, name="Not mine")
    Employee.objects.create(company=owned, user_id=USER, type="OWNER", salary="1000.00", hired_at="2020-01-01")
    own_only = auth(scopes=["business.companies.read.own"])

    listed = complete.get("/companies", headers=own_only).json()["items"]
    assert [c["name"] for c in listed] == ["Mine"]
    employees = complete.get(f"/companies/{owned.pk}/employees", headers=own_only).json()["items"]
    assert "salary" not in employees[0]
    with_any = complete.get(f"/companies/{owned.pk}/employees", headers=auth()).json()["items"]
    assert with_any[0]["salary"] == "1000.00"


def test_complete_example_critical_field_needs_a_critical_token(complete: TestClient) -> None:
    refused = complete.post("/companies", json={"name": "V", "is_verified": True}, headers=auth())
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "critical_token_required"
    accepted = complete.post("/companies", json={"name": "V", "is_verified": True}, headers=auth(critical=True))
    assert accepted.status_code == 201
    assert accepted.json()["is_verified"] is True


# -- options --------------------------------------------------------------------------------


def test_custom_routes_take_the_node_security_and_filters(connect: Any) -> None:
    client = connect(load("options/custom_route").app)
    mine = Company.objects.create(tenant_id=TENANT, name="Acme")
    Company.objects.create(tenant_id=TENANT, name="Initech")
    theirs = Company.objects.create(tenant_id=OTHER_TENANT, name="Another Acme")

    verified = client.post(f"/companies/{mine.pk}/verify", headers=auth())
    assert verified.status_code == 200, verified.text
    assert verified.json() == {"id": str(mine.pk), "name": "Acme", "is_verified": True}
    refused = client.post(f"/companies/{mine.pk}/verify", headers=auth(scopes=READ_ANY))
    assert refused.json()["detail"]["code"] == "required_scope_missing"
    hidden = client.post(f"/companies/{theirs.pk}/verify", headers=auth())
    assert hidden.status_code == 404
    assert client.get("/companies/names?prefix=A", headers=auth(scopes=READ_ANY)).json() == ["Acme"]
    assert client.get("/companies/names", headers=auth(scopes=READ_ANY)).json() == ["Acme", "Initech"]


# -- lists ----------------------------------------------------------------------------------


def test_subclass_filter_hides_inactive_companies_from_every_route(connect: Any) -> None:
    app = FastAPI()
    app.include_router(load("options/subclass").companies.router)
    client = connect(app)
    active = Company.objects.create(tenant_id=TENANT, name="Active")
    inactive = Company.objects.create(tenant_id=TENANT, name="Dormant", status="inactive")
    Company.objects.create(tenant_id=OTHER_TENANT, name="Elsewhere")

    listed = client.get("/companies", headers=auth()).json()["items"]

    assert [item["id"] for item in listed] == [str(active.pk)]
    assert client.get(f"/companies/{inactive.pk}", headers=auth()).status_code == 404


def test_cursor_pages_stay_stable_under_inserts(connect: Any) -> None:
    client = connect(load("lists/cursor").app)
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    for index in range(25):
        Company.objects.create(
            tenant_id=TENANT, name=f"C{index:02}", created_at=start + datetime.timedelta(hours=index)
        )
    headers = auth(scopes=READ_ANY)

    first = client.get("/companies", headers=headers).json()
    assert [c["name"] for c in first["items"]] == [f"C{index:02}" for index in range(24, 4, -1)]
    Company.objects.create(tenant_id=TENANT, name="Newest")
    Company.objects.create(tenant_id=TENANT, name="Oldest", created_at=start - datetime.timedelta(days=1))
    second = client.get(f"/companies?cursor={first['next_cursor']}", headers=headers).json()
    assert [c["name"] for c in second["items"]] == ["C04", "C03", "C02", "C01", "C00", "Oldest"]
    assert second["next_cursor"] is None
    assert client.get("/companies?cursor=forged", headers=headers).status_code == 422
    assert client.get("/companies?offset=20", headers=headers).status_code == 422


# -- schemas --------------------------------------------------------------------------------


def test_schema_reads_through_relations_and_functions(django_assert_num_queries: Any, db: None) -> None:
    example = load("schemas/reading")
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    department = CompanyDepartment.objects.create(company=company, name="R&D", budget="10.50")
    CompanyDepartmentTeam.objects.create(department=department, name="Gadgets", size=4)
    employee = Employee.objects.create(
        company=company, user_id="bruce", department=department, salary="98000.00", hired_at="2024-01-02"
    )
    card = example.employee_card(Employee.objects.get(pk=employee.pk))
    assert card.model_dump() == {
        "user_id": "bruce",
        "company_name": "Acme",
        "department": {"title": "R&D", "budget": Decimal("10.50"), "teams": [{"name": "Gadgets", "size": 4}]},
        "display_name": "bruce (Member)",
        "salary": Decimal("98000.00"),
    }


def test_schema_as_a_router_node_joins_prefetches_and_hides(connect: Any) -> None:
    from djfapi.routing.django import DjangoRouterSchema, SecurityScopes

    example = load("schemas/reading")
    employees = DjangoRouterSchema(
        name="employees",
        model=Employee,
        get=example.EmployeeCard,
        delete=False,
        security=JWTToken(),
        security_scopes=SecurityScopes(get=["business.companies.read.any", "business.companies.read.own"]),
    )
    plan = str(employees.query_plan)
    assert "select_related: company, department" in plan and "prefetch: department__teams" in plan, plan
    app = FastAPI()
    app.include_router(employees.router)
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    Employee.objects.create(company=company, user_id=USER, type="OWNER", salary="1.00", hired_at="2024-01-02")
    own = connect(app).get("/employees", headers=auth(scopes=["business.companies.read.own"]))
    assert own.status_code == 200, own.text
    assert "salary" not in own.json()["items"][0]


# -- writes ---------------------------------------------------------------------------------


def test_hook_keeps_the_last_owner(connect: Any) -> None:
    client = connect(load("writes/hooks").app)
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    first, second = (
        Employee.objects.create(company=company, user_id=user, type="OWNER", hired_at="2024-01-02")
        for user in ("bruce", "lucius")
    )
    path = f"/companies/{company.pk}/employees"

    demoted = client.patch(f"{path}/{first.pk}", json={"type": "MEMBER"}, headers=auth())
    assert demoted.status_code == 200, demoted.text
    refused = client.patch(f"{path}/{second.pk}", json={"type": "MEMBER"}, headers=auth())
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "type"]
    assert refused.json()["detail"][0]["msg"].endswith("a company keeps at least one owner")
    assert Employee.objects.get(pk=second.pk).type == "OWNER"


# -- security -------------------------------------------------------------------------------


def test_access_dependency_reports_the_matched_scope(connect: Any) -> None:
    client = connect(load("security/dependency").app)

    assert client.get("/whoami", headers=auth()).json() == {
        "user": USER,
        "tenant": TENANT,
        "selector": "any",
        "may_create": True,
    }
    own = client.get("/whoami", headers=auth(scopes=["business.companies.read.own"])).json()
    assert own["selector"] == "own" and own["may_create"] is False
    assert client.get("/whoami").json()["detail"]["code"] == "token_missing"
    refused = client.get("/whoami", headers=auth(scopes=["business.companies.create"]))
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "required_scope_missing"


def test_django_permissions_are_the_scopes(connect: Any) -> None:
    client = connect(load("security/permissions").app)
    Company.objects.create(tenant_id=TENANT, name="Acme")
    reader = User.objects.create(username="reader")
    reader.user_permissions.add(Permission.objects.get(codename="companies.read.any"))
    nobody = User.objects.create(username="nobody")
    retired = User.objects.create(username="retired", is_active=False)
    retired.user_permissions.add(Permission.objects.get(codename="companies.read.any"))

    def get(user: str) -> Any:
        return client.get("/companies", headers=auth(user=user, scopes=[]))

    assert [c["name"] for c in get(str(reader.pk)).json()["items"]] == ["Acme"]
    assert get(str(nobody.pk)).json()["detail"]["code"] == "required_scope_missing"
    assert get(str(retired.pk)).json()["detail"]["code"] == "user_inactive"
    assert get("999999").json()["detail"]["code"] == "user_unknown"


# -- errors ---------------------------------------------------------------------------------


def test_raised_errors_get_the_documented_body(connect: Any) -> None:
    client = connect(load("errors/raising").app)
    Company.objects.create(tenant_id=TENANT, name="Acme")
    Company.objects.create(tenant_id=TENANT, name="Wayne", is_verified=True)
    page = (ROOT / "docs/errors.md").read_text()
    documented = re.search(r"`POST /claims/Nobody` answers 404 with\n`(.*?)`", page, re.S)
    assert documented

    missing = client.post("/claims/Nobody", headers=auth())
    assert missing.status_code == 404
    assert missing.json() == json.loads(documented.group(1))
    conflict = client.post("/claims/Wayne", headers=auth())
    assert conflict.status_code == 409 and conflict.json()["detail"]["code"] == "company_verified"
    assert client.post("/claims/Acme", headers=auth()).status_code == 200
    assert client.post("/claims/Acme", headers=auth(tenant=OTHER_TENANT)).status_code == 404


# -- live -----------------------------------------------------------------------------------


def test_publish_records_the_updates_in_the_outbox(db: None) -> None:
    example = load("live/publish")
    companies = [Company.objects.create(tenant_id=TENANT, name=name) for name in ("A", "B")]
    before = ChangeEvent.objects.count()

    example.deactivate([c.pk for c in companies])

    assert set(Company.objects.values_list("status", flat=True)) == {"inactive"}
    events = ChangeEvent.objects.order_by("id")[before:]
    assert [(e.action, e.object_id) for e in events] == [("UPDATE", str(c.pk)) for c in companies]


# -- openapi (the page is another's; its example runs here too) --------------------------------


def test_serve_docs_serves_the_pages_and_the_api(connect: Any) -> None:
    app = load("openapi/serve_docs").app
    client = connect(app)

    assert client.get("/items/3").json() == {"item_id": 3}
    for url in ("/docs", "/redoc"):
        page = client.get(url)
        assert page.status_code == 200 and "/docs-assets/" in page.text, url
    assert set(app.openapi()["paths"]) == {"/items/{item_id}"}


# -- deployment -----------------------------------------------------------------------------


def test_asgi_module_serves_health_request_ids_and_the_api(connect: Any) -> None:
    client = connect(load("deployment/asgi").app)

    assert client.get("/health").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.headers["x-request-id"]
    assert client.get("/companies").json()["detail"]["code"] == "token_missing"
    assert client.get("/companies", headers=auth()).status_code == 200


def _pem(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return public.decode()


def test_settings_raise_the_collectors_young_threshold(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setenv("JWT_PUBLIC_KEY_2026_11", "unused")
    monkeypatch.setenv("JWT_PUBLIC_KEY_2026_05", "unused")
    settings.DJFAPI = load("deployment/settings", fresh=True).DJFAPI
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert checks.check_gc_threshold() == []
        assert apply_gc_threshold() == (10_000, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_settings_rotate_keys_by_kid(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    new, old, stranger = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3))
    monkeypatch.setenv("JWT_PUBLIC_KEY_2026_11", _pem(new))
    monkeypatch.setenv("JWT_PUBLIC_KEY_2026_05", _pem(old))
    settings.DJFAPI = load("deployment/settings", fresh=True).DJFAPI
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/me")
    def me(access: ReadAny) -> str:
        return access.user_id

    def call(key: rsa.RSAPrivateKey, kid: str, issuer: str = "https://auth.example.com") -> Any:
        now = int(time.time())
        claims = {"iss": issuer, "sub": "u", "ten": "t", "aud": READ_ANY, "iat": now, "exp": now + 60}
        signed = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        return TestClient(app).get("/me", headers={"Authorization": f"Bearer {signed}"})

    assert call(new, "2026-11").json() == "u"
    assert call(old, "2026-05").json() == "u"
    assert call(stranger, "2026-11").json()["detail"]["code"] == "token_signature_invalid"
    assert call(new, "2027-01").json()["detail"]["code"] == "token_key_unknown"
    assert call(new, "2026-11", issuer="https://elsewhere").json()["detail"]["code"] == "token_issuer_invalid"


def test_logging_formats_json_lines() -> None:
    config = load("deployment/logging").LOGGING
    formatter = import_string(config["formatters"]["json"]["()"])()
    record = logging.LogRecord("djfapi.access", logging.INFO, __file__, 1, "GET /companies 200", None, None)

    line = json.loads(formatter.format(record))

    assert (line["logger"], line["message"]) == ("djfapi.access", "GET /companies 200")
    assert config["handlers"]["stdout"]["stream"] == "ext://sys.stdout"
    assert config["loggers"]["djfapi"] == {"handlers": ["stdout"], "level": "INFO"}


# -- deploying ---------------------------------------------------------------------------------


def test_deploying_settings_pass_the_checks_and_take_listen_past_pgbouncer(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "secret")
    monkeypatch.setenv("JWT_PUBLIC_KEY", "a PEM public key")
    module = load("deploying/settings", fresh=True)

    assert read_replica_messages(module.DATABASES, module.DATABASE_ROUTERS, module.DJFAPI) == []
    assert read_replica_messages(module.DATABASES, [], module.DJFAPI)[0].id == "djfapi.W002"  # without the router
    assert module.DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert "options" not in module.DATABASES["default"]["OPTIONS"]

    # The listener keeps Django's connection parameters but for those the DSN names.
    django_params = listeners.postgresql_params()
    settings.DJFAPI = {**settings.DJFAPI, "LIVE_LISTEN_DSN": module.DJFAPI["LIVE_LISTEN_DSN"]}
    params = listeners.postgresql_params()
    assert (params["host"], params["port"]) == ("db-primary.internal", "5432")
    assert {k: v for k, v in params.items() if k not in ("host", "port")} == {
        k: v for k, v in django_params.items() if k not in ("host", "port")
    }


def test_public_reads_and_role_scopes(connect: Any) -> None:
    from djfapi.security.tokens import mint_token
    from tests.factories import make_company

    client = connect(load("security/public").app)
    shown = make_company(TENANT, name="Shown", is_verified=True)
    make_company(TENANT, name="Unverified")
    assert [c["name"] for c in client.get("/companies").json()["items"]] == ["Shown"]
    assert client.patch(f"/companies/{shown.pk}", json={"name": "X"}).status_code == 401
    editor = mint_token(tenant=TENANT, user=USER, scopes=[], roles=["editor"])
    answer = client.patch(f"/companies/{shown.pk}", json={"name": "X"}, headers={"Authorization": f"Bearer {editor}"})
    assert answer.status_code == 200
    stranger = mint_token(tenant=TENANT, user=USER, scopes=[], roles=["viewer"])
    answer = client.patch(f"/companies/{shown.pk}", json={"name": "Y"}, headers={"Authorization": f"Bearer {stranger}"})
    assert answer.status_code == 403


def test_rate_limits_example(connect: Any) -> None:
    from django.conf import settings
    from django.test import override_settings

    from djfapi.ratelimit import limiter

    limiter.reset()
    client = connect(load("ratelimits/declare").app)
    with override_settings(DJFAPI={**settings.DJFAPI, "RATE_LIMITS_ENABLED": True}):
        answers = [client.post("/companies", json={"name": f"C{n}"}, headers=auth()) for n in range(11)]
        assert [a.status_code for a in answers] == [201] * 10 + [429]
        assert answers[0].headers["ratelimit-policy"] == (
            '"companies.post";q=10;w=60, "companies.post.1";q=200;w=86400'
        )
        assert client.get("/companies", headers=auth()).headers["ratelimit-policy"] == '"companies.get";q=100;w=60'
    limiter.reset()


def test_auth_example_mounts_the_token_routes() -> None:
    paths = set(load("auth/app").app.openapi()["paths"])
    assert {"/auth/token", "/auth/refresh", "/auth/logout", "/auth/revoke", "/auth/jwks.json"} <= paths
    assert "/companies" in paths

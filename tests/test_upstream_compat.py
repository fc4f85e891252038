"""Code written for upstream djfapi 0.0.70 runs with only its ``djdantic`` imports changed.

``tests/upstream_app`` is such an application: upstream README's router tree, the
hand-written routes and ASGI module of a real upstream project, upstream's settings
(``JWT_PUBLIC_KEY``, ``JWT_ISSUER``, ES512 tokens). Every shim warns with a
``DeprecationWarning``; the app answers with djfapi's behaviour (201 on create, SPEC
§7 error bodies, 422 on unknown parameters), which ``docs/upstream.md`` lists.
"""

from __future__ import annotations

import importlib
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import jwt
import pydantic
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.routing.django import DjangoRouterSchema
from testproject.business.models import Company, CompanyCostcenter, Employee

PRIVATE = ec.generate_private_key(ec.SECP521R1())
PUBLIC_PEM = (
    PRIVATE.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
ISSUER = "upstream-auth"
TENANT = "upstream-tenant"
ALL = [
    "business.companies.read.any",
    "business.companies.create",
    "business.companies.update.any",
    "business.companies.delete.any",
]


def token(scopes: list[str] = ALL, user: str = "u1", tenant: str = TENANT, key: Any = PRIVATE) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": user, "ten": tenant, "aud": scopes, "iat": now, "exp": now + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm='ES512')}"}


def load_app() -> tuple[Any, list[str]]:
    """Import the upstream app afresh, recording the deprecation warnings it raises."""
    for name in [name for name in sys.modules if name.startswith(("tests.upstream_app", "djfapi.handlers"))]:
        del sys.modules[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module("tests.upstream_app.asgi")
    return module.app, [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]


@pytest.fixture
def upstream(settings: Any, shared_connection: None) -> Iterator[tuple[TestClient, list[str]]]:
    # upstream's settings, and none of djfapi's JWT keys
    settings.DJFAPI = {key: value for key, value in settings.DJFAPI.items() if not key.startswith("JWT_")}
    settings.JWT_PUBLIC_KEY = PUBLIC_PEM
    settings.JWT_ISSUER = ISSUER
    app, warned = load_app()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with TestClient(app) as client:
            yield client, warned


def test_every_shim_in_use_says_so(upstream: tuple[TestClient, list[str]]) -> None:
    client, warned = upstream
    client.get("/companies", headers=token())  # the settings shims warn on first use
    expected = [
        "djfapi.handlers.error",
        "JWTToken(algorithm=...)",
        "JWTToken(name=...)",
        "JWTToken(auto_error=...)",
        "djfapi.schemas.Pagination",
        "djfapi.utils.fastapi.depends_pagination",
    ]
    for shim in expected:
        assert any(message.startswith(shim) for message in warned), f"no DeprecationWarning for {shim}: {warned}"
    assert all("docs/upstream.md" in message for message in warned)


def test_the_readme_router_tree_serves_with_djfapi_behaviour(upstream: tuple[TestClient, list[str]]) -> None:
    client, _ = upstream
    created = client.post(
        "/companies", json={"name": "Acme", "costcenters": [{"code": "A", "name": "Main"}]}, headers=token()
    )
    assert created.status_code == 201, created.text  # upstream answered 200
    company = created.json()
    assert company["name"] == "Acme" and [c["code"] for c in company["costcenters"]] == ["A"]
    assert client.get("/companies", headers=token()).json()["items"] == [company]
    path = f"/companies/{company['id']}"
    assert client.patch(path, json={"name": "Acme 2"}, headers=token()).json()["name"] == "Acme 2"
    department = client.post(f"{path}/departments", json={"name": "Sales"}, headers=token())
    assert department.status_code == 201, department.text
    team = client.post(f"{path}/departments/{department.json()['id']}/teams", json={"name": "A"}, headers=token())
    assert team.status_code == 201, team.text
    # the README's own-companies filter: an ADMIN employee sees the company, a stranger does not
    Employee.objects.create(company_id=company["id"], user_id="admin", type="ADMIN", hired_at="2026-01-01")
    own = ["business.companies.read.own"]
    assert client.get(path, headers=token(own, user="admin")).status_code == 200
    assert client.get(path, headers=token(own, user="stranger")).status_code == 404
    # djfapi's answers where upstream's differed
    assert client.get("/companies?nmae=x", headers=token()).status_code == 422
    assert client.get("/companies", headers=token(["other.scope"])).json()["detail"]["code"] == "required_scope_missing"
    assert client.get("/companies").status_code == 401
    missing = client.get(f"/companies/{uuid.uuid4()}", headers=token())
    assert missing.status_code == 404 and missing.json()["detail"]["code"] == "not_exist:company"
    twice = {"name": "Twice", "costcenters": [{"code": "X", "name": "a"}, {"code": "X", "name": "b"}]}
    conflict = client.post("/companies", json=twice, headers=token())
    assert conflict.status_code == 409  # upstream: 420
    assert conflict.json()["detail"]["code"] == "integrity:company_costcenter_code_unique"
    assert client.get("/companies/aggregate/count/id", headers=token()).status_code == 404  # off unless configured


def test_tokens_are_checked_with_upstreams_settings(upstream: tuple[TestClient, list[str]]) -> None:
    client, _ = upstream
    assert client.get("/companies", headers=token()).status_code == 200
    other_key = ec.generate_private_key(ec.SECP521R1())
    assert client.get("/companies", headers=token(key=other_key)).status_code == 401
    now = int(time.time())
    wrong_issuer = jwt.encode({"iss": "else", "sub": "u", "ten": TENANT, "aud": ALL, "exp": now + 60}, PRIVATE, "ES512")
    assert client.get("/companies", headers={"Authorization": f"Bearer {wrong_issuer}"}).status_code == 401


def test_the_hand_written_routes_run_on_the_shims(upstream: tuple[TestClient, list[str]]) -> None:
    client, _ = upstream
    for name in ("Beta", "Alpha", "Gamma"):
        client.post("/companies", json={"name": name}, headers=token())
    Company.objects.create(tenant_id="someone-else", name="Hidden")
    listed = client.get("/manage/companies?limit=2", headers=token())
    assert listed.status_code == 200, listed.text
    assert [c["name"] for c in listed.json()["companies"]] == ["Alpha", "Beta"]  # default_order_by=['name']
    page_two = client.get("/manage/companies?limit=2&offset=2&order_by=-name", headers=token())
    assert [c["name"] for c in page_two.json()["companies"]] == ["Alpha"]
    assert client.get("/manage/companies?order_by=nope", headers=token()).status_code == 422
    assert client.get("/manage/companies?limit=51", headers=token()).status_code == 422

    beta = Company.objects.get(name="Beta")
    renamed = client.patch(f"/manage/companies/{beta.pk}/name", json={"name": "Beta 2"}, headers=token())
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Beta 2" and Company.objects.get(pk=beta.pk).name == "Beta 2"

    Company.objects.filter(pk=beta.pk).update(name="Locked")
    locked = client.patch(f"/manage/companies/{beta.pk}/name", json={"name": "X"}, headers=token())
    assert locked.status_code == 403
    assert locked.json()["detail"]["code"] == "company_locked"
    assert locked.json()["detail"]["message"] == "This company cannot be renamed."

    hidden = Company.objects.get(name="Hidden")
    assert client.patch(f"/manage/companies/{hidden.pk}/name", json={"name": "X"}, headers=token()).status_code == 404
    assert client.get("/manage/companies/whoami").json() == {"user_id": None}  # auto_error=False
    assert client.get("/manage/companies/whoami", headers=token(user="u7")).json() == {"user_id": "u7"}


def test_transfer_to_orm_applies_field_scopes_and_rolls_back(shared_connection: None) -> None:
    from djfapi.errors import PermissionDenied
    from djfapi.schemas import Access, AccessToken
    from djfapi.utils.pydantic_django import TransferAction, transfer_to_orm
    from tests.upstream_app.schemas import request

    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    access = Access(
        token=AccessToken(sub="u", ten=TENANT, aud=[], exp=int(time.time()) + 60), granted_scopes=frozenset()
    )
    body = request.CompanyUpdate(name="New", costcenters=[{"code": "A", "name": "a"}])
    with pytest.warns(DeprecationWarning, match="transfer_to_orm"):
        transfer_to_orm(body, company, action=TransferAction.SYNC, access=access)
    assert CompanyCostcenter.objects.get(company=company).code == "A"
    assert Company.objects.get(pk=company.pk).name == "New"

    from djfapi import Field

    class Guarded(BaseModel):
        name: str = Field(scopes=["business.companies.update.any"])

    with pytest.warns(DeprecationWarning), pytest.raises(PermissionDenied):
        transfer_to_orm(Guarded(name="Nope"), company, access=access)
    assert Company.objects.get(pk=company.pk).name == "New"


def test_list_given_as_a_list_response_is_unwrapped_with_a_warning() -> None:
    from tests.upstream_app.schemas import response

    class CompanyList(pydantic.BaseModel):
        items: list[response.Company]

    with pytest.warns(DeprecationWarning, match=r"list=CompanyList \(a list response\).*list=Company"):
        node = DjangoRouterSchema(name="companies", model=Company, get=response.Company, list=CompanyList)
    assert node.list_schema is response.Company
    plain = DjangoRouterSchema(name="companies", model=Company, get=response.Company, list=response.Company)
    assert plain.list_schema is response.Company


def test_upstream_exceptions_and_error_schema_keep_their_meaning() -> None:
    from djfapi import errors
    from djfapi.schemas import Error

    with pytest.warns(DeprecationWarning):
        from djfapi.exceptions import AccessError, AuthError, ConstraintError, PreconditionError, ValidationError

        cases = [
            (AccessError(detail="no"), errors.PermissionDenied, 403),
            (AuthError(), errors.AuthenticationFailed, 401),
            (ConstraintError(detail={"code": "x"}), errors.Conflict, 400),
            (ValidationError(detail=Error(code="bad")), errors.APIError, 400),
            (PreconditionError(), errors.APIError, 412),
        ]
    for raised, base, status in cases:
        assert isinstance(raised, base) and raised.status_code == status
    with pytest.warns(DeprecationWarning, match=r"Error\(type=\.\.\., code=\.\.\., message=\.\.\.\)"):
        error = Error(code="bad", message="Bad.")
    assert error.detail.code == "bad" and error.detail.type == "error"
    assert Error(detail={"type": "t", "code": None, "message": None}).detail.type == "t"  # djfapi's own form

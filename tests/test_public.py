"""Security per method: ``public=[...]`` leaves chosen methods open to anonymous callers
while the others keep their scopes; and roles (``rls``) granting scopes through a mapping.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Q
from django.test import override_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi import BaseModel
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from djfapi.security.tokens import mint_token
from tests.helpers import OTHER_TENANT, TENANT
from tests.testapp.models import Book, Shelf

READ = "lib.shelves.read.any"
WRITE = "lib.shelves.update.any"
CREATE = "lib.shelves.create"
pytestmark = pytest.mark.usefixtures("shared_connection")


class ShelfOut(BaseModel):
    code: str
    name: str


class ShelfWrite(BaseModel):
    code: str
    name: str


class BookOut(BaseModel):
    id: int
    title: str


def public_shelves(access: Access | None) -> Q:
    """Anonymous callers see the shelves named 'Public ...' of every tenant; token holders their tenant's."""
    if access is None:
        return Q(name__startswith="Public")
    return Q(tenant_id=access.tenant_id)


def shelves(**options: Any) -> DjangoRouterSchema:
    options.setdefault("public", ["get"])
    options.setdefault("objects_filter", public_shelves)
    return DjangoRouterSchema(
        name="shelves",
        model=Shelf,
        get=ShelfOut,
        create=ShelfWrite,
        update=ShelfWrite,
        security=JWTToken(),
        security_scopes=SecurityScopes(get=[READ], post=[CREATE], patch=[WRITE], delete=[WRITE]),
        **options,
    )


def serve(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    app.include_router(tree.router)
    return TestClient(app)


def bearer(scopes: list[str], tenant: str = TENANT, roles: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(tenant=tenant, user='u1', scopes=scopes, roles=roles or [])}"}


@pytest.fixture
def rows() -> None:
    Shelf.objects.create(code="p1", tenant_id=TENANT, name="Public one")
    Shelf.objects.create(code="p2", tenant_id=OTHER_TENANT, name="Public two")
    Shelf.objects.create(code="s1", tenant_id=TENANT, name="Staff only")


def test_anonymous_reads_through_the_filter_with_no_access(rows: None) -> None:
    client = serve(shelves())
    page = client.get("/shelves")
    assert page.status_code == 200
    assert sorted(item["code"] for item in page.json()["items"]) == ["p1", "p2"]
    assert client.get("/shelves/p1").status_code == 200
    assert client.get("/shelves/s1").status_code == 404  # hidden by the anonymous filter


def test_writes_keep_their_scopes(rows: None) -> None:
    client = serve(shelves())
    assert client.post("/shelves", json={"code": "x", "name": "Public x"}).status_code == 401
    assert client.patch("/shelves/p1", json={"name": "Public renamed"}).status_code == 401
    assert client.delete("/shelves/p1").status_code == 401
    assert client.post("/shelves", json={"code": "x", "name": "x"}, headers=bearer([READ])).status_code == 403
    assert client.post("/shelves", json={"code": "x", "name": "x"}, headers=bearer([CREATE])).status_code == 201


def test_a_token_on_a_public_route_reads_as_its_holder(rows: None) -> None:
    client = serve(shelves())
    page = client.get("/shelves", headers=bearer([READ]))
    assert sorted(item["code"] for item in page.json()["items"]) == ["p1", "s1"]
    # Without the scope it is no 403 on a public route: the holder still reads (access.scope is None).
    page = client.get("/shelves", headers=bearer([], tenant=OTHER_TENANT))
    assert [item["code"] for item in page.json()["items"]] == ["p2"]


def test_an_invalid_token_on_a_public_route_is_still_a_401(rows: None) -> None:
    client = serve(shelves())
    response = client.get("/shelves", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "token_invalid"


def test_public_get_opens_list_but_not_the_feed_nor_writes_in_openapi(rows: None) -> None:
    client = serve(shelves())
    paths = client.get("/openapi.json").json()["paths"]
    listed = paths["/shelves"]["get"]
    assert listed["security"] == [{"JWTToken": [READ]}, {}]
    assert "403" not in listed["responses"]
    assert "Public" in listed["description"]
    created = paths["/shelves"]["post"]
    assert created["security"] == [{"JWTToken": [CREATE]}]
    assert "403" in created["responses"]


def test_public_list_only(rows: None) -> None:
    client = serve(shelves(public=["list"]))
    assert client.get("/shelves").status_code == 200
    assert client.get("/shelves/p1").status_code == 401


def test_default_filter_on_a_tenant_model_is_refused() -> None:
    tree = shelves(objects_filter=None)
    with pytest.raises(SchemaDefinitionError, match="objects_filter"):
        tree.router  # noqa: B018


def test_public_writes_on_a_tenant_model_are_refused() -> None:
    with pytest.raises(SchemaDefinitionError, match="tenant or owner"):
        shelves(public=["get", "post"]).router  # noqa: B018


def test_public_needs_security_and_known_entries() -> None:
    with pytest.raises(SchemaDefinitionError, match="not SecurityScopes entries"):
        shelves(public=["read"])
    tree = DjangoRouterSchema(name="books", model=Book, get=BookOut, public=["get"])
    with pytest.raises(SchemaDefinitionError, match="without security"):
        tree.router  # noqa: B018


def test_public_child_under_a_secured_parent_fails_closed(rows: None) -> None:
    """An anonymous caller resolves the parent through the parent's filter with access=None."""
    Book.objects.create(shelf_id="s1", title="Hidden", isbn="1")
    Book.objects.create(shelf_id="p1", title="Shown", isbn="2")
    tree = shelves(
        public=[],
        children=[DjangoRouterSchema(name="books", model=Book, get=BookOut, public=["get"])],
    )
    client = serve(tree)
    assert client.get("/shelves").status_code == 401
    assert [b["title"] for b in client.get("/shelves/p1/books").json()["items"]] == ["Shown"]
    assert client.get("/shelves/s1/books").status_code == 404


def test_public_custom_endpoint_follows_its_entry(rows: None) -> None:
    tree = shelves()

    @tree.endpoint("/count", detail=False)
    def count(access: Access | None) -> dict[str, Any]:
        return {"anonymous": access is None}

    client = serve(tree)
    assert client.get("/shelves/count").json() == {"anonymous": True}
    assert client.get("/shelves/count", headers=bearer([READ])).json() == {"anonymous": False}


# -- roles ------------------------------------------------------------------------------


def test_roles_grant_scopes_through_the_mapping(rows: None) -> None:
    client = serve(shelves(public=[]))
    with override_settings(DJFAPI={**_djfapi(), "ROLE_SCOPES": {"librarian": [READ, WRITE]}}):
        assert client.get("/shelves", headers=bearer([], roles=["librarian"])).status_code == 200
        assert client.get("/shelves", headers=bearer([], roles=["visitor"])).status_code == 403  # not mapped
        assert client.patch("/shelves/p1", json={"name": "Renamed"}, headers=bearer([], roles=["librarian"])).is_success
    assert client.get("/shelves", headers=bearer([], roles=["librarian"])).status_code == 403  # mapping gone


def test_role_scopes_argument_wins_over_the_setting(rows: None) -> None:
    tree = DjangoRouterSchema(
        name="shelves",
        model=Shelf,
        get=ShelfOut,
        delete=False,
        security=JWTToken(role_scopes={"reader": [READ]}),
        security_scopes=SecurityScopes(get=[READ]),
    )
    client = serve(tree)
    assert client.get("/shelves", headers=bearer([], roles=["reader"])).status_code == 200


@pytest.mark.parametrize("mapping", [{"r": "lib.shelves.read.any"}, {"r": ["not-a-scope"]}, ["r"]])
def test_malformed_role_mapping_is_refused(mapping: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="ROLE_SCOPES"):
        JWTToken(role_scopes=mapping).check_configuration()


def _djfapi() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.DJFAPI)

"""Nothing fails silently (SPEC §10): what a user passes that djfapi does not honour is an
error at definition time naming the fix, Enum members count as their values, upstream-style
subclass overrides are honoured or refused, and generated routes answer with djfapi's error
bodies in an app that never called ``install_error_handlers``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Q
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import NotFound
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from testproject.api import router as demo_router
from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment
from tests.factories import make_company, make_department
from tests.helpers import OTHER_TENANT, auth

READ = "business.companies.read.any"
UPDATE = "business.companies.update.any"


def definition_error(build: Callable[[], Any]) -> str:
    with pytest.raises(SchemaDefinitionError) as error:
        build()
    return str(error.value)


class CompanyOut(BaseModel):
    id: Any
    name: str
    status: str


class CompanyWrite(BaseModel):
    name: str


class DepartmentOut(BaseModel):
    id: Any
    name: str
    budget: Decimal


def companies(**options: Any) -> DjangoRouterSchema:
    options.setdefault("security", JWTToken())
    options.setdefault("security_scopes", SecurityScopes(get=[READ]))
    return DjangoRouterSchema(name="companies", model=Company, get=CompanyOut, delete=False, **options)


def bare_app(*routers: Any) -> FastAPI:
    """An app built as a new user might: no install_error_handlers."""
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    return app


# -- error bodies without install_error_handlers ---------------------------------------


@pytest.fixture
def bare(shared_connection: None) -> Iterator[TestClient]:
    with TestClient(bare_app(demo_router), raise_server_exceptions=False) as client:
        yield client


def test_generated_routes_answer_401_403_404_with_djfapi_bodies_without_installed_handlers(bare: TestClient) -> None:
    company = make_company()

    missing_token = bare.get("/companies")
    no_scope = bare.get("/companies", headers=auth(scopes=["business.companies.create"]))
    hidden = bare.get(f"/companies/{company.pk}", headers=auth(tenant=OTHER_TENANT))
    nested_hidden = bare.get(f"/companies/{company.pk}/departments", headers=auth(tenant=OTHER_TENANT))

    assert (missing_token.status_code, missing_token.json()["detail"]["code"]) == (401, "token_missing")
    assert missing_token.headers["www-authenticate"] == "Bearer"
    assert (no_scope.status_code, no_scope.json()["detail"]["code"]) == (403, "required_scope_missing")
    for response in (hidden, nested_hidden):
        assert response.status_code == 404
        assert response.json() == {
            "detail": {
                "type": "not_found",
                "code": "not_exist:company",
                "message": "Company does not exist.",
                "detail": None,
            }
        }


def test_generated_routes_answer_405_409_and_strict_422_without_installed_handlers(bare: TestClient) -> None:
    company = make_company()
    CompanyCostcenter.objects.create(company=company, code="A", name="Alpha")

    wrong_method = bare.delete("/companies", headers=auth())
    duplicate = bare.post(f"/companies/{company.pk}/costcenters", json={"code": "A", "name": "Again"}, headers=auth())
    not_a_number = bare.post(
        "/companies",
        content=b'{"name": NaN}',
        headers={**auth(), "content-type": "application/json"},
    )
    unknown_filter = bare.get("/companies?nmae=x", headers=auth())

    assert wrong_method.status_code == 405
    assert wrong_method.json()["detail"]["type"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "GET, OPTIONS, POST"
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"]["code"].startswith("integrity:")
    assert not_a_number.status_code == 422
    assert not_a_number.json()["detail"][0]["type"] == "json_invalid"
    assert unknown_filter.status_code == 422
    assert unknown_filter.json()["detail"][0]["loc"] == ["query", "nmae"]


def test_an_unhandled_error_in_a_generated_route_is_the_500_body_without_a_traceback(
    shared_connection: None,
) -> None:
    tree = companies()

    @tree.endpoint("/boom", detail=False)
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(bare_app(tree.router), raise_server_exceptions=False) as client:
        response = client.get("/companies/boom", headers=auth())

    assert response.status_code == 500
    assert response.json()["detail"]["type"] == "internal_error"
    assert "secret internals" not in response.text


def test_without_the_guard_a_plain_route_raising_the_same_error_is_a_bare_500(shared_connection: None) -> None:
    """The counter-proof: FastAPI alone answers djfapi's NotFound with a bare 500."""
    app = bare_app(demo_router)

    @app.get("/plain")
    def plain() -> None:
        raise NotFound("nope", code="not_exist:thing")

    with TestClient(app, raise_server_exceptions=False) as client:
        plain_response = client.get("/plain")
        generated = client.get(f"/companies/{Company.objects.create(tenant_id='x', name='x').pk}", headers=auth())

    assert plain_response.status_code == 500
    assert plain_response.text == "Internal Server Error"
    assert generated.status_code == 404


def test_an_apps_own_handler_still_wins_and_a_catch_all_does_not_swallow_404s(shared_connection: None) -> None:
    own = bare_app(demo_router)

    @own.exception_handler(NotFound)
    def teapot(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"mine": exc.code}, status_code=418)

    catch_all = bare_app(demo_router)

    @catch_all.exception_handler(Exception)
    def everything(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"oops": True}, status_code=500)

    company = make_company()
    path = f"/companies/{company.pk}"
    with TestClient(own) as client:
        mine = client.get(path, headers=auth(tenant=OTHER_TENANT))
    with TestClient(catch_all, raise_server_exceptions=False) as client:
        kept = client.get(path, headers=auth(tenant=OTHER_TENANT))

    assert (mine.status_code, mine.json()) == (418, {"mine": "not_exist:company"})
    assert (kept.status_code, kept.json()["detail"]["code"]) == (404, "not_exist:company")


# -- Enum members where strings are expected ----------------------------------------------


class CacheControl(str, enum.Enum):  # noqa: UP042 - upstream's style, not a StrEnum
    NO_CACHE = "no-cache"


class AggregateFields(enum.Enum):
    BUDGET = "departments__budget"
    ROWS = "id"


class GroupBy(enum.StrEnum):
    STATUS = "status"


class Scopes(enum.StrEnum):
    READ = READ
    UPDATE = UPDATE


def test_enum_options_are_taken_for_their_values(shared_connection: None) -> None:
    tree = companies(
        cache_control=CacheControl.NO_CACHE,
        aggregate_fields=AggregateFields,
        aggregate_group_by=[GroupBy.STATUS],
        filter_fields=[GroupBy.STATUS, "name"],
        security_scopes=SecurityScopes(get=[Scopes.READ], patch=Scopes),
        update=CompanyWrite,
    )
    company = make_company()
    make_department(company, budget="10.50")
    make_department(company, budget="5.25")

    with TestClient(bare_app(tree.router)) as client:
        listed = client.get("/companies?status=active", headers=auth())
        summed = client.get("/companies/aggregate/sum/departments__budget?group_by=status", headers=auth())

    assert listed.headers["cache-control"] == "no-cache"
    assert [item["name"] for item in listed.json()["items"]] == ["Acme"]
    assert summed.json() == {"values": [{"value": "15.75", "status": "active"}]}
    assert tree.scopes["put"] == (READ, UPDATE)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aggregate_fields": "id"}, "aggregate_fields must be a list of names, not the single value 'id'"),
        ({"filter_fields": GroupBy.STATUS}, "filter_fields must be a list of names, not the single value 'status'"),
        ({"order_fields": [1]}, "order_fields must hold names (strings), got [1]"),
        ({"cache_control": 60}, "cache_control must be a Cache-Control header value such as 'no-cache', got 60"),
    ],
)
def test_a_single_value_where_a_list_is_expected_is_refused_with_the_fix(options: dict[str, Any], message: str) -> None:
    assert message in definition_error(lambda: companies(**options))


def test_a_single_scope_string_is_refused_with_the_fix() -> None:
    message = definition_error(lambda: SecurityScopes(get=READ))  # type: ignore[arg-type]

    assert f"SecurityScopes.get must be a list of scopes, not the single value {READ!r}; write [{READ!r}]" in message


# -- subclasses: objects_filter is honoured, other overrides are refused -------------------


class NothingVisible(DjangoRouterSchema):
    def objects_filter(self, access: Access | None) -> Q:
        return Q(pk__in=[])


class ActiveOnly(DjangoRouterSchema):
    """Upstream's extension style: the tenant filter from super(), plus a rule."""

    def objects_filter(self, access: Access | None = None) -> Q:
        return super().objects_filter(access) & Q(status="active")

    def _label(self) -> str:  # a helper of the subclass's own is fine
        return self.name


@pytest.mark.parametrize(("node_class", "expected"), [(DjangoRouterSchema, 2), (NothingVisible, 0), (ActiveOnly, 1)])
def test_a_subclass_objects_filter_override_is_applied_to_every_route(
    shared_connection: None, node_class: type[DjangoRouterSchema], expected: int
) -> None:
    tree = node_class(
        name="companies",
        model=Company,
        get=CompanyOut,
        security=JWTToken(),
        security_scopes=SecurityScopes(get=[READ]),
        delete=False,
        children=[DjangoRouterSchema(name="departments", model=CompanyDepartment, get=DepartmentOut, delete=False)],
    )
    make_company(name="Visible")
    inactive = make_company(name="Inactive", status="inactive")
    make_company(tenant=OTHER_TENANT, name="Elsewhere")
    make_department(inactive)

    with TestClient(bare_app(tree.router)) as client:
        listed = client.get("/companies", headers=auth()).json()["items"]
        got = client.get(f"/companies/{inactive.pk}", headers=auth())
        below = client.get(f"/companies/{inactive.pk}/departments", headers=auth())

    assert len(listed) == expected
    assert got.status_code == below.status_code == (200 if node_class is DjangoRouterSchema else 404)


@pytest.mark.parametrize(
    ("method", "fix"),
    [
        ("object_create", "@node.hook('before_create')"),
        ("object_update", "@node.hook('before_update')"),
        ("object_delete", "delete_status=..."),
        ("get_queryset", "override objects_filter(self, access)"),
        ("object_get_by_id", "override objects_filter(self, access)"),
        ("_create_route_list", "@node.endpoint(...)"),
        ("_check", "only these methods may be overridden: objects_filter"),
        ("ordering", "only these methods may be overridden: objects_filter"),
    ],
)
def test_overriding_anything_but_an_extension_point_is_refused_with_the_fix(method: str, fix: str) -> None:
    message = definition_error(lambda: type("Upstreamish", (DjangoRouterSchema,), {method: lambda self: None}))

    assert f"Upstreamish.{method} overrides a part of DjangoRouterSchema that djfapi never calls" in message
    assert fix in message


def test_an_override_and_an_objects_filter_argument_together_are_refused() -> None:
    message = definition_error(lambda: NothingVisible(name="c", model=Company, get=CompanyOut, objects_filter=Q))

    assert "NothingVisible overrides objects_filter and objects_filter= is given too; keep one of them" in message


# -- options that would do nothing where they are given -------------------------------------


def build(node: DjangoRouterSchema) -> None:
    node.router  # noqa: B018 - builds and checks the tree


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: companies(parent_field="company"),
            "parent_field chooses a child's foreign key to its parent, and this node is a root",
        ),
        (
            lambda: companies(aggregate_group_by=["status"]),
            "aggregate_group_by without aggregate_fields groups nothing",
        ),
        (lambda: companies(create_multi=10), "create_multi without a create schema"),
        (
            lambda: companies(security=None, security_scopes=SecurityScopes(get=[READ])),
            "security_scopes without security; nothing would check them",
        ),
        (
            lambda: companies(security_scopes=SecurityScopes(get=[READ], post=[UPDATE])),
            "SecurityScopes entries ['post'] guard no route of this node",
        ),
        (
            lambda: companies(security_scopes=SecurityScopes(get=[READ], aggregate=[READ])),
            "SecurityScopes entries ['aggregate'] guard no route of this node",
        ),
        (
            lambda: companies(security_scopes=SecurityScopes(get=[READ], patch=[UPDATE], put=[UPDATE])),
            "SecurityScopes entries ['patch', 'put'] guard no route of this node",
        ),
        (
            lambda: companies(security=None, security_scopes=None, owner_field="name"),
            "owner_field='name' is filled from the caller's token, and this node has no security",
        ),
        (lambda: companies(owner_field="nope"), "owner_field='nope' is not a field of Company"),
        (lambda: companies(owner_field="tenant_id"), "cannot be the primary key or tenant_id"),
    ],
)
def test_options_that_would_do_nothing_are_refused_at_start_up(
    make: Callable[[], DjangoRouterSchema], message: str
) -> None:
    assert message in definition_error(lambda: build(make()))


def test_the_same_options_are_accepted_where_they_apply() -> None:
    class DepartmentWrite(BaseModel):
        name: str

    with_child = companies(
        security_scopes=SecurityScopes(get=[READ], patch=[UPDATE]),  # patch: the child's writes inherit it
        aggregate_fields=["id"],
        aggregate_group_by=["status"],
        children=[
            DjangoRouterSchema(
                name="departments",
                model=CompanyDepartment,
                get=DepartmentOut,
                create=DepartmentWrite,
                create_multi=10,
                parent_field="company",
            )
        ],
    )
    custom_post = companies(security_scopes=SecurityScopes(get=[READ], patch=[UPDATE]))  # for the custom POST

    @custom_post.endpoint("/verify", methods=["POST"])
    def verify() -> None:
        """Guarded by the patch scopes (the default for a write)."""

    build(with_child)
    build(custom_post)


class ReadOnlyWithWriteOptions(BaseModel):
    id: Any
    name: str = Field(is_critical=True)


class WriteOnlyWithReadScopes(BaseModel):
    name: str = Field(scopes=["business.companies.read.any"])


class TopLevelMatching(BaseModel):
    name: str = Field(is_sync_matching_field=True)


class ClientKeyNotOnTheKey(BaseModel):
    name: str = Field(client_key=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"get": ReadOnlyWithWriteOptions},
            "ReadOnlyWithWriteOptions.name has write scopes, is_critical or client_key, but the schema is only "
            "ever read",
        ),
        (
            {"create": WriteOnlyWithReadScopes},
            "WriteOnlyWithReadScopes.name has read scopes, but the schema is only ever written",
        ),
        (
            {"update": TopLevelMatching},
            "TopLevelMatching.name has is_sync_matching_field, but the schema is never the item of a list synced",
        ),
        (
            {"create": ClientKeyNotOnTheKey},
            "ClientKeyNotOnTheKey.name: client_key=True lets the client choose a new row's primary key, and name is "
            "not Company's primary key; remove it.",
        ),
    ],
)
def test_field_options_that_nothing_applies_are_refused(options: dict[str, Any], message: str) -> None:
    options = {"get": CompanyOut, **options}
    tree = DjangoRouterSchema(name="companies", model=Company, delete=False, **options)

    assert message in definition_error(lambda: build(tree))

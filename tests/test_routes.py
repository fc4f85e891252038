"""The generated route table (SPEC §3): methods, paths, status codes, operation ids,
summaries, tags, documented errors and scopes; the options that omit routes; id
parameters; three-level children; and custom endpoints added with ``@node.endpoint``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pydantic
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient

from djfapi import BaseModel, Field
from djfapi.errors import install_error_handlers
from djfapi.orm.mapping import SchemaDefinitionError
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from testproject.api import companies
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.testapp.models import Book, Chapter, Shelf

ACTIONS = ("list", "create", "get", "update", "replace", "delete")
WITH_AGGREGATE = ("list", "create", "aggregate", "get", "update", "replace", "delete")
SUBSCRIBED = ("list", "create", "aggregate", "subscribe", "get", "update", "replace", "delete")
DEMO_NODES = ("companies", "companies_departments", "companies_departments_teams", "companies_costcenters")


def with_options(actions: tuple[str, ...]) -> tuple[str, ...]:
    """``actions`` in route order with the OPTIONS routes: after the collection's routes, and last."""
    collection = [a for a in actions if a in ("list", "create", "aggregate")]
    rest = [a for a in actions if a not in collection]
    return (*collection, "collection_options", *rest, "item_options")


DEMO_OPERATION_IDS = [
    *(f"companies_{action}" for action in with_options(SUBSCRIBED)),
    *(f"companies_departments_{action}" for action in with_options(SUBSCRIBED)),
    *(f"companies_departments_teams_{action}" for action in with_options(ACTIONS)),
    *(f"companies_costcenters_{action}" for action in with_options(ACTIONS)),
    *(f"companies_skills_{action}" for action in with_options(ACTIONS)),
    *(f"companies_employees_{action}" for action in with_options(SUBSCRIBED)),
]

COMPANY = "/companies/{company_id}"
DEPARTMENT = COMPANY + "/departments/{department_id}"

READ = "lib.shelves.read"
WRITE = "lib.shelves.write"
KEY = "routes-tests-secret-key-of-32-bytes!"
ISSUER = "routes-tests"


# -- schemas ---------------------------------------------------------------------------


class ShelfOut(BaseModel):
    code: str
    name: str


class ShelfWrite(BaseModel):
    name: str


class BookOut(BaseModel):
    id: int
    title: str


class BookWrite(BaseModel):
    title: str
    isbn: str


class ChapterOut(BaseModel):
    id: int
    number: int
    title: str


class BookCard(BaseModel):
    id: int
    title: str
    shelf_name: str = Field(orm_field="shelf.name")
    loud: str = Field(orm_method="title_upper")


class Retitle(pydantic.BaseModel):
    title: str = pydantic.Field(min_length=1)


# -- helpers -----------------------------------------------------------------------------


def serve(tree: DjangoRouterSchema) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    return TestClient(app)


def openapi_of(tree: DjangoRouterSchema) -> dict[str, Any]:
    app = FastAPI()
    app.include_router(tree.router)
    return app.openapi()


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """operationId -> operation, with its method and path added."""
    return {
        op["operationId"]: {**op, "method": method.upper(), "path": path}
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }


def bearer(tenant: str = TENANT, *scopes: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "reader", "ten": tenant, "aud": list(scopes), "iat": now, "exp": now + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='HS256')}"}


def library(**shelf_options: Any) -> DjangoRouterSchema:
    """shelves (string pk) -> books (int pk) -> chapters, unsecured unless options say so."""
    chapters = DjangoRouterSchema(name="chapters", model=Chapter, get=ChapterOut)
    books = DjangoRouterSchema(name="books", model=Book, get=BookOut, create=BookWrite, children=[chapters])
    options = {"create": ShelfWrite, "update": ShelfWrite, **shelf_options}
    return DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfOut, children=[books], **options)


def seed_library() -> tuple[Shelf, Book, Book]:
    shelf = Shelf.objects.create(code="S1", tenant_id=TENANT, name="Novels")
    dune = Book.objects.create(shelf=shelf, title="Dune", isbn="1")
    emma = Book.objects.create(shelf=shelf, title="Emma", isbn="2")
    Chapter.objects.create(book=dune, number=2, title="Arrakis")
    Chapter.objects.create(book=dune, number=1, title="Caladan")
    Chapter.objects.create(book=emma, number=1, title="Highbury")
    return shelf, dune, emma


@pytest.fixture
def unsecured(shared_connection: None) -> Iterator[TestClient]:
    with serve(library()) as client:
        yield client


# -- the demo's route table ---------------------------------------------------------------


def test_demo_operation_ids_in_tree_order() -> None:
    operation_ids = [route.operation_id for route in companies.router.routes if isinstance(route, APIRoute)]

    assert operation_ids == DEMO_OPERATION_IDS
    assert len(set(operation_ids)) == len(operation_ids) == 54


def test_demo_change_feeds_have_a_websocket_beside_their_event_stream() -> None:
    websockets = [route.path for route in companies.router.routes if isinstance(route, APIWebSocketRoute)]

    assert websockets == [
        "/companies/subscribe",
        COMPANY + "/departments/subscribe",
        COMPANY + "/employees/subscribe",
    ]


def test_demo_document_has_the_same_operation_ids(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    operation_ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    tree = [operation_id for operation_id in operation_ids if operation_id.startswith("companies")]

    assert sorted(tree) == sorted(DEMO_OPERATION_IDS)


def test_operation_ids_are_stable_across_builds() -> None:
    first = [route.operation_id for route in library().router.routes]
    second = [route.operation_id for route in library().router.routes]

    assert first == second
    assert first == [
        *(f"shelves_{action}" for action in with_options(ACTIONS)),
        *(f"shelves_books_{action}" for action in with_options(("list", "create", "get", "delete"))),
        *(f"shelves_books_chapters_{action}" for action in with_options(("list", "get", "delete"))),
    ]


def test_demo_methods_paths_and_status_codes(app: FastAPI) -> None:
    table = {
        (op["method"], op["path"], next(code for code in op["responses"] if code.startswith("2")))
        for op in operations(app.openapi()).values()
        if op["path"].startswith("/companies")  # the demo's other routers: the directory, auth, metrics
    }
    expected = {
        ("GET", "/companies/aggregate/{function}/{field}", "200"),
        ("GET", COMPANY + "/departments/aggregate/{function}/{field}", "200"),
        ("GET", COMPANY + "/employees/aggregate/{function}/{field}", "200"),
        ("GET", "/companies/subscribe", "200"),
        ("GET", COMPANY + "/departments/subscribe", "200"),
        ("GET", COMPANY + "/employees/subscribe", "200"),
    }
    for collection, item in [
        ("/companies", COMPANY),
        (COMPANY + "/departments", DEPARTMENT),
        (DEPARTMENT + "/teams", DEPARTMENT + "/teams/{team_id}"),
        (COMPANY + "/costcenters", COMPANY + "/costcenters/{costcenter_id}"),
        (COMPANY + "/skills", COMPANY + "/skills/{skill_id}"),
        (COMPANY + "/employees", COMPANY + "/employees/{employee_id}"),
    ]:
        expected |= {
            ("OPTIONS", collection, "200"),
            ("OPTIONS", item, "200"),
            ("GET", collection, "200"),
            ("POST", collection, "201"),
            ("GET", item, "200"),
            ("PATCH", item, "200"),
            ("PUT", item, "200"),
            ("DELETE", item, "204"),
        }

    assert table == expected


def test_aggregate_route_exists_only_where_aggregate_fields_are_set(app: FastAPI) -> None:
    paths = app.openapi()["paths"]

    assert list(paths[COMPANY + "/departments/aggregate/{function}/{field}"]) == ["get"]
    assert DEPARTMENT + "/teams/aggregate/{function}/{field}" not in paths
    assert not any("/aggregate/" in route.path for route in library().router.routes)


def test_create_answers_201_and_delete_204(client: TestClient) -> None:
    created = client.post("/companies", json={"name": "Acme"}, headers=auth())
    deleted = client.delete(f"/companies/{created.json()['id']}", headers=auth())

    assert created.status_code == 201
    assert deleted.status_code == 204
    assert deleted.content == b""


def test_demo_summaries(app: FastAPI) -> None:
    ops = operations(app.openapi())

    assert {f"companies_{action}": ops[f"companies_{action}"]["summary"] for action in ACTIONS} == {
        "companies_list": "List companies",
        "companies_create": "Create a company",
        "companies_get": "Get a company",
        "companies_update": "Update a company (partial)",
        "companies_replace": "Replace a company",
        "companies_delete": "Delete a company",
    }
    assert ops["companies_departments_teams_list"]["summary"] == "List teams of a department"
    assert ops["companies_costcenters_get"]["summary"] == "Get a cost centre"


def test_summaries_use_the_right_indefinite_article(app: FastAPI) -> None:
    ops = operations(app.openapi())

    assert ops["companies_employees_create"]["summary"] == "Create an employee"
    assert ops["companies_employees_get"]["summary"] == "Get an employee"


def test_aggregate_routes_have_a_summary_of_their_own(app: FastAPI) -> None:
    # Every other generated route has a phrase naming its resource ("List companies").
    summary = operations(app.openapi())["companies_aggregate"]["summary"]

    assert summary[0].isupper()
    assert "compan" in summary.lower()


def test_tags_name_the_node_by_its_place_in_the_tree(app: FastAPI) -> None:
    ops = operations(app.openapi())

    assert {tuple(ops[f"{node}_get"]["tags"]) for node in DEMO_NODES} == {
        ("companies",),
        ("companies/departments",),
        ("companies/departments/teams",),
        ("companies/costcenters",),
    }
    assert all(len(op["tags"]) == 1 for op in ops.values())


def test_tags_option_replaces_the_default_tag() -> None:
    ops = operations(openapi_of(library(tags=["Library"])))

    assert ops["shelves_list"]["tags"] == ["Library"]
    assert ops["shelves_books_list"]["tags"] == ["shelves/books"]


# -- documented responses and scopes ------------------------------------------------------


def documented(op: dict[str, Any]) -> set[int]:
    return {int(code) for code in op["responses"]}


def test_documented_responses_of_the_root_node(app: FastAPI) -> None:
    ops = operations(app.openapi())

    # 429: the demo limits reads (list, get, aggregate) and creates (see testproject.api)
    assert documented(ops["companies_list"]) == {200, 401, 403, 422, 429}
    assert documented(ops["companies_create"]) == {201, 401, 403, 409, 422, 429}
    assert documented(ops["companies_get"]) == {200, 304, 401, 403, 404, 422, 429}
    assert documented(ops["companies_update"]) == {200, 401, 403, 404, 409, 412, 422}
    assert documented(ops["companies_replace"]) == {200, 401, 403, 404, 409, 412, 422}
    assert documented(ops["companies_delete"]) == {204, 401, 403, 404, 409, 412, 422}
    assert documented(ops["companies_aggregate"]) == {200, 401, 403, 422, 429}


def test_documented_responses_of_a_child_include_404_for_the_ancestors(app: FastAPI) -> None:
    ops = operations(app.openapi())

    assert documented(ops["companies_departments_teams_list"]) == {200, 401, 403, 404, 422}
    assert documented(ops["companies_departments_teams_create"]) == {201, 401, 403, 404, 409, 422}


def test_documented_errors_use_the_error_schema(app: FastAPI) -> None:
    document = app.openapi()
    ops = operations(document)

    for code in ("401", "403", "404", "409"):
        schema = ops["companies_update"]["responses"][code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"type", "code", "message", "detail"}


def test_unsecured_tree_documents_no_401_or_403() -> None:
    ops = operations(openapi_of(library()))

    assert documented(ops["shelves_list"]) == {200, 422}
    assert documented(ops["shelves_get"]) == {200, 304, 404, 422}
    assert documented(ops["shelves_books_create"]) == {201, 404, 409, 422}


def test_scopes_are_in_the_description_and_the_security_requirement(app: FastAPI) -> None:
    ops = operations(app.openapi())
    read_scopes = ["business.companies.read.any", "business.companies.read.own"]

    assert "`business.companies.read.any`, `business.companies.read.own`" in ops["companies_get"]["description"]
    assert ops["companies_get"]["security"] == [{"DemoToken": read_scopes}]
    assert ops["companies_create"]["security"] == [{"DemoToken": ["business.companies.create"]}]


def test_child_writes_document_the_parents_update_scopes(app: FastAPI) -> None:
    ops = operations(app.openapi())
    update_scopes = ["business.companies.update.any", "business.companies.update.own"]

    for action in ("create", "update", "replace", "delete"):
        op = ops[f"companies_departments_{action}"]
        assert op["security"] == [{"DemoToken": update_scopes}]
        assert "`business.companies.update.any`, `business.companies.update.own`" in op["description"]


def test_unsecured_routes_say_so_and_have_no_security_requirement() -> None:
    ops = operations(openapi_of(library()))

    assert "No authentication." in ops["shelves_get"]["description"]
    assert "security" not in ops["shelves_get"]


def test_route_accepting_any_valid_token_documents_an_empty_scope_list() -> None:
    tree = library(
        security=JWTToken(key=KEY, algorithms=["HS256"], issuer=ISSUER),
        security_scopes=SecurityScopes(get=[READ], post=[], patch=[WRITE], delete=[WRITE]),
    )
    ops = operations(openapi_of(tree))

    assert ops["shelves_create"]["security"] == [{"JWTToken": []}]
    assert "Requires a valid bearer token (no particular scope)." in ops["shelves_create"]["description"]
    assert ops["shelves_get"]["security"] == [{"JWTToken": [READ]}]


# -- create=None / update=None / delete=False --------------------------------------------


def assert_method_not_allowed(response: Any) -> None:
    """A 405 with the SPEC §7 body: all four keys present, values may be null."""
    detail = response.json()["detail"]
    assert (response.status_code, sorted(detail), detail["type"]) == (
        405,
        ["code", "detail", "message", "type"],
        "method_not_allowed",
    )


def paths_and_methods(tree: DjangoRouterSchema) -> set[tuple[str, str]]:
    return {(method, route.path) for route in tree.router.routes for method in route.methods}


def test_create_none_omits_the_post_route(shared_connection: None) -> None:
    tree = library(create=None)
    Shelf.objects.create(code="S1", tenant_id=TENANT, name="Novels")

    with serve(tree) as client:
        assert_method_not_allowed(client.post("/shelves", json={"name": "New"}))
        assert client.patch("/shelves/S1", json={"name": "Renamed"}).status_code == 200
    assert ("POST", "/shelves") not in paths_and_methods(tree)


def test_update_none_omits_patch_and_put(shared_connection: None) -> None:
    tree = library(update=None)
    Shelf.objects.create(code="S1", tenant_id=TENANT, name="Novels")

    with serve(tree) as client:
        assert_method_not_allowed(client.patch("/shelves/S1", json={"name": "Renamed"}))
        assert_method_not_allowed(client.put("/shelves/S1", json={"name": "Renamed"}))
        assert client.get("/shelves/S1").status_code == 200
    assert not {("PATCH", "/shelves/{shelf_id}"), ("PUT", "/shelves/{shelf_id}")} & paths_and_methods(tree)


def test_delete_false_omits_the_delete_route(shared_connection: None) -> None:
    tree = library(delete=False)
    Shelf.objects.create(code="S1", tenant_id=TENANT, name="Novels")

    with serve(tree) as client:
        refused = client.delete("/shelves/S1")
        assert_method_not_allowed(refused)
        assert refused.headers["allow"] == "GET, OPTIONS, PATCH, PUT"
        assert client.get("/shelves/S1").status_code == 200
    assert Shelf.objects.filter(code="S1").exists()


def test_default_options_generate_all_six_routes() -> None:
    assert paths_and_methods(library()) >= {
        ("GET", "/shelves"),
        ("POST", "/shelves"),
        ("GET", "/shelves/{shelf_id}"),
        ("PATCH", "/shelves/{shelf_id}"),
        ("PUT", "/shelves/{shelf_id}"),
        ("DELETE", "/shelves/{shelf_id}"),
    }


def test_read_only_node_has_only_its_two_get_routes_and_options() -> None:
    tree = DjangoRouterSchema(name="shelves", model=Shelf, get=ShelfOut, delete=False)

    assert paths_and_methods(tree) == {
        ("GET", "/shelves"),
        ("GET", "/shelves/{shelf_id}"),
        ("OPTIONS", "/shelves"),  # what the caller may do: here, read
        ("OPTIONS", "/shelves/{shelf_id}"),
    }


# -- id parameters -------------------------------------------------------------------------


def path_parameters(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "path"}


def test_demo_id_parameter_names(app: FastAPI) -> None:
    ops = operations(app.openapi())

    assert list(path_parameters(ops["companies_get"])) == ["company_id"]
    assert list(path_parameters(ops["companies_departments_teams_get"])) == ["company_id", "department_id", "team_id"]
    assert list(path_parameters(ops["companies_costcenters_get"])) == ["company_id", "costcenter_id"]
    assert list(path_parameters(ops["companies_employees_get"])) == ["company_id", "employee_id"]
    assert list(path_parameters(ops["companies_departments_teams_list"])) == ["company_id", "department_id"]


def test_demo_id_types_follow_the_primary_keys(app: FastAPI) -> None:
    params = path_parameters(operations(app.openapi())["companies_costcenters_get"])

    assert (params["company_id"]["type"], params["company_id"]["format"]) == ("string", "uuid")
    assert params["costcenter_id"]["type"] == "integer"
    assert (params["costcenter_id"]["minimum"], params["costcenter_id"]["maximum"]) == (1, 2**63 - 1)


def test_string_and_integer_primary_keys_with_their_bounds() -> None:
    params = path_parameters(operations(openapi_of(library()))["shelves_books_chapters_get"])

    assert params["shelf_id"]["type"] == "string"
    assert (params["shelf_id"]["minLength"], params["shelf_id"]["maxLength"]) == (1, 20)
    assert params["book_id"]["type"] == "integer"
    assert (params["book_id"]["minimum"], params["book_id"]["maximum"]) == (1, 2**31 - 1)
    assert params["chapter_id"]["type"] == "integer"


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/shelves/S1/books/0", "book_id"),
        ("/shelves/S1/books/2147483648", "book_id"),
        ("/shelves/S1/books/one", "book_id"),
        ("/shelves/" + "x" * 21, "shelf_id"),
    ],
)
def test_ids_outside_their_bounds_are_422(unsecured: TestClient, url: str, name: str) -> None:
    response = unsecured.get(url)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", name]


def test_ids_inside_their_bounds_reach_the_database(unsecured: TestClient) -> None:
    shelf, dune, _ = seed_library()

    assert unsecured.get(f"/shelves/{'x' * 20}").json()["detail"]["code"] == "not_exist:shelf"
    assert unsecured.get("/shelves/S1/books/2147483647").json()["detail"]["code"] == "not_exist:book"
    assert unsecured.get(f"/shelves/{shelf.pk}/books/{dune.pk}").json() == {"id": dune.pk, "title": "Dune"}


def test_malformed_uuid_is_422(client: TestClient) -> None:
    response = client.get("/companies/not-a-uuid", headers=auth())

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "company_id"]


# -- three levels ---------------------------------------------------------------------------


def test_third_level_lists_the_rows_of_its_parent_only(unsecured: TestClient) -> None:
    _, dune, _ = seed_library()

    response = unsecured.get(f"/shelves/S1/books/{dune.pk}/chapters")

    assert {c["title"] for c in response.json()["items"]} == {"Arrakis", "Caladan"}


def test_list_without_order_by_follows_the_models_meta_ordering(unsecured: TestClient) -> None:
    # Chapter.Meta.ordering is ["number"]; nested reads of chapters honour it (see the query
    # plan), and so should the chapters' own list route when no order_by is given.
    _, dune, _ = seed_library()  # chapter 2 is created before chapter 1

    response = unsecured.get(f"/shelves/S1/books/{dune.pk}/chapters")

    assert [c["number"] for c in response.json()["items"]] == [1, 2]


def test_third_level_item_under_the_wrong_parent_is_404(unsecured: TestClient) -> None:
    _, dune, emma = seed_library()
    chapter = emma.chapters.get()

    wrong_book = unsecured.get(f"/shelves/S1/books/{dune.pk}/chapters/{chapter.pk}")
    right_book = unsecured.get(f"/shelves/S1/books/{emma.pk}/chapters/{chapter.pk}")

    assert wrong_book.status_code == 404
    assert wrong_book.json()["detail"]["code"] == "not_exist:chapter"
    assert right_book.json()["title"] == "Highbury"


def test_third_level_under_a_missing_ancestor_names_that_ancestor(unsecured: TestClient) -> None:
    _, dune, _ = seed_library()
    chapter = dune.chapters.first()
    assert chapter is not None

    no_shelf = unsecured.get(f"/shelves/S9/books/{dune.pk}/chapters/{chapter.pk}")
    no_book = unsecured.get(f"/shelves/S1/books/999/chapters/{chapter.pk}")

    assert no_shelf.json()["detail"]["code"] == "not_exist:shelf"
    assert no_book.json()["detail"]["code"] == "not_exist:book"


def test_demo_third_level_routes_answer(client: TestClient) -> None:
    company = client.post("/companies", json={"name": "Acme"}, headers=auth()).json()
    department = client.post(f"/companies/{company['id']}/departments", json={"name": "R&D"}, headers=auth()).json()
    teams = f"/companies/{company['id']}/departments/{department['id']}/teams"

    team = client.post(teams, json={"name": "Core", "size": 3}, headers=auth())

    assert team.status_code == 201
    assert client.get(f"{teams}/{team.json()['id']}", headers=auth()).json() == team.json()
    assert client.get(teams, headers=auth()).json() == {"items": [team.json()]}


# -- custom endpoints ------------------------------------------------------------------------


class ShelfStats(BaseModel):
    tenant: str | None
    shelves: int


def custom_library() -> DjangoRouterSchema:
    chapters = DjangoRouterSchema(name="chapters", model=Chapter, get=ChapterOut)
    books = DjangoRouterSchema(name="books", model=Book, get=BookOut, children=[chapters])
    tree = DjangoRouterSchema(
        name="shelves",
        model=Shelf,
        get=ShelfOut,
        security=JWTToken(key=KEY, algorithms=["HS256"], issuer=ISSUER),
        security_scopes=SecurityScopes(get=[READ], patch=[WRITE], delete=[WRITE]),
        children=[books],
    )

    @tree.endpoint("/stats", detail=False, response_model=ShelfStats)
    def stats(access: Access, prefix: str = "") -> dict[str, Any]:
        """Counts the caller's shelves."""
        rows = Shelf.objects.filter(tenant_id=access.tenant_id, code__startswith=prefix)
        return {"tenant": access.tenant_id, "shelves": rows.count()}

    @tree.endpoint("/summary")
    def summary(obj: Shelf, shelf_id: str) -> dict[str, Any]:
        return {"code": obj.code, "shelf_id": shelf_id, "books": obj.books.count()}

    @books.endpoint("/card", response_model=BookCard)
    def card(obj: Book) -> Book:
        return obj

    @books.endpoint("/whereabouts")
    def whereabouts(parent: Shelf, shelf_id: str, book_id: int) -> dict[str, Any]:
        return {"parent": parent.name, "shelf_id": shelf_id, "book_id": book_id}

    @books.endpoint("/retitle", methods=["POST"], response_model=BookCard)
    def retitle(obj: Book, body: Retitle, dry_run: bool = False) -> Book:
        obj.title = body.title
        if not dry_run:
            obj.save(update_fields=["title"])
        return obj

    return tree


READER = (READ,)
WRITER = (READ, WRITE)


@pytest.fixture
def custom(shared_connection: None) -> Iterator[TestClient]:
    with serve(custom_library()) as client:
        yield client


def test_custom_detail_route_gets_obj_and_path_ids(custom: TestClient) -> None:
    seed_library()

    response = custom.get("/shelves/S1/summary", headers=bearer(TENANT, *READER))

    assert response.json() == {"code": "S1", "shelf_id": "S1", "books": 2}


def test_custom_collection_route_gets_access_and_its_own_query_parameter(custom: TestClient) -> None:
    seed_library()
    Shelf.objects.create(code="T1", tenant_id=TENANT, name="Travel")
    Shelf.objects.create(code="S2", tenant_id=OTHER_TENANT, name="Elsewhere")

    every = custom.get("/shelves/stats", headers=bearer(TENANT, *READER))
    some = custom.get("/shelves/stats", params={"prefix": "S"}, headers=bearer(TENANT, *READER))

    assert every.json() == {"tenant": TENANT, "shelves": 2}
    assert some.json() == {"tenant": TENANT, "shelves": 1}


def test_custom_collection_route_wins_over_the_item_route(custom: TestClient) -> None:
    Shelf.objects.create(code="stats", tenant_id=TENANT, name="A shelf called stats")

    custom_route = custom.get("/shelves/stats", headers=bearer(TENANT, *READER))
    item_route = custom.get("/shelves/S1", headers=bearer(TENANT, *READER))

    assert custom_route.json() == {"tenant": TENANT, "shelves": 1}
    assert item_route.json()["detail"]["code"] == "not_exist:shelf"


def test_custom_route_renders_a_model_instance_through_its_response_model(custom: TestClient) -> None:
    _, dune, _ = seed_library()

    response = custom.get(f"/shelves/S1/books/{dune.pk}/card", headers=bearer(TENANT, *READER))

    assert response.json() == {"id": dune.pk, "title": "Dune", "shelf_name": "Novels", "loud": "DUNE"}


def test_custom_route_gets_the_parent_object_and_every_path_id(custom: TestClient) -> None:
    _, dune, _ = seed_library()

    response = custom.get(f"/shelves/S1/books/{dune.pk}/whereabouts", headers=bearer(TENANT, *READER))

    assert response.json() == {"parent": "Novels", "shelf_id": "S1", "book_id": dune.pk}


def test_custom_route_takes_its_own_body(custom: TestClient) -> None:
    _, dune, _ = seed_library()
    url = f"/shelves/S1/books/{dune.pk}/retitle"

    dry = custom.post(
        url, params={"dry_run": True}, json={"title": "Children of Dune"}, headers=bearer(TENANT, *WRITER)
    )
    assert dry.json()["title"] == "Children of Dune"
    assert Book.objects.get(pk=dune.pk).title == "Dune"

    wet = custom.post(url, json={"title": "Dune Messiah"}, headers=bearer(TENANT, *WRITER))
    assert wet.json()["loud"] == "DUNE MESSIAH"
    assert Book.objects.get(pk=dune.pk).title == "Dune Messiah"


def test_custom_route_validates_its_own_body(custom: TestClient) -> None:
    _, dune, _ = seed_library()

    response = custom.post(f"/shelves/S1/books/{dune.pk}/retitle", json={"title": ""}, headers=bearer(TENANT, *WRITER))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "title"]
    assert Book.objects.get(pk=dune.pk).title == "Dune"


def test_custom_detail_route_on_a_hidden_object_is_404(custom: TestClient) -> None:
    seed_library()
    hidden = Shelf.objects.create(code="X1", tenant_id=OTHER_TENANT, name="Hidden")
    book = Book.objects.create(shelf=hidden, title="Secret", isbn="9")

    shelf = custom.get("/shelves/X1/summary", headers=bearer(TENANT, *READER))
    below = custom.get(f"/shelves/X1/books/{book.pk}/card", headers=bearer(TENANT, *READER))
    owner = custom.get("/shelves/X1/summary", headers=bearer(OTHER_TENANT, *READER))

    assert (shelf.status_code, shelf.json()["detail"]["code"]) == (404, "not_exist:shelf")
    assert (below.status_code, below.json()["detail"]["code"]) == (404, "not_exist:shelf")
    assert owner.json() == {"code": "X1", "shelf_id": "X1", "books": 1}


def test_custom_route_needs_the_nodes_scopes(custom: TestClient) -> None:
    _, dune, _ = seed_library()
    url = f"/shelves/S1/books/{dune.pk}/retitle"

    anonymous = custom.get("/shelves/S1/summary")
    reader_writes = custom.post(url, json={"title": "New"}, headers=bearer(TENANT, *READER))

    assert anonymous.status_code == 401
    assert reader_writes.status_code == 403
    assert reader_writes.json()["detail"]["code"] == "required_scope_missing"
    assert Book.objects.get(pk=dune.pk).title == "Dune"


def test_custom_routes_in_the_document() -> None:
    ops = operations(openapi_of(custom_library()))

    assert ops["shelves_stats"]["path"] == "/shelves/stats"
    assert ops["shelves_stats"]["summary"] == "Stats"
    assert ops["shelves_stats"]["description"].startswith("Counts the caller's shelves.")
    assert ops["shelves_stats"]["security"] == [{"JWTToken": [READ]}]
    assert ops["shelves_books_retitle"]["path"] == "/shelves/{shelf_id}/books/{book_id}/retitle"
    assert ops["shelves_books_retitle"]["security"] == [{"JWTToken": [WRITE]}]
    assert list(path_parameters(ops["shelves_books_whereabouts"])) == ["shelf_id", "book_id"]
    assert documented(ops["shelves_books_card"]) >= {401, 403, 404}


def test_custom_endpoint_named_like_a_generated_action_keeps_operation_ids_unique() -> None:
    # SPEC §3: operation ids are unique. A custom endpoint's id is "<node>_<function name>",
    # so a function called ``get`` clashes with the generated "shelves_get". Refusing it
    # when the tree is built is as good as giving it another id; a duplicate is not.
    tree = library()

    def get(obj: Shelf) -> dict[str, Any]:
        return {"code": obj.code}

    try:
        tree.endpoint("/pdf")(get)
        operation_ids = [route.operation_id for route in tree.router.routes]
    except SchemaDefinitionError:
        return
    assert len(operation_ids) == len(set(operation_ids)), sorted(operation_ids)


def test_custom_route_registered_after_the_router_was_built_is_refused() -> None:
    tree = custom_library()
    tree.router  # noqa: B018 - builds it

    def late() -> dict[str, Any]:
        return {}

    with pytest.raises(SchemaDefinitionError, match=r"add custom endpoints before the router is built"):
        tree.endpoint("/late", detail=False)(late)
    assert "/shelves/late" not in {route.path for route in tree.router.routes}

"""The schema <-> ORM layer: ``Field`` options, reading Django instances, and the mistakes
that must fail when a schema or a router tree is defined, each with a message saying how
to fix it.

Every guard is tried twice: the refused declaration and a close one that is accepted, so
that no test passes because nothing compiles at all. ``mapping_for`` is cached per
(schema, model), so each test declares the schema classes it compiles.
"""

from __future__ import annotations

from typing import Annotated

import pydantic
import pytest
from fastapi import FastAPI

from djfapi import BaseModel, Field
from djfapi.orm.fields import field_options
from djfapi.orm.mapping import FieldKind, SchemaDefinitionError, mapping_for
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes, partial_schema
from djfapi.security.jwt import JWTToken
from testproject.business.models import Company
from testproject.business.schemas import Company as CompanySchema
from tests.testapp.models import Book, Chapter, Exhibit, Genre, Member, Room, Shelf

KEY = "mapping-tests-secret-key-of-32-bytes!"


# -- schemas shared by several tests ---------------------------------------------------


class ShelfBrief(BaseModel):
    code: str
    name: str


class ChapterOut(BaseModel):
    number: int
    title: str


class BookOut(BaseModel):
    id: int
    title: str


class BookCreate(BaseModel):
    title: str
    isbn: str


class GenreOut(BaseModel):
    name: str
    label: str


class GenreTree(BaseModel):
    """Nests itself: djfapi refuses it (it reads finite trees only)."""

    name: str
    subgenres: list[GenreTree]


class ShelfNest(BaseModel):
    code: str
    books: list[BookNest]


class BookNest(BaseModel):
    title: str
    shelf: ShelfNest


ShelfNest.model_rebuild()


# -- helpers -------------------------------------------------------------------------


def definition_error(build) -> str:  # type: ignore[no-untyped-def]
    """The message of the SchemaDefinitionError that ``build()`` raises."""
    with pytest.raises(SchemaDefinitionError) as error:
        build()
    return str(error.value)


def shelves(*, get: type[pydantic.BaseModel] = ShelfBrief, **options) -> DjangoRouterSchema:  # type: ignore[no-untyped-def]
    return DjangoRouterSchema(name="shelves", model=Shelf, get=get, **options)


def make_book(*, title: str = "Dune", isbn: str = "978-0441013593", shelf: Shelf | None = None) -> Book:
    shelf = shelf or Shelf.objects.create(code="S1", tenant_id="t", name="Science fiction")
    return Book.objects.create(shelf=shelf, title=title, isbn=isbn, pages=412)


# -- Field options: orm_field ------------------------------------------------------------


@pytest.mark.django_db
def test_orm_field_may_be_omitted_when_the_names_match() -> None:
    class Schema(BaseModel):
        title: str
        pages: int

    assert Schema.model_validate(make_book()).model_dump() == {"title": "Dune", "pages": 412}


@pytest.mark.django_db
def test_orm_field_as_a_name_reads_that_attribute() -> None:
    class Schema(BaseModel):
        heading: str = Field(orm_field="title")

    assert Schema.model_validate(make_book()).heading == "Dune"


@pytest.mark.django_db
def test_orm_field_as_a_dotted_path_reads_through_the_foreign_key() -> None:
    class Schema(BaseModel):
        shelf_name: str = Field(orm_field="shelf.name")

    assert mapping_for(Schema, Book).by_name["shelf_name"].lookup == "shelf__name"
    assert Schema.model_validate(make_book()).shelf_name == "Science fiction"


@pytest.mark.django_db
def test_orm_field_as_a_double_underscore_path_is_the_same_as_dotted() -> None:
    class Schema(BaseModel):
        shelf_name: str = Field(orm_field="shelf__name")

    assert mapping_for(Schema, Book).by_name["shelf_name"].path == ("shelf", "name")
    assert Schema.model_validate(make_book()).shelf_name == "Science fiction"


@pytest.mark.django_db
def test_orm_field_as_a_model_field_descriptor() -> None:
    class Schema(BaseModel):
        heading: str = Field(orm_field=Book.title)
        shelf_code: str = Field(orm_field=Book.shelf_id)

    assert Schema.model_validate(make_book()).model_dump() == {"heading": "Dune", "shelf_code": "S1"}


@pytest.mark.django_db
def test_orm_field_as_a_foreign_key_descriptor_nests_the_related_object() -> None:
    class Schema(BaseModel):
        home: ShelfBrief = Field(orm_field=Book.shelf)

    assert mapping_for(Schema, Book).by_name["home"].kind is FieldKind.OBJECT
    assert Schema.model_validate(make_book()).home == ShelfBrief(code="S1", name="Science fiction")


@pytest.mark.django_db
def test_orm_field_as_a_reverse_relation_descriptor_nests_a_list() -> None:
    class Schema(BaseModel):
        parts: list[ChapterOut] = Field(orm_field=Book.chapters)

    book = make_book()
    Chapter.objects.create(book=book, number=1, title="Dune")

    assert Schema.model_validate(book).parts == [ChapterOut(number=1, title="Dune")]


def test_orm_field_that_is_neither_name_path_nor_descriptor_is_refused() -> None:
    class Schema(BaseModel):
        title: str = Field(orm_field=42)

    message = definition_error(lambda: mapping_for(Schema, Book))

    assert "orm_field=42 is neither a name, a path nor a model field descriptor" in message


# -- Field options: orm_method -----------------------------------------------------------


def double_pages(book: Book) -> int:
    return book.pages * 2


@pytest.mark.django_db
def test_orm_method_by_name_calls_the_model_method() -> None:
    class Schema(BaseModel):
        loud_title: str = Field(orm_method="title_upper")

    assert Schema.model_validate(make_book()).loud_title == "DUNE"


@pytest.mark.django_db
def test_orm_method_as_a_function_is_called_with_the_instance() -> None:
    class Schema(BaseModel):
        double: int = Field(orm_method=double_pages)
        loud_title: str = Field(orm_method=Book.title_upper)

    assert Schema.model_validate(make_book()).model_dump() == {"double": 824, "loud_title": "DUNE"}


def test_orm_method_naming_no_method_is_refused() -> None:
    class Missing(BaseModel):
        loud_title: str = Field(orm_method="title_uppercase")

    class NotCallable(BaseModel):
        loud_title: str = Field(orm_method="title")

    assert "orm_method='title_uppercase' is not a method of Book" in definition_error(
        lambda: mapping_for(Missing, Book)
    )
    assert "orm_method='title' is not a method of Book" in definition_error(lambda: mapping_for(NotCallable, Book))


# -- Field options: scopes ---------------------------------------------------------------


@pytest.mark.parametrize("scope", ["library.books", "library..read", "a.b.c.d.e", "", "library.books.read."])
def test_malformed_scope_is_refused_when_the_field_is_declared(scope: str) -> None:
    with pytest.raises(ValueError, match=r"is not of the form 'service\.resource\.action\[\.selector\]'"):
        Field(scopes=[scope])


def test_well_formed_scopes_split_into_read_and_write_scopes() -> None:
    class Schema(BaseModel):
        pages: int = Field(scopes=["library.books.read", "library.books.update.any", "library.books.read.own"])

    options = field_options(Schema.model_fields["pages"])

    assert options.read_scopes == {"library.books.read", "library.books.read.own"}
    assert options.write_scopes == {"library.books.update.any"}


# -- options survive Annotated, defaults, subclassing and the PATCH schema ----------------


@pytest.mark.django_db
def test_options_survive_annotated() -> None:
    class Schema(BaseModel):
        heading: Annotated[str, Field(orm_field="title")]
        loud: Annotated[str, Field(orm_method="title_upper")] = "?"

    assert Schema.model_validate(make_book()).model_dump() == {"heading": "Dune", "loud": "DUNE"}


@pytest.mark.django_db
def test_options_survive_subclassing() -> None:
    class Base(BaseModel):
        heading: str = Field(orm_field="title", scopes=["library.books.read"])

    class Sub(Base):
        size: int = Field(orm_field="pages")

    assert field_options(Sub.model_fields["heading"]).read_scopes == {"library.books.read"}
    assert Sub.model_validate(make_book()).model_dump() == {"heading": "Dune", "size": 412}


def test_options_survive_the_partial_patch_schema() -> None:
    class Write(BaseModel):
        heading: str = Field(orm_field="title", min_length=1, is_sync_matching_field=True)

    patch = partial_schema(Write)
    info = patch.model_fields["heading"]

    assert not info.is_required()
    assert field_options(info).orm_field == "title"
    assert field_options(info).is_sync_matching_field
    with pytest.raises(pydantic.ValidationError):
        patch(heading="")  # the constraint is kept too


def test_partial_patch_schema_keeps_defaults_and_refuses_unknown_fields() -> None:
    class Write(BaseModel):
        heading: str = Field("untitled", orm_field="title")

    patch = partial_schema(Write)

    assert patch.__name__ == "WritePatch"
    assert patch().model_fields_set == set()
    assert patch().heading == "untitled"
    with pytest.raises(pydantic.ValidationError, match=r"extra_forbidden|Extra inputs"):
        patch(heading="x", title="smuggled")


def test_partial_patch_schema_makes_nested_items_partial_too() -> None:
    class Item(BaseModel):
        id: int | None = None
        number: int
        title: str

    class Write(BaseModel):
        name: str
        items: list[Item] = Field(default_factory=list)

    patch = partial_schema(Write)
    body = patch.model_validate({"items": [{"id": 1, "title": "only the title"}]})

    assert body.model_fields_set == {"items"}
    assert body.items[0].model_fields_set == {"id", "title"}
    with pytest.raises(pydantic.ValidationError) as refused:
        patch.model_validate({"items": [{"id": 1, "titel": "typo"}]})
    assert refused.value.errors()[0]["loc"] == ("items", 0, "titel")


# -- BaseModel reads Django instances ----------------------------------------------------


@pytest.mark.django_db
def test_model_validate_reads_a_foreign_key_as_a_nested_object() -> None:
    class Schema(BaseModel):
        title: str
        shelf: ShelfBrief

    assert Schema.model_validate(make_book()).shelf == ShelfBrief(code="S1", name="Science fiction")


@pytest.mark.django_db
def test_model_validate_reads_a_reverse_foreign_key_as_a_list_in_model_order() -> None:
    class Schema(BaseModel):
        title: str
        chapters: list[ChapterOut]

    book = make_book()
    for number in (3, 1, 2):
        Chapter.objects.create(book=book, number=number, title=f"Part {number}")

    assert [c.number for c in Schema.model_validate(book).chapters] == [1, 2, 3]


@pytest.mark.django_db
def test_model_validate_reads_an_empty_reverse_relation_as_an_empty_list() -> None:
    class Schema(BaseModel):
        chapters: list[ChapterOut]

    assert Schema.model_validate(make_book()).chapters == []


@pytest.mark.django_db
def test_model_validate_reads_properties() -> None:
    class Schema(BaseModel):
        name: str
        label: str

    genre = Genre.objects.create(tenant_id="t", name="Space Opera")

    assert Schema.model_validate(genre).label == "#space opera"


@pytest.mark.django_db
def test_model_validate_reads_a_null_foreign_key_as_none() -> None:
    class Schema(BaseModel):
        title: str
        genre: GenreOut | None
        genre_name: str | None = Field(orm_field="genre.name")

    room = Room.objects.create(tenant_id="t", name="Hall")
    bare = Exhibit.objects.create(room=room, title="Vase")
    tagged = Exhibit.objects.create(room=room, title="Urn", genre=Genre.objects.create(tenant_id="t", name="Clay"))

    assert Schema.model_validate(bare).model_dump() == {"title": "Vase", "genre": None, "genre_name": None}
    assert Schema.model_validate(tagged).model_dump() == {
        "title": "Urn",
        "genre": {"name": "Clay", "label": "#clay"},
        "genre_name": "Clay",
    }


@pytest.mark.django_db
def test_from_orm_is_model_validate() -> None:
    class Schema(BaseModel):
        title: str
        display_title: str

    room = Room.objects.create(tenant_id="t", name="Hall")
    exhibit = Exhibit.objects.create(room=room, title="Vase")

    assert Schema.from_orm(exhibit) == Schema.model_validate(exhibit)
    assert Schema.from_orm(exhibit).display_title == f"Vase ({room.pk})"


@pytest.mark.django_db
def test_model_validate_reads_a_field_that_has_an_alias() -> None:
    # Responses are dumped by alias (djfapi.routing.responses), so aliased read schemas are
    # meant to work: reading an instance must fill the field whatever its alias.
    class Schema(BaseModel):
        shelf_name: str = Field(alias="shelfName", orm_field="shelf.name")

    read = Schema.model_validate(make_book())

    assert read.shelf_name == "Science fiction"
    assert read.model_dump(by_alias=True) == {"shelfName": "Science fiction"}


def test_model_validate_still_takes_plain_data() -> None:
    assert BookOut.model_validate({"id": 1, "title": "Dune"}) == BookOut(id=1, title="Dune")


# -- definition-time errors: read schemas ------------------------------------------------


def test_unknown_field_name_is_refused_with_the_fix() -> None:
    class Misspelled(BaseModel):
        titel: str

    class Fixed(BaseModel):
        titel: str = Field(orm_field="title")

    message = definition_error(lambda: mapping_for(Misspelled, Book))

    assert "Misspelled.titel maps to 'titel', but Book has no field, relation or attribute 'titel'" in message
    assert "Set Field(orm_field=...)" in message
    assert "Field(orm_method=...)" in message
    assert mapping_for(Fixed, Book).by_name["titel"].lookup == "title"


def test_unknown_name_on_a_related_model_names_that_model() -> None:
    class Schema(BaseModel):
        shelf_title: str = Field(orm_field="shelf.title")

    message = definition_error(lambda: mapping_for(Schema, Book))

    assert "Schema.shelf_title maps to 'shelf.title', but Shelf has no field, relation or attribute 'title'" in message


def test_path_through_a_to_many_relation_is_refused() -> None:
    class ThroughChapters(BaseModel):
        chapter_title: str = Field(orm_field="chapters.title")

    class ThroughShelf(BaseModel):
        shelf_name: str = Field(orm_field="shelf.name")

    message = definition_error(lambda: mapping_for(ThroughChapters, Book))

    assert "passes through 'chapters', not a single related object; nest a list schema instead" in message
    assert mapping_for(ThroughShelf, Book).by_name["shelf_name"].lookup == "shelf__name"


def test_nested_schema_on_a_non_relation_is_refused() -> None:
    class OnColumn(BaseModel):
        isbn: ShelfBrief

    class OnProperty(BaseModel):
        display_title: GenreOut

    assert "OnColumn.isbn nests ShelfBrief, but Book.isbn is not a relation" in definition_error(
        lambda: mapping_for(OnColumn, Book)
    )
    assert "point orm_field at a foreign key or a reverse relation" in definition_error(
        lambda: mapping_for(OnProperty, Exhibit)
    )


def test_list_on_a_single_related_object_is_refused() -> None:
    class Schema(BaseModel):
        shelf: list[ShelfBrief]

    assert "Schema.shelf is a list, but 'shelf' is a single related object" in definition_error(
        lambda: mapping_for(Schema, Book)
    )


def test_single_object_on_a_to_many_relation_is_refused() -> None:
    class Schema(BaseModel):
        chapters: ChapterOut

    message = definition_error(lambda: mapping_for(Schema, Book))

    assert "Schema.chapters is a single object, but 'chapters' is a to-many relation" in message
    assert "declare it as list[ChapterOut]" in message


def test_plain_value_field_on_a_to_many_relation_is_refused() -> None:
    # ``book.chapters`` is a related manager: a plain ``list[str]`` can never be read from
    # it, so this must fail when the schema is compiled, not as a 500 on every request.
    class AsValues(BaseModel):
        chapters: list[str]

    class AsSchemas(BaseModel):
        chapters: list[ChapterOut]

    message = definition_error(lambda: mapping_for(AsValues, Book))

    assert "AsValues.chapters" in message
    assert "chapters" in message
    assert mapping_for(AsSchemas, Book).by_name["chapters"].kind is FieldKind.LIST


def test_nested_schema_through_orm_method_is_refused() -> None:
    class Nested(BaseModel):
        home: ShelfBrief = Field(orm_method="title_upper")

    class Plain(BaseModel):
        home: str = Field(orm_method="title_upper")

    message = definition_error(lambda: mapping_for(Nested, Book))

    assert "a nested schema (ShelfBrief) cannot be read through orm_method" in message
    assert "use orm_field with a relation instead" in message
    assert mapping_for(Plain, Book).by_name["home"].method == "title_upper"


def test_schema_nesting_itself_is_refused() -> None:
    message = definition_error(lambda: mapping_for(GenreTree, Genre))

    assert "GenreTree nests itself (through Genre)" in message
    assert "give the inner level its own schema" in message


def test_schemas_nesting_each_other_are_refused() -> None:
    assert "nests itself" in definition_error(lambda: mapping_for(ShelfNest, Shelf))


def test_a_recursion_refused_once_does_not_poison_later_compiles() -> None:
    class Leaf(BaseModel):
        name: str

    class Tree(BaseModel):
        name: str
        subgenres: list[Leaf]

    definition_error(lambda: mapping_for(GenreTree, Genre))

    assert mapping_for(Tree, Genre).by_name["subgenres"].nested is mapping_for(Leaf, Genre)


# -- definition-time errors: write schemas -----------------------------------------------


def test_tenant_id_in_a_write_schema_is_refused() -> None:
    class WithTenant(BaseModel):
        name: str
        tenant_id: str

    class WithoutTenant(BaseModel):
        name: str

    message = definition_error(lambda: shelves(create=WithTenant).router)

    assert "WithTenant.tenant_id: tenant_id is taken from the token on create and never changes" in message
    assert "remove it from the write schema" in message
    assert shelves(create=WithoutTenant).router.routes


def test_parent_foreign_key_in_a_childs_write_schema_is_refused() -> None:
    class WithParent(BaseModel):
        title: str
        isbn: str
        shelf_id: str

    def tree(create: type[pydantic.BaseModel]) -> DjangoRouterSchema:
        return shelves(children=[DjangoRouterSchema(name="books", model=Book, get=BookOut, create=create)])

    message = definition_error(lambda: tree(WithParent).router)

    assert "WithParent.shelf_id: the parent's foreign key comes from the URL" in message
    assert tree(BookCreate).router.routes


def test_the_same_foreign_key_is_writable_on_a_root_node() -> None:
    class WithShelf(BaseModel):
        title: str
        isbn: str
        shelf_id: str

    tree = DjangoRouterSchema(name="books", model=Book, get=BookOut, create=WithShelf)

    assert tree.router.routes


def test_dotted_path_in_a_write_schema_is_refused() -> None:
    class Through(BaseModel):
        title: str
        shelf_name: str = Field(orm_field="shelf.name")

    message = definition_error(lambda: DjangoRouterSchema(name="books", model=Book, get=BookOut, create=Through).router)

    assert "Through.shelf_name writes through a relation (shelf.name)" in message
    assert "write schemas can only set the model's own fields" in message


def test_nested_object_in_a_write_schema_is_refused() -> None:
    class Nested(BaseModel):
        title: str
        shelf: ShelfBrief

    message = definition_error(lambda: DjangoRouterSchema(name="books", model=Book, get=BookOut, update=Nested).router)

    assert "Nested.shelf: a nested object can be written only when it belongs to this row" in message
    assert "for a foreign key send the related object's id instead" in message


class ExhibitOut(BaseModel):
    id: int
    title: str


def test_read_only_property_in_a_write_schema_is_refused() -> None:
    # ``Exhibit.display_title`` is a property without a setter: a write to it can only fail,
    # so the schema must be refused when the router is built (not answer 500 on each POST).
    class WithProperty(BaseModel):
        title: str
        room_id: int
        display_title: str

    class WithoutProperty(BaseModel):
        title: str
        room_id: int

    def tree(create: type[pydantic.BaseModel]) -> DjangoRouterSchema:
        return DjangoRouterSchema(name="exhibits", model=Exhibit, get=ExhibitOut, create=create)

    message = definition_error(lambda: tree(WithProperty).router)

    assert "WithProperty.display_title" in message
    assert tree(WithoutProperty).router.routes


def test_errors_in_a_nested_write_list_are_found_too() -> None:
    class ChapterWrite(BaseModel):
        number: int
        book_id: int

    class Fine(BaseModel):
        number: int
        title: str

    def tree(item: type[pydantic.BaseModel]) -> DjangoRouterSchema:
        create = pydantic.create_model(f"BookWith{item.__name__}", __base__=BookCreate, chapters=(list[item], []))
        return DjangoRouterSchema(name="books", model=Book, get=BookOut, create=create)

    assert "ChapterWrite.book_id: the parent's foreign key comes from the URL" in definition_error(
        lambda: tree(ChapterWrite).router
    )
    assert tree(Fine).router.routes


# -- definition-time errors: the tree -----------------------------------------------------


def test_child_without_a_foreign_key_to_its_parent_is_refused() -> None:
    class ChapterRead(BaseModel):
        number: int

    tree = shelves(children=[DjangoRouterSchema(name="chapters", model=Chapter, get=ChapterRead)])

    message = definition_error(lambda: tree.router)

    assert "router schema 'chapters': Chapter has no foreign key to its parent's model Shelf; add one." in message


class RoomOut(BaseModel):
    id: int
    name: str


def rooms(**child_options) -> DjangoRouterSchema:  # type: ignore[no-untyped-def]
    exhibits = DjangoRouterSchema(name="exhibits", model=Exhibit, get=ExhibitOut, **child_options)
    return DjangoRouterSchema(name="rooms", model=Room, get=RoomOut, children=[exhibits])


def test_child_with_two_foreign_keys_to_its_parent_must_choose_one() -> None:
    message = definition_error(lambda: rooms().router)

    assert "Exhibit has several foreign keys to its parent's model Room" in message
    assert "choose one with parent_field='<field name>'" in message


def test_parent_field_chooses_the_foreign_key() -> None:
    tree = rooms(parent_field="origin_room")
    paths = {route.path for route in tree.router.routes}

    assert tree.children[0].parent_field is Exhibit._meta.get_field("origin_room")
    assert "/rooms/{room_id}/exhibits/{exhibit_id}" in paths


def test_parent_field_must_be_a_foreign_key_to_the_parent() -> None:
    message = definition_error(lambda: rooms(parent_field="genre").router)

    assert "parent_field='genre' is not a foreign key to Room" in message


def test_delete_status_needs_a_status_field() -> None:
    message = definition_error(lambda: shelves(delete_status="gone"))

    assert "router schema 'shelves': delete_status needs a 'status' field on Shelf to set" in message
    assert DjangoRouterSchema(name="companies", model=Company, get=CompanySchema, delete_status="deleted")


def test_duplicate_child_names_are_refused() -> None:
    def books(name: str) -> DjangoRouterSchema:
        return DjangoRouterSchema(name=name, model=Book, get=BookOut)

    message = definition_error(lambda: shelves(children=[books("books"), books("books")]))

    assert "router schema 'shelves' has two children named 'books'" in message
    assert len(shelves(children=[books("books"), books("novels")]).children) == 2


def test_a_node_cannot_be_reused_in_two_trees() -> None:
    books = DjangoRouterSchema(name="books", model=Book, get=BookOut)
    shelves(children=[books])

    message = definition_error(lambda: DjangoRouterSchema(name="racks", model=Shelf, get=ShelfBrief, children=[books]))

    assert "router schema 'books' is already a child of 'shelves'" in message


@pytest.mark.parametrize("name", ["", "my shelves", "/shelves", "shelves/books", "-shelves", "shelves?x=1", "régale"])
def test_name_must_be_a_url_segment(name: str) -> None:
    message = definition_error(lambda: DjangoRouterSchema(name=name, model=Shelf, get=ShelfBrief))

    assert f"router schema name {name!r} must be a URL segment" in message


@pytest.mark.parametrize("name", ["shelves", "Shelf-list_2", "v2"])
def test_url_segment_names_are_accepted(name: str) -> None:
    tree = DjangoRouterSchema(name=name, model=Shelf, get=ShelfBrief)

    assert {route.path for route in tree.router.routes} == {f"/{name}", f"/{name}/{{shelf_id}}"}


def test_default_order_by_with_an_unknown_term_is_refused() -> None:
    message = definition_error(lambda: shelves(pagination_options={"default_order_by": ["-titel"]}).router)

    assert "default_order_by term '-titel' is not orderable" in message
    assert "choose from ['code', 'name']" in message
    assert shelves(pagination_options={"default_order_by": ["-name"]}).router.routes


def test_secured_tree_without_scopes_for_a_generated_route_is_refused() -> None:
    security = JWTToken(key=KEY, algorithms=["HS256"])

    message = definition_error(
        lambda: (
            shelves(
                create=ShelfBrief, security=security, security_scopes=SecurityScopes(get=["lib.shelves.read"])
            ).router
        )
    )

    assert "router schema 'shelves': no scopes for 'post' (route POST /shelves)" in message
    assert "Give SecurityScopes(post=[...]), or [] to accept any valid token." in message


def test_secured_tree_with_scopes_for_every_generated_route_is_accepted() -> None:
    security = JWTToken(key=KEY, algorithms=["HS256"])
    read_only = shelves(security=security, security_scopes=SecurityScopes(get=["lib.shelves.read"]), delete=False)
    writable = shelves(
        create=ShelfBrief,
        security=security,
        security_scopes=SecurityScopes(get=["lib.shelves.read"], post=[], delete=["lib.shelves.delete"]),
    )

    # each also answers OPTIONS on its collection and item paths
    assert len(read_only.router.routes) == 2 + 2
    assert len(writable.router.routes) == 4 + 2


def test_async_custom_endpoint_is_refused() -> None:
    tree = shelves()

    async def stats() -> dict[str, int]:
        return {}

    def sync_stats() -> dict[str, int]:
        return {}

    message = definition_error(lambda: tree.endpoint("/stats", detail=False)(stats))

    assert "stats: make it a plain 'def'" in message
    assert tree.endpoint("/stats", detail=False)(sync_stats) is sync_stats


def test_router_of_a_child_is_refused() -> None:
    books = DjangoRouterSchema(name="books", model=Book, get=BookOut)
    tree = shelves(children=[books])

    message = definition_error(lambda: books.router)

    assert "is a child of" in message
    assert "include the root's router, which holds the whole tree" in message
    app = FastAPI()
    app.include_router(tree.router)
    assert "/shelves/{shelf_id}/books/{book_id}" in app.openapi()["paths"]


def test_write_schema_mistakes_surface_when_the_router_is_built_not_on_a_request() -> None:
    class WithTenant(BaseModel):
        name: str
        tenant_id: str

    tree = shelves(create=WithTenant)  # declaring is fine ...

    with pytest.raises(SchemaDefinitionError):
        tree.router  # noqa: B018 - ... building the router (start-up) is where it fails


def test_a_write_method_field_compiles_in_a_write_schema() -> None:
    class MemberOut(BaseModel):
        name: str

    class MemberWrite(BaseModel):
        name: str
        password: str = Field(orm_method="set_password")

    tree = DjangoRouterSchema(name="members", model=Member, get=MemberOut, create=MemberWrite)

    assert tree.router.routes
    assert tree.create_mapping is not None
    assert tree.create_mapping.by_name["password"].method == "set_password"

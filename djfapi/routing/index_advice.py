"""The index advisor: which of a node's list paths no index of its model serves.

Every list of a node reads the rows its filters select — the parent's foreign key on a
child, the equality columns of the row filter (``tenant_id``) — in its order. Without
an index that starts with those columns and continues with the order's, the database
reads every row the caller's tenant holds and sorts them, on every page: the cost
follows the tenant, not the page. The advisor compares, per node,

* the default (and cursor) order: ``(<filter columns>, <order terms>, <pk>)``, and the
  ``status`` column after them with ``delete_status`` — W110;
* each declared ``filter_fields`` column: ``(<filter columns>, <column>)`` — W111;
* each declared ``order_fields`` column: ``(<filter columns>, <column>)`` — W112;
* each declared aggregate field and ``group_by`` column — W113;
* ``?total=true``: an index over the filter columns (and ``status`` with
  ``delete_status``), so the count is an index-only scan — W114;
* on PostgreSQL, each declared ``filter_fields`` text column (the ones that get
  ``__icontains``): a trigram index on ``UPPER(column)``, the expression Django's
  ``icontains`` compares there, since no b-tree serves ``LIKE '%...%'`` — W115;
* on PostgreSQL, the same text columns in the default order's index, as ``UPPER(column)``
  after its columns: a page of a common substring walks that index and tests each name
  it passes, and an index that holds ``UPPER(column)`` spares computing it per entry —
  W116 (its index serves W110's path too, and replaces that index);

with the model's indexes, unique constraints and indexed fields, and names the exact
``models.Index`` to add for each one not served. Only declared fields are checked: a
node without ``filter_fields`` filters on every column of its schema, and an index
per column is rarely what anyone wants. Silence an id for one node with
``DjangoRouterSchema(silenced_checks=["djfapi.W111"])``, or everywhere with
``SILENCED_SYSTEM_CHECKS``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Q

from djfapi.schemas.access import Access, AccessScope, AccessToken

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

ORDER_CHECK = "djfapi.W110"
FILTER_CHECK = "djfapi.W111"
ORDER_FIELD_CHECK = "djfapi.W112"
AGGREGATE_CHECK = "djfapi.W113"
COUNT_CHECK = "djfapi.W114"
TRIGRAM_CHECK = "djfapi.W115"
SUBSTRING_CHECK = "djfapi.W116"
CHECK_IDS = (
    ORDER_CHECK,
    FILTER_CHECK,
    ORDER_FIELD_CHECK,
    AGGREGATE_CHECK,
    COUNT_CHECK,
    TRIGRAM_CHECK,
    SUBSTRING_CHECK,
)
_COSTS = {
    ORDER_CHECK: "each page (and each cursor page) reads every row the filter columns select and sorts them",
    FILTER_CHECK: "the filter is tested row by row on every row the filter columns select",
    ORDER_FIELD_CHECK: "each page in that order reads and sorts every row the filter columns select",
    AGGREGATE_CHECK: "the aggregate reads every row the filter columns select from the table",
    COUNT_CHECK: "the count reads every row from the table instead of scanning an index alone",
    TRIGRAM_CHECK: (
        "no b-tree serves a substring match (UPPER(column) LIKE '%...%'): it is tested on every row the filter "
        "columns select"
    ),
    SUBSTRING_CHECK: (
        "a page of a common substring walks the order's index and computes UPPER(column) for every entry it passes"
    ),
}
#: The operator classes of pg_trgm that serve ``LIKE '%...%'`` (GIN and GiST).
TRIGRAM_OPCLASSES = frozenset({"gin_trgm_ops", "gist_trgm_ops"})
#: Django's limit on index names (``models.Index.max_name_length``).
MAX_INDEX_NAME = 30
_PROBE = "djfapi-index-advisor"
logger = logging.getLogger("djfapi.indexes")

IndexColumns = tuple[tuple[str, bool], ...]  # (field name, or "upper(<field name>)"; descending)


@dataclass(frozen=True)
class Advice:
    """One list path of a node that no index serves, and the index that would."""

    check_id: str
    node: DjangoRouterSchema
    use: str  # what the path is, in words
    fields: tuple[str, ...]  # models.Index(fields=...) of the index to add, "-" for descending, "upper(...)"
    trigram: bool = False  # a GIN trigram index on UPPER(fields[0]) instead of a b-tree

    @property
    def index_name(self) -> str:
        return index_name(self.node.model, (*self.fields, "trgm") if self.trigram else self.fields)

    @property
    def index(self) -> str:
        """The index to add to the model's ``Meta.indexes``: a ``models.Index(...)``, or W115's ``GinIndex(...)``.

        An index that holds ``UPPER(column)`` (W116) is written with expressions, which
        ``models.Index`` takes instead of ``fields``: ``F('name')``, ``F('created_at').desc()``,
        ``Upper('name')``.
        """
        if self.trigram:
            return f"GinIndex(OpClass(Upper({self.fields[0]!r}), name='gin_trgm_ops'), name={self.index_name!r})"
        if any(_upper_of(field) for field in self.fields):
            return f"models.Index({', '.join(map(_expression_text, self.fields))}, name={self.index_name!r})"
        return f"models.Index(fields={list(self.fields)!r}, name={self.index_name!r})"


def upper(column: str) -> str:
    """How an index entry of ``UPPER(column)`` is named among an index's columns."""
    return f"upper({column})"


def _upper_of(name: str) -> str | None:
    """``upper(name)`` -> ``name``; None for a plain column."""
    return name[len("upper(") : -1] if name.startswith("upper(") and name.endswith(")") else None


def _expression_text(field: str) -> str:
    column = _upper_of(field)
    if column is not None:
        return f"Upper({column!r})"
    return f"F({field.lstrip('-')!r}).desc()" if field.startswith("-") else f"F({field!r})"


def index_name(model: type[models.Model], fields: Sequence[str]) -> str:
    """A readable index name within Django's 30 characters; a hash keeps long ones apart."""
    words = [model._meta.model_name or "", *(_name_word(field) for field in fields)]
    base = "_".join(words)
    if len(base) + 4 <= MAX_INDEX_NAME:
        return f"{base}_idx"
    digest = hashlib.sha1("_".join([model._meta.label_lower, *fields]).encode()).hexdigest()[:6]
    return f"{base[: MAX_INDEX_NAME - 11]}_{digest}_idx"


# -- what the model has ---------------------------------------------------------------------------------------------


def _name_word(field: str) -> str:
    column = _upper_of(field)
    return f"u{column}" if column is not None else field.lstrip("-")


def model_indexes(model: type[models.Model]) -> list[IndexColumns]:
    """Every b-tree column list the database keeps for ``model`` (partial indexes left out).

    An index of expressions counts for its leading columns (``F('name')``,
    ``F('name').desc()``) and ``Upper('name')`` entries, up to the first other expression.
    """
    meta = model._meta
    found: list[IndexColumns] = []
    for index in meta.indexes:
        if index.condition or _is_trigram(index):
            continue
        if index.fields:
            found.append(tuple((_field_name(model, f.lstrip("-")), f.startswith("-")) for f in index.fields))
        elif index.expressions:
            columns = _expression_columns(model, index.expressions)
            if columns:
                found.append(columns)
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields and constraint.condition is None:
            found.append(tuple((_field_name(model, f), False) for f in constraint.fields))
    for together in meta.unique_together:
        found.append(tuple((_field_name(model, f), False) for f in together))
    for field in meta.concrete_fields:
        if field.primary_key or field.unique or getattr(field, "db_index", False):
            found.append(((field.name, False),))
    return found


def _expression_columns(model: type[models.Model], expressions: Sequence[Any]) -> IndexColumns:
    """The leading entries of an expression index that the advisor can compare: columns and UPPER(column)."""
    from django.db.models.functions import Upper

    columns: list[tuple[str, bool]] = []
    for expression in expressions:
        descending = isinstance(expression, models.OrderBy) and expression.descending
        inner = expression.expression if isinstance(expression, models.OrderBy) else expression
        if isinstance(inner, models.F) and isinstance(name := getattr(inner, "name", None), str):
            columns.append((_field_name(model, name), descending))
        elif isinstance(inner, Upper) and (column := _expression_column(model, inner)) is not None:
            columns.append((upper(column), descending))
        else:
            break
    return tuple(columns)


def _is_trigram(index: models.Index) -> bool:
    from django.contrib.postgres.indexes import GinIndex, GistIndex

    return isinstance(index, GinIndex | GistIndex)


def has_trigram_index(model: type[models.Model], column: str) -> bool:
    """Whether ``model`` declares a trigram index (GIN or GiST) on ``UPPER(column)``, the expression of icontains."""
    from django.contrib.postgres.indexes import GinIndex, GistIndex, OpClass
    from django.db.models.functions import Upper

    for index in model._meta.indexes:
        if not isinstance(index, GinIndex | GistIndex) or index.condition is not None:
            continue
        for expression in index.expressions:
            if not isinstance(expression, OpClass) or expression.extra.get("name") not in TRIGRAM_OPCLASSES:
                continue
            (inner,) = expression.get_source_expressions()
            if isinstance(inner, Upper) and _expression_column(model, inner) == column:
                return True
    return False


def _expression_column(model: type[models.Model], function: models.Func) -> str | None:
    """The column ``function`` is applied to directly (``Upper("name")`` -> ``name``); None for anything else."""
    (argument,) = function.get_source_expressions()
    name = getattr(argument, "name", None) if isinstance(argument, models.F) else None
    return _field_name(model, name) if isinstance(name, str) else None


def database_vendor(model: type[models.Model]) -> str:
    """The vendor (``postgresql``, ``sqlite``, ...) of the database ``model`` is read from."""
    from django.db import connections, router

    return str(connections[router.db_for_read(model)].vendor)


def _field_name(model: type[models.Model], name: str) -> str:
    """The field's name for an attname too (``company_id`` -> ``company``)."""
    try:
        return model._meta.get_field(name).name
    except FieldDoesNotExist:
        return name


def _unique_alone(model: type[models.Model], name: str) -> bool:
    field = model._meta.get_field(name)
    return bool(getattr(field, "primary_key", False) or getattr(field, "unique", False))


def serves(index: IndexColumns, prefix: frozenset[str], wanted: Sequence[tuple[str, bool | None]], exact: bool) -> bool:
    """Whether ``index`` starts with ``prefix`` (in any order) and goes on with ``wanted``.

    With ``exact`` the directions must all agree with ``wanted`` or all be reversed (a
    backward scan); otherwise only the columns count (a filter or a group). A wanted
    direction of None is either (a column the index holds for a filter, not an order).
    """
    head = index[: len(prefix)]
    if {name for name, _ in head} != prefix or len(index) < len(prefix) + len(wanted):
        return False
    tail = index[len(prefix) : len(prefix) + len(wanted)]
    if [name for name, _ in tail] != [name for name, _ in wanted]:
        return False
    if not exact:
        return True
    same = [d == w for (_, d), (_, w) in zip(tail, wanted, strict=True) if w is not None]
    return all(same) or not any(same)


# -- what a node reads -------------------------------------------------------------------------------------------


def filter_columns(node: DjangoRouterSchema) -> tuple[str, ...]:
    """The columns every list of ``node`` compares for equality: the parent's key, the row filter's.

    The row filter is called with a probe caller holding the node's first list scope;
    its top-level ``AND``-ed equalities on the model's own columns are the ones an
    index should lead with (``tenant_id``). A filter that cannot be probed adds none.
    """
    columns: list[str] = []
    if node.parent is not None:
        columns.append(node.parent_field.name)
    for name in _equalities(node.model, _probe_filter(node)):
        if name not in columns:
            columns.append(name)
    return tuple(columns)


def _probe_filter(node: DjangoRouterSchema) -> Q:
    scopes = node.scopes.get("list") or ()
    scope = AccessScope.from_str(scopes[0]) if scopes else None
    token = AccessToken(exp=2**31 - 1, sub=_PROBE, ten=_PROBE, aud=list(scopes), crt=False)
    try:
        return node.objects_filter(Access(token=token, scope=scope))
    except Exception:  # a filter that needs a real caller: advise on what is known
        return Q()


def _equalities(model: type[models.Model], q: Any) -> list[str]:
    if not isinstance(q, Q) or q.negated or q.connector != Q.AND:
        return []
    names: list[str] = []
    for child in q.children:
        if isinstance(child, Q):
            names.extend(_equalities(model, child))
            continue
        if not isinstance(child, tuple):
            continue
        lookup = child[0].removesuffix("__exact")
        if "__" in lookup:
            continue
        try:
            field = model._meta.get_field(lookup)
        except FieldDoesNotExist:
            continue
        if getattr(field, "concrete", False):
            names.append(field.name)
    return names


def _own_column(model: type[models.Model], path: str) -> str | None:
    """The model's own column a field path starts with, when the rest are transforms (``hired_at__year``)."""
    head, *rest = path.split("__")
    try:
        field = model._meta.get_field(head)
    except FieldDoesNotExist:
        return None
    if not getattr(field, "concrete", False):
        return None
    if rest and field.is_relation:
        return None  # crosses a relation: that model's foreign-key index serves the join
    if rest and not field.is_relation and any(field.get_transform(part) is None for part in rest):
        return None
    return str(field.name)


# -- the advice ----------------------------------------------------------------------------------------------------


def advise(node: DjangoRouterSchema, vendor: str | None = None) -> list[Advice]:
    """Each list path of ``node`` that no index of its model serves.

    ``vendor`` is the database's (default: the one the model is read from); the trigram
    and substring advice (W115, W116) is PostgreSQL's only. W116's index serves the
    default order too, so it is asked for instead of W110's — unless the node silences
    W116, and then W110 asks for the order's index as on any other database.
    """
    model = node.model
    indexes = model_indexes(model)
    prefix_names = filter_columns(node)
    prefix = frozenset(prefix_names)
    found: list[Advice] = []

    def need(check_id: str, use: str, wanted: Sequence[tuple[str, bool | None]], exact: bool) -> None:
        if any(serves(index, prefix, wanted, exact) for index in indexes):
            return
        if not exact and len(wanted) == 1 and not prefix and _unique_alone(model, wanted[0][0]):
            return
        fields = (*prefix_names, *(("-" if descending else "") + name for name, descending in wanted))
        found.append(Advice(check_id, node, use, fields))
        # What the advice adds serves later paths too: (tenant_id, name, id) serves the filter on name.
        indexes.append(tuple((name.lstrip("-"), name.startswith("-")) for name in fields))

    on_postgresql = (vendor or database_vendor(model)) == "postgresql"
    text_columns = _substring_columns(node, prefix) if on_postgresql else []  # W115's and W116's
    counted = [("status", False)] if node.delete_status is not None else []
    if prefix or counted:
        need(COUNT_CHECK, "the count of ?total=true", counted, exact=False)
    order = _default_order(node)
    if order is not None:
        text = f"the default order ({', '.join(_terms_text(order))})"
        walked = [*order, *_soft_delete_column(node, order, prefix)]
        tested = text_columns if not silenced(node, SUBSTRING_CHECK) else []
        if tested:  # first: its index serves the default order too, so W110 then has nothing to add
            columns = " and ".join(f"'{column}__icontains'" for column in tested)
            held = [(upper(column), None) for column in tested]
            need(SUBSTRING_CHECK, f"{text} with the filter {columns}", [*walked, *held], exact=True)
        need(ORDER_CHECK, text, walked, exact=True)
    for name in node.filter_fields or ():
        column = _own_column(model, name)
        if column is not None and column not in prefix and not _unique_alone(model, column):
            need(FILTER_CHECK, f"the filter {name!r}", [(column, False)], exact=False)
    for name in node.order_fields or ():
        column = _own_column(model, name)
        if column is not None and column not in prefix and not _unique_alone(model, column):
            need(ORDER_FIELD_CHECK, f"order_by={name}", [(column, False)], exact=False)
    for name in (*node.aggregate_fields, *node.aggregate_group_by):
        column = _own_column(model, name)
        if column is not None and column not in prefix and not _unique_alone(model, column):
            need(AGGREGATE_CHECK, f"the aggregate on {name!r}", [(column, False)], exact=False)
    found.extend(_trigram_advice(node, text_columns))
    return found


def _substring_columns(node: DjangoRouterSchema, prefix: frozenset[str]) -> list[str]:
    """The node's declared text filter columns (``name__icontains``), in declaration order, once each."""
    from djfapi.routing.filters import is_text

    model = node.model
    columns: list[str] = []
    for name in node.filter_fields or ():
        column = _own_column(model, name)
        if column is None or column != name or column in prefix or column in columns:
            continue  # a relation's or transform's column, or one the row filter compares for equality
        field = model._meta.get_field(column)
        if isinstance(field, models.Field) and is_text(field):
            columns.append(column)
    return columns


def _trigram_advice(node: DjangoRouterSchema, text_columns: Sequence[str]) -> list[Advice]:
    """W115: each declared text filter (``name__icontains``) without a trigram index on ``UPPER(column)``."""
    return [
        Advice(TRIGRAM_CHECK, node, f"the filter '{column}__icontains'", (column,), trigram=True)
        for column in text_columns
        if not has_trigram_index(node.model, column)
    ]


def _default_order(node: DjangoRouterSchema) -> list[tuple[str, bool]] | None:
    """The default order's columns, the primary key last; None when no index can give it."""
    columns: list[tuple[str, bool]] = []
    for field, descending in node.ordering.terms(None):
        if field.model_field is None or (field.path != "pk" and "__" in field.path):
            return None  # a related count or column: computed per row, no index of this model orders by it
        columns.append((field.model_field.name, descending))
    return columns


def _soft_delete_column(
    node: DjangoRouterSchema, order: Sequence[tuple[str, bool]], prefix: frozenset[str]
) -> list[tuple[str, bool | None]]:
    """The soft-delete column, after the order's: every list compares it, so that the index holds it too.

    Then a page read by its keys alone (deep offsets: see ``endpoints._offset_page``)
    is an index-only scan; its direction does not matter.
    """
    if node.delete_status is None or "status" in prefix or any(name == "status" for name, _ in order):
        return []
    return [("status", None)]


def _terms_text(order: Iterable[tuple[str, bool]]) -> list[str]:
    return [("-" if descending else "") + name for name, descending in order]


def silenced(node: DjangoRouterSchema, check_id: str) -> bool:
    """Whether ``node`` or one of its ancestors silences ``check_id``."""
    return any(check_id in level.silenced_checks for level in (*node.ancestors, node))


def describe(advice: Advice) -> tuple[str, str]:
    """The message and hint of a check for ``advice``."""
    node = advice.node
    model = node.model
    message = (
        f"GET {node.collection_path}: no index of {model._meta.label} serves {advice.use}; "
        f"{_COSTS[advice.check_id]}, so its cost grows with the rows of the tenant or parent, not the page."
    )
    silence = f"or silence it for this node with silenced_checks=[{advice.check_id!r}]."
    if advice.check_id == SUBSTRING_CHECK:
        hint = (
            f"Add {advice.index} to {model.__name__}.Meta.indexes in place of the default order's index, if there "
            "is one: it serves that order too (F from django.db.models, Upper from django.db.models.functions), then "
            f"makemigrations, {silence}"
        )
    elif advice.trigram:
        hint = (
            f"Add {advice.index} to {model.__name__}.Meta.indexes (GinIndex and OpClass from "
            "django.contrib.postgres.indexes, Upper from django.db.models.functions; 'django.contrib.postgres' in "
            "INSTALLED_APPS), then makemigrations and put django.contrib.postgres.operations.TrigramExtension() "
            "before the AddIndex in that migration (PostgreSQL's pg_trgm), and after it "
            f"RunSQL('ALTER INDEX {advice.index_name} ALTER COLUMN 1 SET STATISTICS 1000') so that the planner "
            f"knows how many rows a pattern keeps (docs/scaling.md); {silence}"
        )
    else:
        hint = f"Add {advice.index} to {model.__name__}.Meta.indexes (then makemigrations), {silence}"
    return message, hint


def advice_for_tree(root: Any) -> list[Advice]:
    """Every unsilenced advice of a tree."""
    return [advice for node in root.walk() for advice in advise(node) if not silenced(node, advice.check_id)]


def log_advice(root: Any) -> None:
    """In DEBUG, when a tree's router is built: each unsilenced advice as a warning of ``djfapi.indexes``.

    ``manage.py check`` says the same; this reaches whoever only runs the server.
    """
    from django.conf import settings

    if not settings.DEBUG:
        return
    globally = set(getattr(settings, "SILENCED_SYSTEM_CHECKS", ()))
    for advice in advice_for_tree(root):
        if advice.check_id in globally:
            continue
        message, hint = describe(advice)
        logger.warning("%s: %s HINT: %s", advice.check_id, message, hint)

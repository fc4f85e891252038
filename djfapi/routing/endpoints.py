"""The handlers behind the generated routes.

Each handler runs inside one ``request_signalling`` call in a worker thread: the
caller's authorisation (which may query the database), every query, the write's
transaction and the rendering of the response body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import QuerySet
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from djfapi.conf import setting
from djfapi.ops.context import enter_request, record_access
from djfapi.orm import writing
from djfapi.orm.plan import QueryPlan
from djfapi.orm.reading import read
from djfapi.orm.rows import RowBudget, TooManyRows, count_rows
from djfapi.orm.selection import parse_fields
from djfapi.orm.visibility import require_readable
from djfapi.ratelimit import RouteLimits, limiter
from djfapi.routing import chain_statements, queries
from djfapi.routing.aggregate import AggregateFunction, AggregateValues
from djfapi.routing.etags import is_not_modified
from djfapi.routing.filters import CountAnnotation, ParsedFilters, annotate_counts
from djfapi.routing.listing import Ordering, check_cursor_terms
from djfapi.routing.responses import json_response, render_list, render_object
from djfapi.routing.signature import RATELIMIT_RESPONSE_PARAMETER
from djfapi.routing.totals import TotalMode, total_of
from djfapi.schemas.access import Access, AccessToken
from djfapi.security.jwt import UNCHECKED_TOKEN
from djfapi.utils.fastapi_django import request_signalling, run_signalled

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema, ReadView

Handler = Callable[..., Any]
DEFAULT_MAX_RESPONSE_ROWS = 10_000


@dataclass(frozen=True)
class RequestContext:
    """One request as a handler sees it: the node, the caller and the ids in the path."""

    node: DjangoRouterSchema
    access: Access | None
    ids: Mapping[str, Any]
    request: Request

    @property
    def object_id(self) -> Any:
        return self.ids[self.node.id_name]

    @property
    def parent_id(self) -> Any:
        assert self.node.parent is not None
        return self.ids[self.node.parent.id_name]

    def write_context(self) -> writing.WriteContext:
        return writing.WriteContext(
            access=self.access,
            reference_exists=self._reference_exists,
            owners=self.node.root.owner_columns,
            visible_references=self._visible_references,
        )

    def _referable(self, target: type[models.Model]) -> QuerySet[Any]:
        """The rows of ``target`` a body may point at (any other id reads as a missing row).

        A target that is a node of the tree must be reachable through the ancestors
        the written row shares with it; any other model through its default filter.
        """
        node = self.node.root.node_for_model(target)
        if node is not None:
            return queries.rows_reachable(node, self.access, self._written_chain())
        return target._default_manager.filter(queries.default_objects_filter(target, self.access))

    def _reference_exists(self, field: models.ForeignKey, value: Any) -> bool:
        """Whether the body may point ``field`` at ``value`` (else: the answer for a missing row)."""
        try:
            return self._referable(field.related_model).filter(pk=value).exists()
        except (ValueError, TypeError):
            return False

    def _visible_references(self, target: type[models.Model], values: Sequence[Any]) -> set[Any]:
        """Which of ``values`` (primary keys of ``target``) a body may point at: one query for all."""
        return set(self._referable(target).filter(pk__in=values).values_list("pk", flat=True))

    def _written_chain(self) -> dict[DjangoRouterSchema, Any]:
        """The written row's ancestors (and itself) with their primary keys; None while it is created."""
        chain: dict[DjangoRouterSchema, Any] = {
            level: self.ids[level.id_name] for level in self.node.ancestors if level.id_name in self.ids
        }
        chain[self.node] = self.ids.get(self.node.id_name)
        return chain


def signalled_endpoint(
    node: DjangoRouterSchema,
    handler: Handler,
    *,
    scopes: Sequence[str] | None,
    id_names: Sequence[str],
    public: bool = False,
    limits: RouteLimits | None = None,
) -> Callable[..., Any]:
    """An endpoint that runs ``handler`` in djfapi's thread pool, in one signalled call.

    Inside that call it authorises the caller (which may query the database), collects
    the path ids and calls ``handler``; FastAPI only validates the input beforehand. On a
    ``public`` endpoint an anonymous caller gets ``access=None``, and a caller with a
    token lacking the scopes gets an ``Access`` whose ``scope`` is ``None`` (no 403). With ``limits`` the
    request is counted first (429 over a limit) and the response carries the RateLimit headers.
    """
    security = node.security

    def authorize(token: AccessToken) -> Access:
        assert security is not None
        return security.authorize(token, scopes, public=True) if public else security.authorize(token, scopes)

    def call(**params: Any) -> Any:
        request: Request = params.pop("request")
        enter_request(request.scope)
        token: AccessToken | None = params.pop("token", None)
        if token is not None and request.scope.get("state", {}).get(UNCHECKED_TOKEN):
            security.check_revoked(token)  # the revoked ids could not be read in the event loop
        access = authorize(token) if security is not None and token is not None else None
        if access is not None:
            record_access(request.scope, access)
        ids = {name: params.pop(name) for name in id_names}
        return handler(RequestContext(node, access, ids, request), **params)

    signalled = request_signalling(call)

    if limits is None:

        async def endpoint(**params: Any) -> Any:
            return await run_signalled(signalled, **params)

        return endpoint

    async def limited_endpoint(**params: Any) -> Any:
        response: Response = params.pop(RATELIMIT_RESPONSE_PARAMETER)
        headers = await limiter.check(limits, params["request"], params.get("token")) if limiter.enabled() else None
        result = await run_signalled(signalled, **params)
        if headers:
            (result if isinstance(result, Response) else response).headers.update(headers)
        return result

    return limited_endpoint


def find_object(ctx: RequestContext, plan: QueryPlan | None = None, *, lock: bool = False) -> models.Model:
    """The object of an item route, through every row filter up the tree (404 when hidden).

    ``plan`` reads what the response shows along with it; ``lock`` locks the row for the
    rest of the transaction (on databases that can), so concurrent writers serialise.
    """
    if plan is None:
        found = queries.object_in_chain(ctx.node, ctx.access, ctx.ids, ctx.object_id, lock=lock)
    else:
        rows = plan.apply(queries.rows_in_chain(ctx.node, ctx.access, ctx.ids, pk=ctx.object_id))
        first = list((chain_statements.locked(rows) if lock else rows)[:1])  # filtered by primary key: no order needed
        found = first[0] if first else None
    if found is None:
        queries.raise_missing(ctx.node, ctx.access, ctx.ids)
    return found


def _filtered_rows(
    ctx: RequestContext,
    declared: frozenset[str],
    extra_counts: Sequence[CountAnnotation] = (),
    *,
    prove_parent: bool = True,
) -> tuple[QuerySet[Any], ParsedFilters]:
    """The node's rows under the path's parent, filtered by the query string (422/403 first).

    With ``prove_parent`` the parent chain is checked first (404); without, the rows are
    filtered through the visible chain in the same query, and the caller proves the
    parent only when it found nothing — a page with rows proves its parent by itself.
    """
    node = ctx.node
    parsed = node.filters.parse(ctx.request.query_params.multi_items(), declared)
    require_readable(((spec.name, spec.read_scopes) for spec in parsed.used), ctx.access, use="filtering")
    if prove_parent and node.parent is not None:
        queries.require_parent(node, ctx.access, ctx.ids)
    return _rows(ctx, parsed, extra_counts, parent_by_column=prove_parent), parsed


def _rows(
    ctx: RequestContext, parsed: ParsedFilters, counts: Sequence[CountAnnotation], *, parent_by_column: bool
) -> QuerySet[Any]:
    """The filtered rows, under the parent named by its column (proven already) or through the visible chain."""
    node = ctx.node
    rows = queries.visible_rows(node, ctx.access, include_deleted=node.lists_deleted_rows(parsed.positive))
    if node.parent is not None:
        if parent_by_column:
            rows = rows.filter(**{node.parent_field.attname: ctx.parent_id})
        else:
            parent = queries.rows_in_chain(node.parent, ctx.access, ctx.ids, pk=ctx.parent_id)
            rows = rows.filter(**{f"{node.parent_field.name}__in": parent.values("pk")})
    rows = annotate_counts(rows, [*parsed.counts, *counts])
    return rows.filter(parsed.q)


def list_rows(
    ctx: RequestContext,
    *,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
    order_by: list[str] | None = None,
    total: TotalMode = False,
    fields: str | None = None,
) -> Response:
    node = ctx.node
    if node.cursor is None and offset > node.max_offset:
        raise offset_too_deep(node, offset)
    shown = _read_view(ctx, item=False, fields=fields)
    terms = node.ordering.terms(order_by)
    require_readable(((field.name, field.read_scopes) for field, _ in terms), ctx.access, use="ordering")
    counts = [field.count for field, _ in terms if field.count is not None]
    rows, parsed = _filtered_rows(ctx, node.list_query_parameters, counts, prove_parent=False)
    # The total counts under the parent's column, without the ordering's annotations: the same
    # rows once the parent is proven (by the page's rows, or by require_parent when there are
    # none; nothing is answered before), and a condition a row counter (djfapi.counts) can answer.
    count, estimated = total_of(_rows(ctx, parsed, (), parent_by_column=True), total) if total else (None, None)
    budget = RowBudget(max_response_rows())
    substring = _tests_substrings(parsed)
    try:
        if node.cursor is None:
            page = _offset_page(rows, Ordering.order_by(terms), counts, offset, limit, substring=substring)
            items = _read_page(shown, page, budget)
            if not items:
                queries.require_parent(node, ctx.access, ctx.ids)  # empty, or under a hidden parent (404)?
            return render_list(
                shown.mapping,
                items,
                ctx.access,
                total=count,
                total_estimated=estimated,
                headers=node.read_headers,
                plain=_plain(shown),
            )
        check_cursor_terms(terms)
        ordered = rows.order_by(*Ordering.order_by(terms))
        if cursor:
            ordered = ordered.filter(node.cursor.decode(cursor, terms))
        if substring:
            ordered = _keys_first(ordered, counts, 0, limit + 1)  # the rows it tests are index entries
        if shown.reader is not None:
            paths = [field.path for field, _ in terms]
            items, last = shown.reader.read_window(ordered, limit, paths, budget)
            next_cursor = node.cursor.encode_values(terms, [last[p] for p in paths]) if last is not None else None
        else:
            window = list(shown.plan.apply(ordered)[: limit + 1])
            next_cursor = node.cursor.encode(terms, window[limit - 1]) if len(window) > limit else None
            items = [read(shown.mapping, row) for row in window[:limit]]
            budget.take(count_rows(items))
        if not items:
            queries.require_parent(node, ctx.access, ctx.ids)
    except TooManyRows as exceeded:
        raise too_many_rows(node, exceeded, ("query", "limit"), limit) from None
    return render_list(
        shown.mapping,
        items,
        ctx.access,
        total=count,
        total_estimated=estimated,
        cursor=True,
        next_cursor=next_cursor,
        headers=node.read_headers,
        plain=_plain(shown),
    )


#: From this offset on, an offset page finds its rows' keys first (``_offset_page``).
KEYS_FIRST_FROM = 500


def _offset_page(
    rows: QuerySet[Any],
    order: Sequence[Any],
    counts: Sequence[CountAnnotation],
    offset: int,
    limit: int,
    *,
    substring: bool = False,
) -> QuerySet[Any]:
    """The page of ``rows`` at ``offset``; a deep or substring-filtered one by its keys first.

    Each row an offset skips, and each row a substring filter (``__icontains``) tests and
    rejects, costs one table row read — unless the database can pass over it in an
    index. Asked for the page's primary keys alone, it can: the advisor's W110 index
    holds the filter columns, the order, the key and the soft-delete column, so finding
    the keys is an index-only scan, and then only the page's own rows are read, by key
    (one statement: ``WHERE pk IN (SELECT pk ... LIMIT ... OFFSET ...)``). A near page
    without a substring filter is read directly: there, the look-ups by key would cost
    more than the few rows they spare. (On PostgreSQL a substring page needs the
    planner to know how many rows the pattern keeps, or it may take the trigram index
    and sort every match: docs/scaling.md says how to give it the statistics.)
    """
    ordered = rows.order_by(*order)
    if offset < KEYS_FIRST_FROM and not substring:
        return ordered[offset : offset + limit]
    return _keys_first(ordered, counts, offset, offset + limit)


def _keys_first(ordered: QuerySet[Any], counts: Sequence[CountAnnotation], start: int, stop: int) -> QuerySet[Any]:
    """The rows ``ordered[start:stop]`` selects, found by their keys in one statement (see ``_offset_page``)."""
    keys = ordered.values("pk")[start:stop]
    # Only the keys' rows, whose every condition the inner query checked: a fresh query, so that
    # the database looks them up by key instead of walking the tenant's rows again.
    page = ordered.model._default_manager.filter(pk__in=keys)
    return annotate_counts(page, counts).order_by(*ordered.query.order_by)


def _tests_substrings(parsed: ParsedFilters) -> bool:
    """Whether the query string filters by a substring, which no b-tree finds: every row is tested."""
    return any(spec.lookup.endswith("__icontains") for spec in parsed.used)


def _read_view(ctx: RequestContext, *, item: bool, fields: str | None) -> ReadView:
    """The whole read schema, or the part ``?fields=`` selects (422 unknown, 403 hidden)."""
    node = ctx.node
    if fields is None:
        return node.read_view(item=item, selection=None)
    mapping = node.get_mapping if item else node.list_mapping
    return node.read_view(item=item, selection=parse_fields(mapping, fields, ctx.access))


def offset_too_deep(node: DjangoRouterSchema, offset: int) -> RequestValidationError:
    """The 422 for an offset past ``max_offset``: the database would read every row it skips."""
    bound = node.max_offset
    return RequestValidationError(
        [
            {
                "type": "less_than_equal",
                "loc": ("query", "offset"),
                "msg": f"offset is at most {bound}: a deeper offset makes the database read and skip every row "
                f"before the page. Narrow the list with filters, or page with a cursor "
                f"(pagination_options={{'cursor': True}} gives this list ?cursor=, whose pages cost the same at "
                f"any depth).",
                "input": offset,
                "ctx": {"le": bound},
            }
        ]
    )


def _plain(shown: ReadView) -> bool:
    """Whether the view's rows (read as values) render as JSON as they are (``djfapi.orm.plain``)."""
    return shown.reader is not None and shown.reader.plain


def _read_page(shown: ReadView, page: QuerySet[Any], budget: RowBudget) -> list[dict[str, Any]]:
    """A page's rows as data, nested lists included, within ``budget``."""
    if shown.reader is not None:
        return shown.reader.read(page, budget)
    items = [read(shown.mapping, row) for row in shown.plan.apply(page)]
    budget.take(count_rows(items))
    return items


def max_response_rows() -> int:
    """``DJFAPI["MAX_RESPONSE_ROWS"]``: the most rows, nested ones included, one read answers with."""
    return int(setting("MAX_RESPONSE_ROWS", DEFAULT_MAX_RESPONSE_ROWS))


def too_many_rows(
    node: DjangoRouterSchema, exceeded: TooManyRows, loc: tuple[str, ...], limit: int | None = None
) -> RequestValidationError:
    """The 422 for a read over the row budget, with the ways to stay under it."""
    children = ", ".join(f"GET {child.collection_path}" for child in node.children) or "their child routes"
    ask = "Ask for fewer items (a smaller limit), or read" if limit is not None else "Read"
    return RequestValidationError(
        [
            {
                "type": "too_many_rows",
                "loc": loc,
                "msg": f"The answer would hold more than {exceeded.budget} rows, its nested lists included (each "
                f"shows up to {node.nested_limit} items). {ask} the nested lists from their own routes ({children}).",
                "input": limit,
            }
        ]
    )


def aggregate_rows(
    ctx: RequestContext, *, function: AggregateFunction, field: str, group_by: list[str] | None = None
) -> Response:
    node = ctx.node
    table = node.aggregates
    assert table is not None
    target = table.fields[field]
    table.check(function, target)
    groups = [table.group_by[name] for name in dict.fromkeys(group_by or ())]
    require_readable(
        [(target.name, target.read_scopes), *((g.name, g.read_scopes) for g in groups)], ctx.access, use="aggregating"
    )
    rows, _ = _filtered_rows(ctx, table.query_parameters)
    values = table.run(rows, function, target, groups)
    return json_response(AggregateValues(values=values).model_dump_json().encode(), headers=node.read_headers)


def get_row(ctx: RequestContext, *, if_none_match: str | None = None, fields: str | None = None) -> Response:
    node = ctx.node
    shown = _read_view(ctx, item=True, fields=fields)
    budget = RowBudget(max_response_rows())
    try:
        if shown.reader is not None:
            reader = shown.reader
            rows = queries.values_in_chain(
                node, ctx.access, ctx.ids, ctx.object_id, reader.selected(), budget.remaining + 1
            )
            found = reader.read_fetched(rows, budget)
            if not found:
                queries.raise_missing(node, ctx.access, ctx.ids)
            data = found[0]
        else:
            data = read(shown.mapping, find_object(ctx, shown.plan))
            budget.take(count_rows([data]))
    except TooManyRows as exceeded:
        raise too_many_rows(node, exceeded, ("path", node.id_name)) from None
    response = render_object(shown.mapping, data, ctx.access, headers=node.read_headers, plain=_plain(shown))
    if if_none_match is not None and is_not_modified(if_none_match, response.headers["etag"]):
        return Response(status_code=304, headers={"ETag": response.headers["etag"], **(node.read_headers or {})})
    return response

"""The handlers of the write routes: create (one or many), PATCH, PUT and DELETE.

Each write is one transaction: the parent check, the preconditions, the hooks, every
row written (nested ones included) and the read-back of the result. Anything that
fails — validation, a constraint, an ``orm_method``, a hook — rolls all of it back.
``?dry_run=true`` runs all of it and rolls it back at the end: the answer is the
write's, nothing is kept, and no change is published (the feed's events are rows of the
same transaction, and its wake-ups wait for a commit that never comes).
Rows are locked while they are written (``SELECT ... FOR UPDATE`` where the database
has it; on SQLite the writers of a process take turns, see ``djfapi.orm.transactions``),
so two concurrent writers of one object take turns; with ``If-Match`` the second one
then sees that the object changed and gets a 412.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pydantic
from django.db import models
from starlette.responses import Response

from djfapi.conf import setting
from djfapi.orm import writing
from djfapi.orm.bodies import check_body_rows
from djfapi.orm.reading import read
from djfapi.orm.transactions import write_transaction
from djfapi.routing import queries
from djfapi.routing.endpoints import RequestContext, find_object
from djfapi.routing.etags import PreconditionFailed, etag, if_match_holds
from djfapi.routing.filters import FilterTable
from djfapi.routing.hooks import WriteEvent, snapshot
from djfapi.routing.responses import object_body, render_list, render_object


def _written(
    ctx: RequestContext,
    instances: Sequence[models.Model],
    created: dict[tuple[int, str], list[models.Model]] | None = None,
) -> list[dict[str, Any]]:
    """The written rows as the read schema shows them, in the order of ``instances``.

    Where the schema is read as plain data (``djfapi.orm.rows``) and no hook of the
    node could have changed the rows behind the instances' back, their columns are taken
    from the instances themselves (nested lists are still read): a statement less per
    write. Otherwise they are read again by primary key alone: the caller just wrote the
    rows, and a filter such as "companies I own" may not match them yet (a company
    created a moment ago has no owner). Inside the write's transaction; rendered after
    it, so the SQLite writer's turn is not spent on JSON. ``created``: the instances are
    new, with the nested rows the request created under them (``ValuesReader.read_written``).
    """
    node = ctx.node
    if node.get_reader is not None and not node.hooks:
        written = node.get_reader.read_written(instances, created)
        if written is not None:
            return written
    pks = [instance.pk for instance in instances]
    rows = node.model._default_manager.filter(pk__in=pks)
    if node.get_reader is not None:
        keyed = node.get_reader.read_keyed(rows)
    else:
        keyed = {row.pk: read(node.get_mapping, row) for row in node.get_plan.apply(rows)}
    return [keyed[pk] for pk in pks]


def _find_for_write(ctx: RequestContext, if_match: str | None) -> models.Model:
    """The object, locked; with ``If-Match``, only if it is still what the caller read."""
    node = ctx.node
    if if_match is None:
        return find_object(ctx, lock=True)
    instance = find_object(ctx, node.get_plan, lock=True)
    if not if_match_holds(if_match, etag(object_body(node.get_mapping, instance, ctx.access))):
        raise PreconditionFailed()
    return instance


def _create_one(
    ctx: RequestContext,
    body: pydantic.BaseModel,
    values: dict[str, Any],
    loc: tuple[str | int, ...],
    *,
    dry_run: bool,
    context: writing.WriteContext,
) -> models.Model:
    node = ctx.node
    assert node.create_mapping is not None

    def before_save(instance: models.Model) -> None:
        node.hooks.run("before_create", WriteEvent("create", instance, ctx.access, ctx.ids, body, dry_run=dry_run))

    instance = writing.create(node.create_mapping, body, context, values=values, loc=loc, before_save=before_save)
    node.hooks.run("after_create", WriteEvent("create", instance, ctx.access, ctx.ids, body, dry_run=dry_run))
    return instance


DEFAULT_MAX_WRITE_ROWS = 5000
WRITE_QUERY_PARAMETERS = frozenset({"dry_run"})


def refuse_unknown_query(ctx: RequestContext) -> None:
    """An unknown query parameter on a write is a 422, as on a list.

    Above all for ``?dry_run=true``: a misspelled ``?dryrun=true`` ignored would commit
    the write the caller meant only to try.
    """
    FilterTable(ctx.node.model, (), ()).parse(ctx.request.query_params.multi_items(), WRITE_QUERY_PARAMETERS)


def max_write_rows() -> int:
    """``DJFAPI["MAX_WRITE_ROWS"]``: the most rows, nested ones included, one write may hold."""
    return int(setting("MAX_WRITE_ROWS", DEFAULT_MAX_WRITE_ROWS))


def create_row(
    ctx: RequestContext, *, body: pydantic.BaseModel | Sequence[pydantic.BaseModel], dry_run: bool = False
) -> Response:
    """POST: one object, or (with ``create_multi``) a list of them, all or nothing."""
    node = ctx.node
    refuse_unknown_query(ctx)
    check_body_rows(body, max_write_rows())
    with write_transaction(node.model, dry_run=dry_run):
        values = {}
        if node.parent is not None:
            queries.require_parent(node, ctx.access, ctx.ids)
            values[node.parent_field.attname] = ctx.parent_id
        created: dict[tuple[int, str], list[models.Model]] = {}
        context = dataclasses.replace(ctx.write_context(), created=created)
        if isinstance(body, pydantic.BaseModel):
            instances = [_create_one(ctx, body, values, ("body",), dry_run=dry_run, context=context)]
        else:
            instances = [
                _create_one(ctx, item, values, ("body", index), dry_run=dry_run, context=context)
                for index, item in enumerate(body)
            ]
        written = _written(ctx, instances, created)
    plain = _plain(node)
    if isinstance(body, pydantic.BaseModel):
        return render_object(node.get_mapping, written[0], ctx.access, status_code=201, plain=plain)
    return render_list(node.get_mapping, written, ctx.access, status_code=201, plain=plain)


def _update(
    ctx: RequestContext, body: pydantic.BaseModel, *, partial: bool, if_match: str | None, dry_run: bool
) -> Response:
    node = ctx.node
    mapping = node.patch_mapping if partial else node.update_mapping
    assert mapping is not None
    refuse_unknown_query(ctx)
    check_body_rows(body, max_write_rows())
    with write_transaction(node.model, dry_run=dry_run):
        instance = _find_for_write(ctx, if_match)
        previous = snapshot(instance)

        def event(changed: models.Model) -> WriteEvent:
            return WriteEvent("update", changed, ctx.access, ctx.ids, body, previous, dry_run=dry_run)

        def before_save(changed: models.Model) -> None:
            node.hooks.run("before_update", event(changed))

        writing.update(instance, mapping, body, ctx.write_context(), partial=partial, before_save=before_save)
        node.hooks.run("after_update", event(instance))
        (data,) = _written(ctx, [instance])
    return render_object(node.get_mapping, data, ctx.access, plain=_plain(node))


def _plain(node: Any) -> bool:
    """Whether the written rows, read as values, render as JSON as they are (``djfapi.orm.plain``)."""
    return node.get_reader is not None and node.get_reader.plain


def patch_row(
    ctx: RequestContext, *, body: pydantic.BaseModel, if_match: str | None = None, dry_run: bool = False
) -> Response:
    return _update(ctx, body, partial=True, if_match=if_match, dry_run=dry_run)


def put_row(
    ctx: RequestContext, *, body: pydantic.BaseModel, if_match: str | None = None, dry_run: bool = False
) -> Response:
    return _update(ctx, body, partial=False, if_match=if_match, dry_run=dry_run)


def delete_row(ctx: RequestContext, *, if_match: str | None = None) -> Response:
    node = ctx.node
    with write_transaction(node.model):
        instance = _find_for_write(ctx, if_match)
        event = WriteEvent("delete", instance, ctx.access, ctx.ids, previous=snapshot(instance))
        node.hooks.run("before_delete", event)
        if node.delete_status is not None:
            instance.status = node.delete_status  # type: ignore[attr-defined]
            instance.save(update_fields=["status"])
        else:
            instance.delete()
        node.hooks.run("after_delete", event)
    return Response(status_code=204)

"""The app the growth benchmark serves: the demo, plus its companies again with cursor pagination.

The demo's ``/companies`` pages by offset; ``/paged-companies`` is the same rows — the
same tenant filter, soft delete, read schema and default order (``name``) — paged by
cursor, so both kinds of paging are measured on one table. (Not ``/directory``: that is
the demo's public list of verified companies of every tenant, and the first route wins.)
Serve it with ``uvicorn --factory benchmarks.growth_app:create_growth_app``.
"""

from __future__ import annotations

from fastapi import FastAPI


def create_growth_app() -> FastAPI:
    from testproject.app import create_app

    app = create_app()  # sets Django up first
    app.include_router(paged_companies().router)
    return app


_tree = None


def paged_companies() -> object:
    """The cursor-paged companies tree (one per process: routers are built once)."""
    global _tree
    if _tree is None:
        from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
        from testproject.api import company_objects_filter, token
        from testproject.business import models, schemas

        _tree = DjangoRouterSchema(
            name="paged-companies",
            model=models.Company,
            get=schemas.Company,
            delete=False,
            delete_status=models.Company.Status.DELETED,
            security=token,
            security_scopes=SecurityScopes(get=["business.companies.read.any"]),
            objects_filter=company_objects_filter,
            pagination_options={"cursor": True, "default_order_by": ["name"], "max_limit": 1000},
            filter_fields=["name", "status"],
            order_fields=["name", "id"],
            silenced_checks=["djfapi.W115"],  # the seed creates the trigram index by SQL
        )
    return _tree

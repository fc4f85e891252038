"""API documentation pages that work offline: Swagger UI and ReDoc from local files.

FastAPI's own ``/docs`` and ``/redoc`` pages load their JavaScript and CSS from a CDN
(and ReDoc its fonts from Google): on a machine, network or browser without that
access they are blank pages. ``serve_docs(app)`` replaces them with the same pages
(FastAPI's own HTML, so the settings of the app still apply) whose assets come from the
``drf-spectacular-sidecar`` package, a monthly-released copy of the ``swagger-ui-dist``
and ``redoc`` bundles, served by the app itself under ``/docs-assets``.

The sidecar is a Django app, but nothing here needs it in ``INSTALLED_APPS``: the files
are located through the installed package and served by Starlette's ``StaticFiles``.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS_PACKAGE", "asset_directory", "serve_docs"]

ASSETS_PACKAGE = "drf_spectacular_sidecar"

# Paths of the files the pages load, relative to the sidecar's static directory.
SWAGGER_JS = "swagger-ui-dist/swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui-dist/swagger-ui.css"
FAVICON = "swagger-ui-dist/favicon-32x32.png"
REDOC_JS = "redoc/bundles/redoc.standalone.js"

# Swagger UI's default validator is a public web service: with the standalone layout it
# would send the OpenAPI document's URL there. The docs pages stay on this host.
OFFLINE_SWAGGER_UI_PARAMETERS: dict[str, Any] = {"validatorUrl": None}

# ReDoc's sidebar always shows Redocly's logo as an <img> from Redocly's CDN (it hides
# itself when that fails). The pages forbid images and fonts from other hosts, so that
# opening the docs never tells a third party who reads them; the browser blocks the
# request before it is made. Scripts and API calls ("Try it out") are not restricted.
OFFLINE_CONTENT_SECURITY_POLICY = "img-src 'self' data: blob:; font-src 'self' data:"


def asset_directory() -> Path:
    """The directory holding ``swagger-ui-dist/`` and ``redoc/`` of the installed sidecar."""
    try:
        package = resources.files(ASSETS_PACKAGE)
    except ModuleNotFoundError as error:
        raise ImproperlyConfigured(
            "serve_docs needs the Swagger UI and ReDoc files of the 'drf-spectacular-sidecar' package: "
            "pip install 'drf-spectacular-sidecar>=2024.1' (djfapi depends on it; was it uninstalled?)"
        ) from error
    directory = package / "static" / ASSETS_PACKAGE
    # StaticFiles serves from the file system: a zipped install has no directory to serve.
    if (
        not isinstance(directory, Path)
        or not (directory / SWAGGER_JS).is_file()
        or not (directory / REDOC_JS).is_file()
    ):
        raise ImproperlyConfigured(
            f"serve_docs: {directory} does not hold the Swagger UI and ReDoc bundles; "
            "reinstall 'drf-spectacular-sidecar' as a regular (unzipped) package"
        )
    return directory


def serve_docs(
    app: FastAPI,
    *,
    docs_url: str | None = "/docs",
    redoc_url: str | None = "/redoc",
    assets_url: str = "/docs-assets",
) -> None:
    """Serve Swagger UI at ``docs_url`` and ReDoc at ``redoc_url`` with no request leaving the host.

    FastAPI's CDN-based pages are removed wherever the app registered them (at
    ``app.docs_url``, ``app.redoc_url``, ``app.swagger_ui_oauth2_redirect_url``), as is
    anything else at the new URLs, so this works whether or not the app was created with
    ``docs_url=None``. The pages honour the request's ``root_path`` (and so
    ``app.root_path``), ``app.openapi_url``, ``app.title``, ``app.swagger_ui_parameters``,
    ``app.swagger_ui_init_oauth`` and ``app.swagger_ui_oauth2_redirect_url``. The asset
    files are served read-only under ``assets_url``. Pass ``None`` for a page to leave it
    out; with both ``None`` the app has no docs pages at all. Nothing appears in the
    OpenAPI document. The routes are put first, so that a catch-all route or a mount at
    ``/`` added earlier cannot hide them.
    """
    if docs_url is None and redoc_url is None:
        _remove_routes(app, _fastapi_docs_urls(app))
        app.docs_url = app.redoc_url = None
        return
    openapi_url = app.openapi_url
    if not openapi_url:
        raise ImproperlyConfigured(
            "serve_docs: the app was created with openapi_url=None, so there is no OpenAPI document for "
            "the docs pages to show; create it with an openapi_url (FastAPI's default is '/openapi.json'), "
            "or call serve_docs(app, docs_url=None, redoc_url=None) to have no docs pages"
        )
    urls = {"docs_url": docs_url, "redoc_url": redoc_url, "assets_url": assets_url}
    for name, url in urls.items():
        if url is not None and (not url.startswith("/") or url == "/"):
            raise ImproperlyConfigured(f"serve_docs: {name}={url!r} must be a path below '/', e.g. '/docs'")
        if url is not None and url.rstrip("/") == openapi_url.rstrip("/"):
            raise ImproperlyConfigured(f"serve_docs: {name}={url!r} is the app's openapi_url; choose another path")
    if docs_url is not None and docs_url == redoc_url:
        raise ImproperlyConfigured(f"serve_docs: docs_url and redoc_url are both {docs_url!r}; give ReDoc its own path")
    assets_url = assets_url.rstrip("/")
    directory = asset_directory()
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url if docs_url else None

    _remove_routes(app, {*_fastapi_docs_urls(app), docs_url, redoc_url, oauth2_redirect_url, assets_url})
    before = list(app.router.routes)

    def asset(request: Request, relative_path: str) -> str:
        return f"{_root_path(request)}{assets_url}/{relative_path}"

    if docs_url:

        async def swagger_ui(request: Request) -> HTMLResponse:
            root_path = _root_path(request)
            return _offline(
                get_swagger_ui_html(
                    openapi_url=root_path + openapi_url,
                    title=f"{app.title} - Swagger UI",
                    swagger_js_url=asset(request, SWAGGER_JS),
                    swagger_css_url=asset(request, SWAGGER_CSS),
                    swagger_favicon_url=asset(request, FAVICON),
                    oauth2_redirect_url=root_path + oauth2_redirect_url if oauth2_redirect_url else None,
                    init_oauth=app.swagger_ui_init_oauth,
                    swagger_ui_parameters={**OFFLINE_SWAGGER_UI_PARAMETERS, **(app.swagger_ui_parameters or {})},
                )
            )

        app.add_route(docs_url, swagger_ui, name="swagger_ui", include_in_schema=False)
        if oauth2_redirect_url:

            async def swagger_ui_oauth2_redirect(request: Request) -> HTMLResponse:
                return get_swagger_ui_oauth2_redirect_html()

            app.add_route(
                oauth2_redirect_url,
                swagger_ui_oauth2_redirect,
                name="swagger_ui_oauth2_redirect",
                include_in_schema=False,
            )

    if redoc_url:

        async def redoc(request: Request) -> HTMLResponse:
            return _offline(
                get_redoc_html(
                    openapi_url=_root_path(request) + openapi_url,
                    title=f"{app.title} - ReDoc",
                    redoc_js_url=asset(request, REDOC_JS),
                    redoc_favicon_url=asset(request, FAVICON),
                    with_google_fonts=False,
                )
            )

        app.add_route(redoc_url, redoc, name="redoc", include_in_schema=False)

    app.mount(assets_url, StaticFiles(directory=directory), name="docs_assets")
    # First in the list, as FastAPI's own docs routes are: an earlier catch-all must not
    # shadow them. Reordering after add_route keeps FastAPI's route caches valid (each
    # add_route marked the routes changed, and nothing was served in between).
    added = [route for route in app.router.routes if route not in before]
    app.router.routes[:] = [*added, *before]
    app.docs_url, app.redoc_url = docs_url, redoc_url


def _offline(page: HTMLResponse) -> HTMLResponse:
    """``page`` with the policy that keeps its images and fonts on this host."""
    page.headers["Content-Security-Policy"] = OFFLINE_CONTENT_SECURITY_POLICY
    return page


def _root_path(request: Request) -> str:
    """Where the app is mounted (``app.root_path`` or the server's), without a trailing slash."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _fastapi_docs_urls(app: FastAPI) -> set[str | None]:
    """The URLs at which FastAPI itself may have registered its CDN-based pages."""
    return {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}


def _remove_routes(app: FastAPI, paths: Iterable[str | None]) -> None:
    """Drop the app's own routes and mounts at ``paths`` (routes of included routers are not there)."""
    doomed = {path.rstrip("/") or "/" for path in paths if path}
    kept: list[BaseRoute] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route | Mount) and (route.path.rstrip("/") or "/") in doomed)
    ]
    if len(kept) != len(app.router.routes):
        app.router.routes[:] = kept

"""``create_app``: one call from a Django project to a ready FastAPI app.

What a new project otherwise has to find out piece by piece, and what it breaks when it
misses one: Django set up before any model is imported, djfapi's error bodies, health
checks, request ids and access logs, API docs that work without internet, the Django
admin next to the API, and djfapi's system checks run at start-up.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from djfapi.routing.django import DjangoRouterSchema

__all__ = ["create_app"]

logger = logging.getLogger("djfapi")


def create_app(
    *routers: DjangoRouterSchema | APIRouter | str,
    settings: str | None = None,
    admin: bool | str = False,
    docs: bool = True,
    health: bool = True,
    request_ids: bool = True,
    metrics: bool | str = False,
    **fastapi_options: Any,
) -> FastAPI:
    """A FastAPI app serving ``routers``, with everything a deployment needs around them.

    * ``routers``: router schemas, FastAPI routers, or ``"module:attribute"`` strings
      naming either. Strings are imported after Django is set up, so the module that
      declares the tree may import models at its top, as usual.
    * ``settings``: the Django settings module, used when ``DJANGO_SETTINGS_MODULE`` is
      unset. Django is set up here unless it already is.
    * ``admin``: ``True`` mounts the Django admin at ``/admin`` (a string: another
      prefix). Django receives the full path, so ``urls.py`` routes it as
      ``startproject`` does: ``path("admin/", admin.site.urls)``.
    * ``docs``: Swagger UI at ``/docs`` and ReDoc at ``/redoc``, served from local files
      (``docs_url=``/``redoc_url=`` move them, ``None`` drops one).
    * ``health``: ``GET /health`` and ``GET /health/ready``; ``request_ids``:
      ``X-Request-ID`` and one access-log line per request.
    * ``metrics``: ``True`` serves Prometheus metrics at ``/metrics`` (a string: another
      path); needs the ``[metrics]`` extra (see ``djfapi.ops.metrics``).
    * Anything else is passed to ``FastAPI(...)`` (``title``, ``version``, ...).

    djfapi's error handlers are always installed, and its system checks run: errors stop
    the start, warnings are logged on the ``djfapi`` logger. ``DJFAPI["GC_THRESHOLD"]``,
    when set, is applied to this process (``djfapi.ops.collector``).
    """
    _set_up_django(settings)
    _run_checks()

    from djfapi.ops.collector import apply_gc_threshold

    apply_gc_threshold()

    from djfapi.errors import install_error_handlers
    from djfapi.ops.docs import serve_docs
    from djfapi.ops.health import health_router
    from djfapi.ops.requests import RequestContextMiddleware

    docs_url = fastapi_options.pop("docs_url", "/docs")
    redoc_url = fastapi_options.pop("redoc_url", "/redoc")
    fastapi_options.setdefault("title", "djfapi")
    app = FastAPI(docs_url=None, redoc_url=None, **fastapi_options)
    install_error_handlers(app)
    if request_ids:
        app.add_middleware(RequestContextMiddleware)
    if metrics:
        from djfapi.ops.metrics import install_metrics

        install_metrics(app, "/metrics" if metrics is True else str(metrics))
    if health:
        app.include_router(health_router())
    for source in routers:
        app.include_router(_router(source))
    _follow_revocations(app, lifespan_given="lifespan" in fastapi_options)
    if docs:
        serve_docs(app, docs_url=docs_url, redoc_url=redoc_url)
    if admin:
        _mount_admin(app, "/admin" if admin is True else str(admin))
    return app


def _follow_revocations(app: FastAPI, *, lifespan_given: bool) -> None:
    """With ``djfapi.auth``: load the revoked tokens and follow them from the start (not at the first request)."""
    from django.apps import apps

    if lifespan_given or not apps.is_installed("djfapi.auth"):
        return  # the first request that carries a token loads them instead
    from djfapi.auth.revocation import startup

    app.router.add_event_handler("startup", startup)


def _set_up_django(settings_module: str | None) -> None:
    import django
    from django.apps import apps
    from django.conf import settings

    if apps.ready:
        return
    if settings_module is not None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ImproperlyConfigured(
            "create_app: Django is not configured. Pass settings='myproject.settings' or set the "
            "DJANGO_SETTINGS_MODULE environment variable."
        )
    django.setup()


def _run_checks() -> None:
    from djfapi import checks

    messages = checks.run()
    errors = [m for m in messages if m.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{m.id}: {m.msg} {m.hint or ''}".strip() for m in errors))
    for message in messages:
        logger.warning("%s: %s %s", message.id, message.msg, message.hint or "")


def _router(source: DjangoRouterSchema | APIRouter | str) -> APIRouter:
    from djfapi.routing.django import DjangoRouterSchema

    value: Any = source
    if isinstance(source, str):
        module_name, _, attribute = source.partition(":")
        if not attribute:
            raise ImproperlyConfigured(f"create_app: name a router as 'module:attribute', got {source!r}")
        value = getattr(importlib.import_module(module_name), attribute, None)
        if value is None:
            raise ImproperlyConfigured(f"create_app: module {module_name!r} has no attribute {attribute!r}")
    if isinstance(value, DjangoRouterSchema):
        return value.router
    if isinstance(value, APIRouter):
        return value
    raise ImproperlyConfigured(
        f"create_app: {source!r} is neither a DjangoRouterSchema, a FastAPI APIRouter nor a 'module:attribute' string"
    )


class DjangoWithFullPath:
    """Django's ASGI app under a mount, seeing the request's full path.

    Starlette's ``Mount`` adds the mount prefix to ``root_path``, from which Django would
    take its script name, so the admin's ``urls.py`` entry (``admin/``) would no longer
    match. Handing Django the app's own root path keeps the project's URL conf as is.
    """

    def __init__(self, django_app: Any, prefix: str) -> None:
        self.django_app = django_app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": scope.get("root_path", "").removesuffix(self.prefix)}
        await self.django_app(scope, receive, send)


def _mount_admin(app: FastAPI, prefix: str) -> None:
    from django.conf import settings
    from django.core.asgi import get_asgi_application
    from django.urls import NoReverseMatch, reverse
    from starlette.staticfiles import StaticFiles

    prefix = "/" + prefix.strip("/")
    if "django.contrib.admin" not in settings.INSTALLED_APPS:
        raise ImproperlyConfigured("create_app(admin=...): add 'django.contrib.admin' to INSTALLED_APPS")
    try:
        index = reverse("admin:index")
    except NoReverseMatch:
        index = None
    if index is None or not index.startswith(prefix + "/"):
        raise ImproperlyConfigured(
            f"create_app(admin={prefix!r}): the project's URL conf must route the admin under {prefix}/ "
            f"(it reverses to {index!r}); add path({prefix.lstrip('/') + '/'!r}, admin.site.urls) to urls.py"
        )
    static_url = str(settings.STATIC_URL or "")
    if static_url.startswith("/"):
        import django.contrib.admin

        admin_static = Path(django.contrib.admin.__file__).parent / "static" / "admin"
        app.mount(f"{static_url.rstrip('/')}/admin", StaticFiles(directory=admin_static), name="admin-static")
    app.mount(prefix, DjangoWithFullPath(get_asgi_application(), prefix), name="admin")

"""djfapi's Django system checks: ``manage.py check`` runs them, and so does ``create_app``.

Each flags a set-up that would fail at start-up or under real traffic, and says how
to fix it. Silence one like any Django check (``SILENCED_SYSTEM_CHECKS = ["djfapi.W001"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

TAG = "djfapi"
#: The router-tree check has its own tag: create_app builds the trees itself, so it runs only TAG.
TREES_TAG = "djfapi_trees"

SQLITE_ENGINE = "django.db.backends.sqlite3"


@checks.register(TAG)
def check_sqlite_transaction_mode(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """djfapi.W001: a SQLite database whose write transactions are not IMMEDIATE."""
    return sqlite_transaction_warnings(settings.DATABASES)


def sqlite_transaction_warnings(databases: Mapping[str, Mapping[str, Any]]) -> list[checks.CheckMessage]:
    """djfapi.W001 for each SQLite database of ``databases`` that begins transactions DEFERRED.

    In that mode a transaction that reads before it writes fails at once with "database
    is locked" when another process is writing, instead of waiting its turn (90
    concurrent writes to the demo once gave 83 such failures). Within one process
    djfapi's writers take turns anyway (``djfapi.orm.transactions``).
    """
    messages: list[checks.CheckMessage] = []
    for alias, config in databases.items():
        if config.get("ENGINE") != SQLITE_ENGINE:
            continue
        mode = str((config.get("OPTIONS") or {}).get("transaction_mode") or "DEFERRED").upper()
        if mode in ("IMMEDIATE", "EXCLUSIVE"):
            continue
        messages.append(
            checks.Warning(
                f"SQLite database {alias!r} begins transactions in {mode} mode: concurrent writers from other "
                f"processes fail with 'database is locked' instead of waiting for each other.",
                hint=(
                    f"Set DATABASES[{alias!r}]['OPTIONS'] = {{'transaction_mode': 'IMMEDIATE', 'timeout': 20}} "
                    f"(Django >= 5.1); 'timeout' is how many seconds a writer waits for the lock."
                ),
                id="djfapi.W001",
            )
        )
    return messages


REPLICA_ROUTER = "djfapi.replicas.ReplicaRouter"


@checks.register(TAG)
def check_read_replicas(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """djfapi.E002 / djfapi.W002: ``DJFAPI["READ_REPLICAS"]`` that would not be used as meant."""
    return read_replica_messages(
        settings.DATABASES, list(getattr(settings, "DATABASE_ROUTERS", [])), getattr(settings, "DJFAPI", {})
    )


def read_replica_messages(
    databases: Mapping[str, Any], routers: list[Any], djfapi: Mapping[str, Any]
) -> list[checks.CheckMessage]:
    """E002: a replica or the primary that ``DATABASES`` lacks; W002: replicas named but no router to use them."""
    names = list(djfapi.get("READ_REPLICAS", []))
    if not names:
        return []
    messages: list[checks.CheckMessage] = []
    primary = djfapi.get("PRIMARY_DATABASE", "default")
    for alias in [primary, *names]:
        if alias not in databases:
            messages.append(
                checks.Error(
                    f"DJFAPI names the database {alias!r} (READ_REPLICAS / PRIMARY_DATABASE), but DATABASES has no "
                    f"such alias.",
                    hint=f"Add DATABASES[{alias!r}] or remove it from DJFAPI.",
                    id="djfapi.E002",
                )
            )
    if REPLICA_ROUTER not in [r if isinstance(r, str) else f"{type(r).__module__}.{type(r).__name__}" for r in routers]:
        messages.append(
            checks.Warning(
                "DJFAPI['READ_REPLICAS'] is set, but the replica router is not installed: every read goes to the "
                "primary.",
                hint=f"Add {REPLICA_ROUTER!r} to DATABASE_ROUTERS.",
                id="djfapi.W002",
            )
        )
    return messages


@checks.register(TAG)
def check_gc_threshold(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """djfapi.E003: a ``DJFAPI["GC_THRESHOLD"]`` that is no threshold, or would turn collection off."""
    from djfapi.ops.collector import SETTING, threshold_problem

    value = getattr(settings, "DJFAPI", {}).get(SETTING)
    problem = threshold_problem(value) if value is not None else None
    if problem is None:
        return []
    return [
        checks.Error(
            f'DJFAPI["{SETTING}"] {problem}.',
            hint="Use one integer (the young generation's threshold, e.g. 10_000), or remove the key to keep the "
            "interpreter's defaults.",
            id="djfapi.E003",
        )
    ]


@checks.register(TREES_TAG)
def check_router_trees(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """djfapi.E001: a router tree that would not start (every definition-time check).

    ``manage.py check`` sees the trees the project imports while Django loads — import
    yours in an ``AppConfig.ready()``, which the change feed needs anyway — and reports
    what building the router would raise, instead of the first request or the server's
    start finding it.
    """
    from djfapi.routing.django import declared_roots

    messages: list[checks.CheckMessage] = []
    for root in declared_roots():
        try:
            root.router  # noqa: B018 - builds and checks the whole tree
        except ImproperlyConfigured as error:
            messages.append(checks.Error(str(error), obj=root, id="djfapi.E001"))
    return messages


@checks.register(TREES_TAG)
def check_indexes(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """djfapi.W110-W116: a list path of a router tree that no index of its model serves.

    See ``djfapi.routing.index_advice``: each warning names the ``models.Index`` to add.
    A tree that would not build is E001's to report, not this check's.
    """
    from djfapi.routing.django import declared_roots
    from djfapi.routing.index_advice import advice_for_tree, describe

    messages: list[checks.CheckMessage] = []
    for root in declared_roots():
        try:
            found = advice_for_tree(root)
        except ImproperlyConfigured:
            continue
        for advice in found:
            message, hint = describe(advice)
            messages.append(checks.Warning(message, hint=hint, obj=advice.node, id=advice.check_id))
    return messages


def run(*, include_warnings: bool = True) -> list[checks.CheckMessage]:
    """djfapi's checks that are not silenced (what ``manage.py check`` would show of them)."""
    messages = checks.run_checks(tags=[TAG], include_deployment_checks=False)
    return [m for m in messages if not m.is_silenced() and (include_warnings or m.level >= checks.ERROR)]

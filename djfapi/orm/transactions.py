"""The transaction of one write request, and why SQLite writers take turns in a process.

SQLite allows one writer at a time. When two transactions of one process both want to
write, SQLite makes the loser wait in its busy handler (sleeping in growing steps, so
the p99 of writes climbs to seconds) or, for a ``DEFERRED`` transaction that read
before it wrote, fails it at once with "database is locked" (a 503 for the client,
even where two racing ``If-Match`` writes should end 200 + 412). Writers of one
process therefore queue on a lock per database before they begin: the second one
starts when the first has committed, and sees its result. Across processes SQLite's
own locking still applies; ``transaction_mode: IMMEDIATE`` (djfapi's system check
asks for it) makes those writers wait for each other instead of failing.

Other databases get a plain ``transaction.atomic``: they lock rows, not the database.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.db import connections, models, router, transaction

_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def _sqlite_lock(alias: str) -> threading.RLock:
    with _locks_guard:
        return _locks.setdefault(alias, threading.RLock())


@contextlib.contextmanager
def write_transaction(model: type[models.Model], *, dry_run: bool = False) -> Iterator[None]:
    """One transaction on ``model``'s write database; on SQLite, one writer per process at a time.

    ``dry_run``: everything runs as usual, then the transaction is rolled back instead of
    committed (so its ``on_commit`` callbacks, the change feed's among them, never run).
    On PostgreSQL deferred constraints are checked at once, as a commit would check them.
    """
    alias = router.db_for_write(model)
    connection = connections[alias]
    lock = _sqlite_lock(alias) if connection.vendor == "sqlite" and not connection.in_atomic_block else None
    with lock or contextlib.nullcontext(), transaction.atomic(using=alias):
        if dry_run and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        yield
        if dry_run:
            transaction.set_rollback(True, using=alias)

"""A fresh database per run: an SQLite file, or a PostgreSQL database next to ``DATABASE_URL``'s.

An SQLite file in the work directory (``benchmarks/.work/``, or ``BENCH_WORK_DIR``)
unless ``DATABASE_URL`` is set; then a PostgreSQL database ``<name>_<pid>`` created
next to the one the URL names (leftovers of killed runs, whose pid is gone, are
dropped first). Either is removed at the end, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks.config import WORK_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "testproject.settings"


@dataclass(frozen=True)
class Database:
    url: str
    vendor: str
    name: str


def child_environment(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of the seeding commands and of the server."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    env["DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _admin_url(parts: Any) -> str:
    return urlunsplit(parts._replace(path="/postgres"))


def _drop_stale_databases(admin: Any, base: str) -> None:
    """Drop ``<base>_<pid>`` databases of benchmark runs that were killed."""
    from psycopg import sql

    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [base + "\\_%"]).fetchall()
    for (name,) in rows:
        match = re.fullmatch(rf"{re.escape(base)}_(\d+)", name)
        if match and not alive(int(match.group(1))):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def scratch_database(*, keep: bool = False) -> Iterator[Database]:
    """A fresh, empty database for this run (see the module docstring); removed afterwards unless ``keep``."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        path = WORK_DIR / f"live-{os.getpid()}.sqlite3"
        _remove_sqlite(path)
        try:
            yield Database(f"sqlite:///{path}", "sqlite", str(path))
        finally:
            if not keep:
                _remove_sqlite(path)
        return
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"DATABASE_URL: only postgres:// is supported (or none, for SQLite), not {parts.scheme}://")
    import psycopg
    from psycopg import sql

    base = parts.path.lstrip("/") or "djfapi_livebench"
    name = f"{base}_{os.getpid()}"
    with psycopg.connect(_admin_url(parts), autocommit=True, connect_timeout=10) as admin:
        _drop_stale_databases(admin, base)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield Database(urlunsplit(parts._replace(path=f"/{name}")), "postgresql", name)
    finally:
        if not keep:
            with psycopg.connect(_admin_url(parts), autocommit=True, connect_timeout=10) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_command(database: Database, *command: str) -> str:
    """Run ``python <command>`` against ``database`` in the work directory; its stdout."""
    result = subprocess.run(
        [sys.executable, *command],
        cwd=WORK_DIR,
        env=child_environment(database.url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def seed_demo(database: Database) -> None:
    """Migrate and seed the demo data with ``python -m testproject seed``."""
    run_command(database, "-m", "testproject", "seed")

"""Constants every part of the suite agrees on: where it keeps its files, who calls.

The orchestrator, the contender servers and the load generator are separate
processes; they share nothing but these names, the environment and the database.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent

WORK_DIR = Path(os.environ.get("BENCH_WORK_DIR", PACKAGE_DIR / ".work"))
"""SQLite database, server logs, profiles and JSON results (ignored by git)."""

SQLITE_PATH = WORK_DIR / "bench.sqlite3"

SETTINGS_MODULE = "benchmarks.settings"

TENANT = "alpha"
"""The tenant every request is made as."""

OTHER_TENANT = "beta"
"""A second tenant of the same size, so that tenant filtering has rows to leave out."""

USER = "bench-user"

SCOPES = (
    "business.companies.read.any",
    "business.companies.create",
    "business.companies.update.any",
)
"""``any`` scopes: every contender filters by tenant only (no "companies I own" subquery)."""

DEFAULT_COMPANIES = 1000
"""Companies per tenant in the seeded database."""

MAX_LIMIT = 1000
"""The testproject's ``max_limit``: the page size of the memory measurement."""

QUERIES_HEADER = "x-bench-queries"
TX_HEADER = "x-bench-tx-statements"
MEMORY_HEADER = "x-bench-peak-memory"


def ensure_work_dir() -> Path:
    """Create the work directory with a ``.gitignore`` that keeps it out of the repository."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    ignore = WORK_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return WORK_DIR


def setup_django() -> None:
    """Configure Django with the benchmark settings in this (orchestrating) process."""
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    django.setup()

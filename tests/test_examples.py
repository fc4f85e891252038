"""The example project (``examples/shop``, the tutorial's) passes its own tests.

They run as a separate pytest process in ``examples/shop``: the example is a Django
project of its own (its settings, its app, its test database), which cannot share this
suite's Django set-up. The database is the same kind as this run's: ``DATABASE_URL``
and ``CI`` are passed on, and on PostgreSQL the example's test database has a name of
its own (``test_<name>_examples_shop``), so the two suites never touch each other's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shop"


def test_the_shop_example_passes_its_tests() -> None:
    environ = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"examples/shop: pytest exited {result.returncode}\n{result.stdout}{result.stderr}"

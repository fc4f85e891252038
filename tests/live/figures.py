"""The figures of the reliability tests (requests driven, connection counts, cases run).

Tests ``record`` a line each; the lines are printed once, when the test session ends,
under a heading that says which database the run used, so that every CI log carries
the numbers the README quotes.
"""

from __future__ import annotations

import pytest

_LINES = pytest.StashKey[list[str]]()


def record(config: pytest.Config, line: str) -> None:
    """Keep ``line`` for the end-of-session summary."""
    lines = config.stash.get(_LINES, None)
    if lines is None:
        lines = config.stash[_LINES] = []
        config.add_cleanup(lambda: _print(lines))
    lines.append(line)


def _print(lines: list[str]) -> None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"\ndjfapi reliability figures ({engine}):")
    for line in lines:
        print(f"  {line}")

"""The demo's OpenAPI document, snapshot-tested: any change to the public surface is a diff.

After an intended change, regenerate the snapshot with
``UPDATE_SNAPSHOTS=1 pytest tests/test_openapi_snapshot.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_openapi_matches_snapshot(app: FastAPI) -> None:
    current = render(app)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text(), (
        "The OpenAPI document changed. If intended, run UPDATE_SNAPSHOTS=1 pytest tests/test_openapi_snapshot.py "
        "and commit the new snapshot."
    )


def test_operation_ids_are_unique(app: FastAPI) -> None:
    operation_ids = [op["operationId"] for ops in app.openapi()["paths"].values() for op in ops.values()]
    # 42 routes (skills added 6), OPTIONS on the 12 collection and item paths, the public
    # directory's list and get (and their OPTIONS), and the 5 token-lifecycle routes
    assert len(operation_ids) == len(set(operation_ids)) == 63

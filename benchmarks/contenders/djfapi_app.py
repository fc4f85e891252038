"""The djfapi contender: the testproject's own app, generated routes and JWT auth as shipped.

Nothing is rebuilt or tuned here: ``testproject.app.create_app()`` is what
``python -m testproject`` serves (its Django admin mount included).
"""

from __future__ import annotations

from typing import Any


def create() -> Any:
    from testproject.app import create_app

    return create_app()

"""djfapi: secured, nested, multi-tenant FastAPI routers generated from Django models.

The names most user code needs are re-exported here: the ORM-aware pydantic base
class, its field function, and ``create_app``. Everything else lives in the sub-packages
(``djfapi.routing.django``, ``djfapi.security.jwt``, ``djfapi.schemas``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from djfapi.orm.base import BaseModel
from djfapi.orm.fields import Field

if TYPE_CHECKING:
    from djfapi.app import create_app

__all__ = ["BaseModel", "Field", "__version__", "create_app"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Imported on first use: ``import djfapi`` stays free of FastAPI's app machinery.
    if name == "create_app":
        from djfapi.app import create_app

        return create_app
    raise AttributeError(f"module 'djfapi' has no attribute {name!r}")

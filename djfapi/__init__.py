"""djfapi: secured, nested, multi-tenant FastAPI routers generated from Django models.

The names most user code needs are re-exported here: the ORM-aware pydantic base
class and its field function. Everything else lives in the sub-packages
(``djfapi.routing.django``, ``djfapi.security.jwt``, ``djfapi.schemas``, ...).
"""

from __future__ import annotations

from djfapi.orm.base import BaseModel
from djfapi.orm.fields import Field

__all__ = ["BaseModel", "Field", "__version__"]

__version__ = "0.1.0"

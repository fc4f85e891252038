"""The error body every non-422 error response carries (SPEC §7)."""

from __future__ import annotations

from typing import Any

import pydantic


class ErrorDetail(pydantic.BaseModel):
    type: str = pydantic.Field(description="error class, e.g. not_found, forbidden, conflict")
    code: str | None = pydantic.Field(description="stable machine-readable code, e.g. not_exist:company")
    message: str | None = pydantic.Field(description="human-readable explanation")
    detail: Any = pydantic.Field(None, description="structured extra information")


class Error(pydantic.BaseModel):
    detail: ErrorDetail
    event_id: str | None = pydantic.Field(None, description="Sentry event id, present when Sentry recorded the error")

    @pydantic.model_validator(mode="before")
    @classmethod
    def _upstream_fields(cls, data: Any) -> Any:
        """Upstream's ``Error(type=..., code=..., message=...)`` (its fields at the top): a deprecated shim."""
        if isinstance(data, dict) and "detail" not in data and set(data) & {"type", "code", "message"}:
            from djfapi.compat import deprecated

            deprecated("Error(type=..., code=..., message=...)", "djfapi.errors' exception classes", stacklevel=6)
            fields = {"type": data.get("type") or "error", "code": None, "message": None, **data}
            return {"detail": fields}
        return data

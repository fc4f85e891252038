"""A JSON log formatter: one object per line, for log shippers.

Use it in Django's ``LOGGING``::

    "formatters": {"json": {"()": "djfapi.ops.logs.JSONFormatter"}},

Access-log records carry their fields under ``record.djfapi`` (see
``djfapi.ops.requests``); they become top-level keys of the JSON object.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "djfapi", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)

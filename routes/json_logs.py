"""LOG_FORMAT=json: one JSON object per line, with the request id, tenant and user of the request."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from quart import g, has_request_context

# Extra fields a log call may attach; anything else passed as `extra` stays out, so a careless
# `extra={"password": ...}` or a whole request body can never reach the log.
ALLOWED_EXTRA = ("method", "route", "status", "duration_ms", "remote_addr")


def request_identity() -> dict[str, Any]:
    """The tenant code and user id of the current request, when known (never credentials)."""
    if not has_request_context():
        return {"tenant": None, "user_id": None}
    principal = g.get("principal")
    if principal is not None:
        return {"tenant": principal.tenant.code, "user_id": principal.user.id}
    tenant = g.get("tenant")
    return {"tenant": tenant.code if tenant is not None else None, "user_id": None}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message, request id, tenant, user id."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line for `record`."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            **request_identity(),
        }
        entry.update({key: getattr(record, key) for key in ALLOWED_EXTRA if hasattr(record, key)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

"""Logging: one console handler with the request id; LOG_FORMAT=json writes one JSON object per line with the request id, tenant and user."""

from __future__ import annotations

import json
import logging
import sys
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


class RequestIdFilter(logging.Filter):
    """Stamp every log record with the request id, when there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` to the record."""
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(level: str, log_format: str = "text") -> None:
    """One console handler with the request id in every line (JSON lines when LOG_FORMAT=json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    text = logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter() if log_format == "json" else text)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_cuponera", False)]
    handler._cuponera = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())

"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_response

from controllers.errors import ServiceUnavailable
from routes.common import problems, services

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


class HealthOut(BaseModel):
    """Probe result."""

    status: str


@bp.get("/healthz")
@validate_response(HealthOut, 200)
async def healthz() -> HealthOut:
    """Liveness: the process is up."""
    return HealthOut(status="ok")


@bp.get("/readyz")
@validate_response(HealthOut, 200)
@problems(503)
async def readyz() -> HealthOut:
    """Readiness: the database answers `SELECT 1`."""
    try:
        await services().sql.ping()
    except Exception as exc:  # any driver error means "not ready"
        log.warning("readiness check failed: %s", exc)
        raise ServiceUnavailable("The database is not reachable.", code="database_unavailable") from exc
    return HealthOut(status="ok")

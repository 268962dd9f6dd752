"""GET /metrics (Prometheus text, Bearer METRICS_TOKEN) and the per-request hooks that feed it."""

from __future__ import annotations

import hmac
import logging
import time

from quart import Blueprint, Quart, Response, g, request
from quart_rate_limiter import rate_exempt
from quart_schema import hide

from clients.metrics_client import CONTENT_TYPE, Metrics
from controllers.errors import AuthenticationFailed, NotFound
from models.base_model import utcnow
from routes.common import services

bp = Blueprint("metrics", __name__)
access_log = logging.getLogger("cuponera.access")
UNMATCHED_ROUTE = "<unmatched>"


def metrics() -> Metrics:
    """This app's metrics."""
    return services().metrics


@bp.get("/metrics")
@hide
@rate_exempt
async def scrape() -> Response:
    """Prometheus text exposition; 404 while METRICS_TOKEN is unset, 401 without the right Bearer token."""
    token = services().settings.METRICS_TOKEN
    if not token:
        raise NotFound("Metrics are off; set METRICS_TOKEN to serve them.", code="not_found")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise AuthenticationFailed("Send Authorization: Bearer <METRICS_TOKEN>.", code="metrics_token_invalid")
    body = await metrics().render(services().sql, now=utcnow())
    return Response(body, content_type=CONTENT_TYPE)


async def start_timer() -> None:
    """Remember when the request started (registered first, so a 429 or 403 is timed too)."""
    g.metrics_started = time.perf_counter()


async def record_request(response: Response) -> Response:
    """Count the request under its URL rule (never the raw path, which would explode the label set)."""
    seconds = time.perf_counter() - g.get("metrics_started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
    metrics().observe(route=route, method=request.method, status=response.status_code, seconds=seconds)
    if services().settings.LOG_FORMAT == "json":
        # hypercorn's access log is plain text; in JSON mode the app writes the access line itself.
        access_log.info(
            "%s %s %s", request.method, route, response.status_code,
            extra={"method": request.method, "route": route, "status": response.status_code,
                   "duration_ms": round(seconds * 1000, 1), "remote_addr": request.remote_addr},
        )
    return response


def install_metrics(app: Quart) -> None:
    """Serve /metrics and time every request; call before other before_request hooks are registered."""
    app.before_request(start_timer)
    app.after_request(record_request)
    app.register_blueprint(bp)

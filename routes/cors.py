"""Cross-origin browser access: the CORS policy, free preflights and an explained 401 for cookieless partner calls."""

from __future__ import annotations

from quart import Quart, current_app, request
from quart_cors import cors

from routes.security import CSRF_HEADER, REQUEST_ID_HEADER

# The README section a partner developer needs when the browser drops the session cookie.
PARTNER_DOCS = "README.md#partner-frontends-same-site-only"
SESSION_COOKIE = "cuponera_session"
# Headers a partner's JavaScript may read; without this list the browser hides them from fetch().
EXPOSED_HEADERS = [
    REQUEST_ID_HEADER, "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
    "Content-Disposition", "Idempotent-Replayed",
]
_ORIGINS_KEY = "CUPONERA_CORS_ORIGINS"


def install_cors(app: Quart, origins: tuple[str, ...]) -> Quart:
    """Allow credentialed requests from the configured origins only (none configured: no CORS headers at all)."""
    app.config[_ORIGINS_KEY] = frozenset(origins)
    if not origins:
        return app
    return cors(
        app,
        allow_origin=list(origins),
        allow_credentials=True,
        allow_headers=["Content-Type", CSRF_HEADER, "Idempotency-Key", "X-Tenant-ID", REQUEST_ID_HEADER],
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )


async def is_preflight() -> bool:
    """OPTIONS requests do no work, so the rate limiter skips them (a browser sends one before many calls)."""
    return request.method == "OPTIONS"


def unauthenticated_detail() -> str:
    """Why a request is not logged in; for an allowed partner origin that sent no cookie, what to do about it."""
    origin = request.headers.get("Origin", "")
    allowed = current_app.config.get(_ORIGINS_KEY, frozenset())
    if origin in allowed and SESSION_COOKIE not in request.cookies:
        return (
            f"This request from {origin} carried no session cookie. Browsers send the SameSite session cookie only "
            "to pages on the same site as the API (the same registrable domain, any port), so a partner page on "
            "another site cannot stay logged in. Serve the page under the utility's site, or call the API from "
            f"your own backend (a backend-for-frontend). See {PARTNER_DOCS}."
        )
    return "Log in to use this endpoint."

"""Static pages the app serves itself: the customer portal, the reset-password page and offline API docs assets."""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from quart import Blueprint, Response, redirect, send_from_directory
from quart_schema import hide

from config import ROOT

bp = Blueprint("portal", __name__)

PORTAL_DIR = ROOT / "static" / "portal"
# Swagger UI 5 (OpenAPI 3.1) ships inside the `swagger-ui-py` wheel (Apache-2.0), so /docs needs no CDN.
SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})
SWAGGER_JS_URL = "/docs/assets/swagger-ui-bundle.js"
SWAGGER_CSS_URL = "/docs/assets/swagger-ui.css"
# Only this app's own files: the portal must work with no request to any other host.
PORTAL_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Swagger UI's bundle injects inline styles; everything else still comes from this origin only.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"
)


def _static(response: Response, csp: str) -> Response:
    """Revalidate static files on every load (a deploy shows at once) and pin them to this origin."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/docs/assets/<name>")
@hide
async def docs_asset(name: str) -> Response:
    """One of the few Swagger UI files /docs loads, from the installed package."""
    if name not in SWAGGER_FILES:
        return Response("Not found", status=404, content_type="text/plain")
    return _static(await send_from_directory(SWAGGER_DIR, name), DOCS_CSP)


@bp.get("/portal")
@hide
async def portal_redirect() -> Response:
    """The portal's relative links need the trailing slash."""
    return redirect("/portal/", 308)  # type: ignore[return-value]


@bp.get("/portal/")
@hide
async def portal_index() -> Response:
    """The portal's single page."""
    return _static(await send_from_directory(PORTAL_DIR, "index.html"), PORTAL_CSP)


@bp.get("/portal/<path:name>")
@hide
async def portal_file(name: str) -> Response:
    """The portal's scripts, styles and translations (send_from_directory refuses paths outside it)."""
    return _static(await send_from_directory(PORTAL_DIR, name), PORTAL_CSP)


@bp.get("/reset-password")
@hide
async def reset_password_page() -> Response:
    """The page the reset emails link to: the portal, which opens its reset form when `?token=` is present."""
    return _static(await send_from_directory(PORTAL_DIR, "index.html"), PORTAL_CSP)

"""Per-request security: request ids, CSRF checks on unsafe methods and security headers."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import TypeVar

from quart import Quart, Response, current_app, g, request
from quart.sessions import SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket
from quart_auth import current_user

from controllers import auth_controller
from controllers.errors import Forbidden

F = TypeVar("F", bound=Callable[..., object])

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_HEADER = "X-CSRF-Token"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_CSRF_EXEMPT = "_cuponera_csrf_exempt"


def csrf_exempt(func: F) -> F:
    """Mark a route that carries no ambient authority (login, machine channels) as CSRF-free."""
    setattr(func, _CSRF_EXEMPT, True)
    return func


async def assign_request_id() -> None:
    """Keep a caller's well-formed X-Request-ID, or make one, for logs and problem bodies."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else secrets.token_hex(8)


async def check_csrf() -> None:
    """A cookie-authenticated unsafe request must echo the session's CSRF token."""
    if request.method not in UNSAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, _CSRF_EXEMPT, False):
        return
    parsed = auth_controller.parse_auth_id(current_user.auth_id)
    if parsed is None:
        return  # no session cookie, so no ambient authority to abuse
    max_age = current_app.config["QUART_AUTH_DURATION"]
    token = request.headers.get(CSRF_HEADER)
    if not auth_controller.csrf_token_valid(current_app.secret_key, token, parsed.nonce, max_age=max_age):
        raise Forbidden(
            f"Send the {CSRF_HEADER} header from the login response or GET /api/v1/auth/csrf.",
            code="csrf_token_invalid" if token else "csrf_token_missing",
        )


async def add_security_headers(response: Response) -> Response:
    """nosniff, no framing, no referrer, the request id, and no caching of API data."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    if g.get("request_id"):
        response.headers[REQUEST_ID_HEADER] = g.request_id
    return response


class NoServerSession(SessionInterface):
    """No Quart `session` cookie: a login is quart-auth's own signed cookie, and nothing else keeps
    state in a cookie. Quart then gives each request its null session (writing to it raises), and
    does not read, verify or write a `session` cookie on every request."""

    async def open_session(self, app: Quart, request_websocket: BaseRequestWebsocket) -> None:
        return None

    async def save_session(self, app: Quart, session: SessionMixin, response: object) -> None:
        return None


def install_security(app: Quart) -> None:
    """Register the hooks on the app."""
    app.session_interface = NoServerSession()
    app.before_request(assign_request_id)
    app.before_request(check_csrf)
    app.after_request(add_security_headers)

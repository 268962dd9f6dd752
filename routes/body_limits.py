"""Request-body limits checked before any JSON parser runs: size (413) and nesting depth (400).

Every body may be up to MAX_BODY_BYTES; a route marked `@large_body(n)` (a bank's collection file, a reading file)
up to n. The server reads no body past the largest limit (MAX_REQUEST_BYTES, the app's
MAX_CONTENT_LENGTH), and a declared Content-Length over a route's limit is refused before reading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from quart import Quart, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from domain.json_limits import json_nesting_exceeds
from routes.errors import JsonTooDeep

# Our schemas nest a few levels; 32 leaves room for any honest body and stays far below the
# recursion limit of every JSON parser (the stdlib one fails with RecursionError near 1 000).
MAX_JSON_DEPTH = 32
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MAX_BODY_BYTES = 1024 * 1024
# An Asobancaria file of 100 000 details is about 16.4 MB.
MAX_REQUEST_BYTES = 32 * 1024 * 1024
F = TypeVar("F", bound=Callable[..., object])


def large_body(max_bytes: int) -> Callable[[F], F]:
    """Let one route take a body of up to `max_bytes` (at most MAX_REQUEST_BYTES); put it right under the route decorator."""
    if max_bytes > MAX_REQUEST_BYTES:
        raise ValueError("raise MAX_REQUEST_BYTES first")

    def decorator(func: F) -> F:
        func.max_body_bytes = max_bytes  # type: ignore[attr-defined]
        return func

    return decorator


def _route_limit() -> int:
    view = current_app.view_functions.get(request.endpoint or "")
    return int(getattr(view, "max_body_bytes", MAX_BODY_BYTES))


async def check_json_depth() -> None:
    """Refuse a body that nests too deeply, for every route; the size limit (MAX_CONTENT_LENGTH) applies while reading."""
    if request.method not in BODY_METHODS:
        return
    limit = _route_limit()
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()
    raw = await request.get_data(cache=True)  # a 413 here when the body is over MAX_CONTENT_LENGTH
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    if json_nesting_exceeds(raw, MAX_JSON_DEPTH):
        raise JsonTooDeep(description=f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")


def install_body_limits(app: Quart) -> None:
    """Register the depth check; it runs before CSRF and rate limits so no view ever parses such a body."""
    app.before_request(check_json_depth)

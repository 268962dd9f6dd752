"""Request-body limits checked before any JSON parser runs: size (413) and nesting depth (400)."""

from __future__ import annotations

from quart import Quart, request

from domain.json_limits import json_nesting_exceeds
from routes.errors import JsonTooDeep

# Our schemas nest a few levels; 32 leaves room for any honest body and stays far below the
# recursion limit of every JSON parser (the stdlib one fails with RecursionError near 1 000).
MAX_JSON_DEPTH = 32
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


async def check_json_depth() -> None:
    """Refuse a body that nests too deeply, for every route; the size limit (MAX_CONTENT_LENGTH) applies while reading."""
    if request.method not in BODY_METHODS:
        return
    raw = await request.get_data(cache=True)  # a 413 here when the body is over MAX_CONTENT_LENGTH
    if json_nesting_exceeds(raw, MAX_JSON_DEPTH):
        raise JsonTooDeep(description=f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")


def install_body_limits(app: Quart) -> None:
    """Register the depth check; it runs before CSRF and rate limits so no view ever parses such a body."""
    app.before_request(check_json_depth)

"""The one place where every error becomes an `application/problem+json` response."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError
from quart import Quart, Request, Response, g, has_app_context, json
from quart_auth import Unauthorized
from quart_rate_limiter import RateLimitExceeded
from quart_schema import RequestSchemaValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import BadRequest, HTTPException

from clients.sql_client import is_busy_error
from controllers.errors import (
    AccountLocked,
    AuthenticationFailed,
    BadInput,
    Conflict,
    DomainError,
    DomainValidationError,
    Forbidden,
    Gone,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)
from routes.cors import unauthenticated_detail
from routes.unit_of_work import database_busy

log = logging.getLogger("cuponera.errors")

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (BadInput, 400),
    (AuthenticationFailed, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Gone, 410),
    (DomainValidationError, 422),
    (AccountLocked, 423),
    (TooManyRequests, 429),
    (ServiceUnavailable, 503),
]

CODE_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}


class MalformedJson(BadRequest):
    """The request body is not valid JSON."""


class JsonTooDeep(BadRequest):
    """The JSON body nests deeper than the API allows (see routes.body_limits)."""


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    request_id = g.get("request_id") if has_app_context() else None
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    response = Response(json.dumps(body), status=status, content_type=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_errors(exc: Exception) -> list[dict[str, Any]]:
    """Field-level errors from a pydantic ValidationError, as dotted paths."""
    if not isinstance(exc, ValidationError):
        return [{"field": "", "message": str(exc), "code": "invalid"}]
    items = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error.get("loc", ()))
        items.append({"field": location or "body", "message": error.get("msg", "invalid"), "code": error.get("type")})
    return items


def register_error_handlers(app: Quart) -> None:
    """Map domain errors, validation errors, HTTP errors and crashes to problem+json."""

    @app.errorhandler(DomainError)
    async def domain_error(exc: DomainError) -> Response:
        status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 400)
        headers = {}
        extra = dict(exc.extra)
        if "retry_after" in extra:
            headers["Retry-After"] = str(extra["retry_after"])
        errors = [{"field": e.field, "message": e.message, "code": e.code} for e in exc.errors]
        return problem_response(
            status, exc.code, exc.detail, title=exc.title, errors=errors or None, headers=headers, **extra
        )

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(exc: RequestSchemaValidationError) -> Response:
        return problem_response(
            422,
            "validation_error",
            "The request has invalid fields.",
            title="Validation failed",
            errors=_validation_errors(exc.validation_error),
        )

    @app.errorhandler(MalformedJson)
    async def malformed_json(exc: MalformedJson) -> Response:
        return problem_response(400, "malformed_json", "The request body is not valid JSON.")

    @app.errorhandler(JsonTooDeep)
    async def json_too_deep(exc: JsonTooDeep) -> Response:
        return problem_response(400, "json_too_deep", exc.description or "The JSON body nests too deeply.")

    @app.errorhandler(RateLimitExceeded)
    async def rate_limited(exc: RateLimitExceeded) -> Response:
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "retry-after"}
        return problem_response(
            429, "rate_limited", "Too many requests; slow down and retry later.", headers=headers
        )

    @app.errorhandler(Unauthorized)
    async def unauthorized(exc: Unauthorized) -> Response:
        return problem_response(401, "not_authenticated", unauthenticated_detail())

    @app.errorhandler(IntegrityError)
    async def integrity_error(exc: IntegrityError) -> Response:
        log.info("integrity error mapped to 409: %s", exc.orig)
        return problem_response(
            409, "conflict", "The change conflicts with existing data (a duplicate or a dependency)."
        )

    @app.errorhandler(DataError)
    @app.errorhandler(OverflowError)
    async def out_of_range(exc: Exception) -> Response:
        # A number the database cannot hold (an id beyond INTEGER, say): the input is at fault.
        log.info("value out of range mapped to 422: %s", exc)
        return problem_response(
            422, "value_out_of_range", "A value in the request is outside the range this API accepts."
        )

    @app.errorhandler(PoolTimeoutError)
    @app.errorhandler(DBAPIError)
    async def database_error(exc: Exception) -> Response:
        # Outside a route handler (a hook): the database could not be had in time, as routes.unit_of_work says.
        if is_busy_error(exc):
            return await domain_error(database_busy())
        # asyncpg reports an out-of-range argument as a generic driver error before the query runs.
        orig = str(getattr(exc, "orig", ""))
        if "out of" in orig and "range" in orig:
            return await out_of_range(exc)
        return await unexpected(exc)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status >= 500:
            log.error("HTTP %s [request_id=%s]: %s", status, g.get("request_id"), exc)
        code = CODE_BY_STATUS.get(status, "http_error")
        detail = exc.description if status < 500 else "The server could not complete the request."
        if status == 404:
            detail = "No such resource."
        elif status == 405:
            detail = "The method is not allowed on this resource."
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return problem_response(status, code, detail or HTTPStatus(status).phrase, headers=headers)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error [request_id=%s]", g.get("request_id"))
        return problem_response(
            500,
            "internal_error",
            "Something went wrong on our side. Quote the request_id if you contact support.",
        )


class CuponeraRequest(Request):
    """A request whose malformed JSON body becomes a 400 problem, not an HTML page."""

    def on_json_loading_failed(self, error: Exception) -> Any:
        """Raise our own BadRequest subclass so the error handler can name it."""
        raise MalformedJson(description="The request body is not valid JSON.")

    async def get_json(self, *args: Any, **kwargs: Any) -> Any:
        """Parse the JSON body; bytes that are not UTF-8 are malformed JSON too, not a crash."""
        try:
            return await super().get_json(*args, **kwargs)
        except UnicodeDecodeError as exc:
            raise MalformedJson(description="The request body is not valid UTF-8 JSON.") from exc

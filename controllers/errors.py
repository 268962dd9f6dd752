"""Domain errors raised by controllers; routes/errors.py maps them to problem+json once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One field at fault: a dotted path and what is wrong with it."""

    field: str
    message: str
    code: str | None = None


class DomainError(Exception):
    """Base of every business rule failure; carries a stable snake_case code."""

    code = "domain_error"
    title = "Request failed"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: Sequence[FieldError] = (),
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = tuple(errors)
        self.extra = dict(extra or {})


class BadInput(DomainError):
    """The request cannot be understood (a missing header, a malformed token)."""

    code = "bad_request"
    title = "Bad request"


class NotFound(DomainError):
    """The thing does not exist, or belongs to someone else (never say which)."""

    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, an illegal transition)."""

    code = "conflict"
    title = "Conflict"


class Gone(DomainError):
    """The thing existed but can no longer be used (a cancelled coupon)."""

    code = "gone"
    title = "Gone"


class Forbidden(DomainError):
    """Logged in, but not allowed to do this."""

    code = "forbidden"
    title = "Forbidden"


class AuthenticationFailed(DomainError):
    """Credentials or a session are missing or wrong."""

    code = "unauthorized"
    title = "Unauthorized"


class AccountLocked(DomainError):
    """Too many failed logins; the account is locked for a while."""

    code = "account_locked"
    title = "Account locked"


class DomainValidationError(DomainError):
    """Well-formed input that breaks a business rule."""

    code = "validation_error"
    title = "Validation failed"


class TooManyRequests(DomainError):
    """A business-level rate limit was hit."""

    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(DomainError):
    """A dependency (the database, a gateway) is not answering."""

    code = "service_unavailable"
    title = "Service unavailable"

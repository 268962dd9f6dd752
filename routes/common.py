"""Shared route plumbing: the request's session, tenant and user, role checks and problem docs."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from functools import wraps
from typing import Annotated, Any, ClassVar, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from quart import Response, current_app, g, request
from quart_auth import current_user
from quart_schema import document_request, document_response, security_scheme
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller, tenant_controller
from controllers.errors import AuthenticationFailed, DomainValidationError, FieldError, Forbidden
from domain.caller import Caller
from domain.period import PERIOD_PATTERN
from models.tenant_model import Tenant
from models.user_model import User
from routes.cors import unauthenticated_detail
from routes.fields import DecimalStr

P = ParamSpec("P")
R = TypeVar("R")

# A billing period `YYYY-MM` (month 01-12), as the domain's Period parses it.
PeriodStr = Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)]

ROLE_RANK = {"customer": 0, "operator": 1, "admin": 2}
TENANT_HEADER = "X-Tenant-ID"


class FieldProblem(BaseModel):
    """One field at fault in a problem response."""

    field: str
    message: str
    code: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable `code`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "about:blank", "title": "Conflict", "status": 409, "code": "already_paid",
        "detail": "This coupon is already paid.", "request_id": "2e5e77c0d3f31327",
    }]})

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    errors: list[FieldProblem] | None = None
    request_id: str | None = None


class ListQuery(BaseModel):
    """Common list parameters: page size and the opaque cursor of the next page."""

    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=500)


def problems(*statuses: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Document every error status a route can return as a problem+json response."""

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        for status in statuses:
            func = document_response(Problem, status)(func)
        return func

    return decorator


@dataclass(frozen=True)
class Principal:
    """The logged-in user and its tenant, loaded once per request."""

    user: User
    tenant: Tenant
    session_nonce: str

    @property
    def role(self) -> str:
        """The user's role."""
        return self.user.role


def services() -> Any:
    """The app's clients and settings (an `AppServices`)."""
    return current_app.extensions["cuponera"]


def db(*, short_reads: bool = False, short_writes: bool = False) -> AsyncSession:
    """The request's one AsyncSession, opened lazily and closed at teardown.

    `short_reads=True` promises that every statement the request runs is a short, index-bounded read;
    `short_writes=True` the same of a writing request's transactions (see `SqlClient.session`). They
    only matter for the call that opens the session.
    """
    session = g.get("db_session")
    if session is None:
        # Unsafe methods write: on SQLite they take the write lock at BEGIN (see sql_client).
        session = services().sql.session(
            write=request.method in {"POST", "PUT", "PATCH", "DELETE"}, short_reads=short_reads, short_writes=short_writes
        )
        g.db_session = session
    return session


async def close_request_session(_exc: BaseException | None = None) -> None:
    """Teardown: close the request's session, rolling back anything uncommitted."""
    session = g.pop("db_session", None)
    if session is not None:
        await session.close()


def tenant_cache() -> tenant_controller.TenantCache:
    """This app's per-process tenant cache (tenants change only through migrations; see TenantCache)."""
    return current_app.extensions.setdefault("cuponera_tenants", tenant_controller.TenantCache())


def session_cache() -> auth_controller.SessionCache:
    """This app's per-process cache of session users (see SessionCache; used only with a change signal)."""
    return current_app.extensions.setdefault("cuponera_sessions", auth_controller.SessionCache())


async def optional_principal() -> Principal | None:
    """The logged-in user, or None for an anonymous request or a stale session; resolved once per request."""
    if "principal" in g:
        return g.principal
    principal = None
    parsed = auth_controller.parse_auth_id(current_user.auth_id)
    if parsed is not None:
        # Kept copies first: a request that finds both opens no database session at all.
        signal = services().sql.change_signal
        now = signal.read() if signal is not None else None
        sessions = session_cache()
        user = sessions.kept(user_id=parsed.user_id, session_version=parsed.session_version, signal=now)
        if user is None:
            user = await sessions.load(
                session=db(), user_id=parsed.user_id, session_version=parsed.session_version, signal=now
            )
        tenant = None
        if user is not None:
            tenant = tenant_cache().kept(tenant_id=user.tenant_id) or await tenant_cache().by_id(
                session=db(), tenant_id=user.tenant_id
            )
        if user is not None and tenant is not None:
            principal = Principal(user=user, tenant=tenant, session_nonce=parsed.nonce)
    g.principal = principal
    return principal


async def current_caller() -> Caller:
    """The request's caller: the logged-in user, or anonymous quick-pay."""
    principal = await optional_principal()
    if principal is None:
        return Caller()
    return Caller(user_id=principal.user.id, role=principal.role, customer_id=principal.user.customer_id)


async def require_principal() -> Principal:
    """The logged-in user; a 401 problem otherwise."""
    principal = await optional_principal()
    if principal is None:
        raise AuthenticationFailed(unauthenticated_detail(), code="not_authenticated")
    return principal


async def request_tenant() -> Tenant:
    """The tenant of this request: the session's, else `X-Tenant-ID`, else the default tenant."""
    principal = await optional_principal()
    if principal is not None:
        return principal.tenant
    if "tenant" not in g:
        code = request.headers.get(TENANT_HEADER)
        g.tenant = tenant_cache().kept(code=code) or await tenant_cache().public(session=db(), code=code)
    return g.tenant


def login_required(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Allow any logged-in user; anonymous requests get a 401 problem."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        await require_principal()
        return await func(*args, **kwargs)

    return _session_secured(problems(401)(wrapper))


def _session_secured(func: Callable[P, R]) -> Callable[P, R]:
    """Mark the operation as needing the session cookie in the OpenAPI document."""
    return security_scheme([{"session": []}])(func)


def role_required(role: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Allow users whose role is at least `role` (admin > operator > customer)."""

    def decorator(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = await require_principal()
            if ROLE_RANK[principal.role] < ROLE_RANK[role]:
                raise Forbidden(f"This endpoint needs the {role} role.", code="forbidden")
            return await func(*args, **kwargs)

        return _session_secured(problems(401, 403)(wrapper))

    return decorator


def customer_required(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Allow only customers (self-service routes about the user's own accounts)."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        principal = await require_principal()
        if principal.role != "customer":
            raise Forbidden("This endpoint is for customers.", code="forbidden")
        return await func(*args, **kwargs)

    return _session_secured(problems(401, 403)(wrapper))


class NoContent(BaseModel):
    """No content."""


def no_content(func: Callable[P, R]) -> Callable[P, R]:
    """Document a 204 response with no body (see `CuponeraOpenAPIProvider`)."""
    return document_response(NoContent, 204)(func)


# Output money: any stored Decimal, as a JSON string. Inputs use the bounded types of routes.fields.
MoneyStr = DecimalStr


class PatchModel(BaseModel):
    """Base of partial-update bodies: absent fields stay unchanged; null only where `nullable_fields` allows it."""

    nullable_fields: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_allowed(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable_fields:
            raise ValueError("must not be null; leave the field out to keep its value")
        return value

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class PdfFile(BaseModel):
    """A PDF document (`application/pdf`)."""


def pdf_document(func: Callable[P, R]) -> Callable[P, R]:
    """Document a 200 response whose body is a PDF (see `CuponeraOpenAPIProvider`)."""
    return document_response(PdfFile, 200)(func)


class CsvFile(BaseModel):
    """A CSV file sent as the raw body (`text/csv`) or as the `file` part of a `multipart/form-data` body."""


def csv_upload(func: Callable[P, R]) -> Callable[P, R]:
    """Document a request body that is a CSV file (see `CuponeraOpenAPIProvider`)."""
    return document_request(CsvFile)(func)


CSV_TYPE = "text/csv"


def wants_csv() -> bool:
    """The caller prefers CSV to JSON (`Accept: text/csv`): a list or report answers as a CSV attachment."""
    return request.accept_mimetypes.best_match(["application/json", CSV_TYPE]) == CSV_TYPE


def csv_response(name: str, rows: Sequence[Any], row_type: type, columns: Sequence[str] | None = None) -> Response:
    """Dataclass rows as a CSV attachment (all of `row_type`'s fields, or `columns`); decimals as their exact text."""
    header = list(columns) if columns is not None else [f.name for f in fields(row_type)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[getattr(row, column) for column in header] for row in rows])
    return Response(out.getvalue(), content_type=f"{CSV_TYPE}; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


async def uploaded_file(part: str = "file") -> bytes:
    """The bytes of an uploaded file: the `part` of a multipart body, else the raw body; a 422 `missing_file` without either."""
    if request.mimetype == "multipart/form-data":
        upload = (await request.files).get(part)
        content = upload.read() if upload is not None else b""
    else:
        content = await request.get_data(cache=False)
    if not content:
        raise DomainValidationError(
            f"Send the file as the request body or as the `{part}` part of a multipart body.", code="missing_file",
            errors=[FieldError(part, "required", "missing_file")],
        )
    return content


class SvgImage(BaseModel):
    """An SVG image (`image/svg+xml`)."""


def svg_image(func: Callable[P, R]) -> Callable[P, R]:
    """Document a 200 response whose body is an SVG image (see `CuponeraOpenAPIProvider`)."""
    return document_response(SvgImage, 200)(func)

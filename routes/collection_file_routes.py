"""Bank collection files (Asobancaria 2001): a bank (API key) or an operator sends one; its reconciliation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import document_headers, validate_querystring, validate_request, validate_response

from controllers import collection_controller, collection_file_controller
from controllers.collection_file_controller import Reconciliation
from controllers.errors import Forbidden
from domain.money import round_money
from models.collection_file_model import CollectionFile, CollectionFileDetail
from models.tenant_model import Tenant
from routes.body_limits import MAX_REQUEST_BYTES, large_body
from routes.common import (
    ROLE_RANK,
    ListQuery,
    MoneyStr,
    db,
    problems,
    request_tenant,
    require_principal,
    role_required,
    uploaded_file,
)
from routes.fields import single_line
from routes.openapi import RAW_BODY_ATTRIBUTE
from routes.vocabulary import CollectionFileOutcome, CollectionFileStatus, Currency, ExceptionResolution

bp = Blueprint("collection_files", __name__, url_prefix="/api/v1/collection-files")

F = TypeVar("F", bound=Callable[..., Any])
FILE_FIELD = "file"
_FILE_BODY = {
    "required": True,
    "description": "An Asobancaria 2001 file (162-character records 01, 05, 06, 08, 09), as the raw body or a multipart `file` part.",
    "content": {
        "text/plain": {"schema": {"type": "string"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {"type": "object", "required": [FILE_FIELD], "properties": {FILE_FIELD: {"type": "string", "format": "binary"}}}
        },
    },
}


def _file_body(func: F) -> F:
    setattr(func, RAW_BODY_ATTRIBUTE, _FILE_BODY)
    return func


class SenderHeaders(BaseModel):
    """A bank sends `Bearer <api key>` (from `create-bank-key`); an operator is logged in instead."""

    authorization: str | None = Field(None, alias="Authorization")


class OutcomeCounts(BaseModel):
    """Details per outcome."""

    applied: int
    duplicate: int
    unknown_reference: int
    amount_mismatch: int
    expired_coupon: int
    already_paid: int
    not_payable: int


class OutcomeAmounts(BaseModel):
    """Amounts per outcome."""

    applied: MoneyStr
    duplicate: MoneyStr
    unknown_reference: MoneyStr
    amount_mismatch: MoneyStr
    expired_coupon: MoneyStr
    already_paid: MoneyStr
    not_payable: MoneyStr


class CollectionFileExceptionOut(BaseModel):
    """A detail that settled nothing and needs an operator: the bank took money this app could not apply.
    `resolution` and the rest stay null until an operator resolves it."""

    line: int
    lot: int
    reference: str
    amount: MoneyStr
    outcome: CollectionFileOutcome
    expected_amount: MoneyStr | None
    resolution: ExceptionResolution | None
    resolution_note: str | None
    resolved_by: int | None
    resolved_at: datetime | None


class FileFields(BaseModel):
    """What a file is and how it went."""

    id: int
    status: CollectionFileStatus
    bank_code: str
    biller_nit: str
    collection_date: date
    received_at: datetime
    currency: Currency
    detail_count: int
    total: MoneyStr
    applied_count: int
    applied_total: MoneyStr
    exception_count: int
    unresolved_count: int = Field(description="Exceptions no operator has resolved yet.")


class CollectionFileOut(FileFields):
    """A file's reconciliation. A repeated upload of the same file answers 200 with the first one's."""

    counts: OutcomeCounts
    amounts: OutcomeAmounts
    exceptions: list[CollectionFileExceptionOut]
    exceptions_truncated: bool


class CollectionFilePage(BaseModel):
    """A page of collection files, newest first."""

    items: list[FileFields]
    next_cursor: str | None


class CollectionFileQuery(ListQuery):
    """`unresolved=true`: only files with exceptions no operator has resolved; `false`: only those without."""

    unresolved: bool | None = None


class ExceptionResolutionIn(BaseModel):
    """How the exception was closed outside this app, and why (kept for the audit)."""

    resolution: ExceptionResolution
    note: single_line(500)  # type: ignore[valid-type]


def _file_fields(record: CollectionFile, currency: str, unresolved_count: int) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status,
        "bank_code": record.bank_code,
        "biller_nit": record.biller_nit,
        "collection_date": record.collection_date,
        "received_at": record.received_at,
        "currency": currency,
        "detail_count": record.detail_count,
        "total": round_money(record.total, currency),
        "applied_count": record.applied_count,
        "applied_total": round_money(record.applied_total, currency),
        "exception_count": record.exception_count,
        "unresolved_count": unresolved_count,
    }


def exception_out(detail: CollectionFileDetail, currency: str) -> CollectionFileExceptionOut:
    """Serialise one exception."""
    return CollectionFileExceptionOut(
        line=detail.line,
        lot=detail.lot,
        reference=detail.reference,
        amount=round_money(detail.amount, currency),
        outcome=detail.outcome,
        expected_amount=None if detail.expected_amount is None else round_money(detail.expected_amount, currency),
        resolution=detail.resolution,
        resolution_note=detail.resolution_note,
        resolved_by=detail.resolved_by,
        resolved_at=detail.resolved_at,
    )


def reconciliation_out(view: Reconciliation) -> CollectionFileOut:
    """Serialise a reconciliation."""
    currency = view.currency
    return CollectionFileOut(
        **_file_fields(view.file, currency, view.unresolved_count),
        counts=OutcomeCounts(**view.counts),
        amounts=OutcomeAmounts(**{k: round_money(v, currency) for k, v in view.amounts.items()}),
        exceptions=[exception_out(d, currency) for d in view.exceptions],
        exceptions_truncated=view.exceptions_truncated,
    )


async def _sender() -> tuple[Tenant, int | None, int | None]:
    """The tenant and who sends: a bank by its API key (`Authorization`), else a logged-in operator or admin."""
    session = db()
    authorization = request.headers.get("Authorization")
    if authorization:
        key = await collection_controller.authenticate_bank(session=session, authorization=authorization)
        return await session.get_one(Tenant, key.tenant_id), key.id, None
    principal = await require_principal()
    if ROLE_RANK[principal.role] < ROLE_RANK["operator"]:
        raise Forbidden("Collection files are for banks and operators.", code="forbidden")
    return principal.tenant, None, principal.user.id


@bp.post("")
@large_body(MAX_REQUEST_BYTES)
@_file_body
@document_headers(SenderHeaders)
@validate_response(CollectionFileOut, 201)
@validate_response(CollectionFileOut, 200)
@problems(401, 403, 413)
async def create_collection_file() -> tuple[CollectionFileOut, int]:
    """Apply a bank's collection file once; a bad control total rejects it whole (422 with `lines`)."""
    tenant, bank_key_id, user_id = await _sender()
    content = await uploaded_file(FILE_FIELD)
    session = db()
    outcome = await collection_file_controller.process_file(
        session=session, tenant=tenant, content=content, bank_key_id=bank_key_id, uploaded_by=user_id
    )
    view = await collection_file_controller.reconciliation(session=session, tenant=tenant, file_id=outcome.file.id)
    return reconciliation_out(view), 201 if outcome.created else 200


@bp.get("/<int:file_id>")
@document_headers(SenderHeaders)
@validate_response(CollectionFileOut, 200)
@problems(401, 403, 404)
async def get_collection_file(file_id: int) -> CollectionFileOut:
    """A collection file's reconciliation: counts and amounts per outcome, and the exceptions by line."""
    tenant, _key, _user = await _sender()
    view = await collection_file_controller.reconciliation(session=db(), tenant=tenant, file_id=file_id)
    return reconciliation_out(view)


@bp.get("")
@role_required("operator")
@validate_querystring(CollectionFileQuery)
@validate_response(CollectionFilePage, 200)
@problems(400, 403)
async def list_collection_files(query_args: CollectionFileQuery) -> CollectionFilePage:
    """The tenant's collection files, newest first, with how many exceptions are still open."""
    tenant = await request_tenant()
    page = await collection_file_controller.list_files(
        session=db(), tenant=tenant, unresolved=query_args.unresolved, limit=query_args.limit, cursor=query_args.cursor
    )
    return CollectionFilePage(
        items=[FileFields(**_file_fields(s.file, tenant.currency, s.unresolved_count)) for s in page.items],
        next_cursor=page.next_cursor,
    )


@bp.post("/<int:file_id>/exceptions/<int:line>/resolution")
@role_required("operator")
@validate_request(ExceptionResolutionIn)
@validate_response(CollectionFileExceptionOut, 200)
@problems(403, 404, 409, 422)
async def resolve_collection_file_exception(file_id: int, line: int, data: ExceptionResolutionIn) -> CollectionFileExceptionOut:
    """Mark one exception of a file (by its line) as resolved, once: returned to the bank, applied by hand or
    written off, with a note. It moves no money here; a second resolution is a 409 `exception_resolved`."""
    principal = await require_principal()
    detail = await collection_file_controller.resolve_exception(
        session=db(), tenant=principal.tenant, file_id=file_id, line=line, resolution=data.resolution, note=data.note,
        user_id=principal.user.id,
    )
    return exception_out(detail, principal.tenant.currency)

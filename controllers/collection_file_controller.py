"""Bank collection files (Asobancaria 2001): one pass settles every detail as POST /collections would, exactly once.

A file is answered by its content hash: the same file again gets the first one's reconciliation and
settles nothing. A file that does not parse, or whose control totals disagree with its details, is
rejected whole (422 with the line numbers) and leaves no trace. Otherwise, in one transaction:

- a reference already collected (a receipt from the API, an earlier file, or a line above) is a
  `duplicate` when the amount is the same, an `amount_mismatch` otherwise;
- a coupon's reference is claimed and settled if the amount is the coupon's; an invoice's own
  reference first gets a coupon for that invoice alone (as POST /collections does; each such coupon
  is made and committed before the file's transaction, so it costs about what one API collection does);
- the rest is an `unknown_reference`, an `expired_coupon` (expired before the collection date),
  `already_paid` (by another channel, or being paid right now) or `not_payable` (a cancelled coupon,
  a voided invoice, an invoice changed since its coupon was made).

The format has no time of day: a file's collections are paid at the start of its collection date in
the tenant's time zone, so a coupon still valid on that day is honoured. Claims, payments,
settlement, receipts and details are set-based (IN lists of at most 500, executemany).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import tenant_today
from controllers.collection_controller import invoice_coupon, payment_values
from controllers.coupon_controller import UNPAID_STATUSES, invoice_payable_amount
from controllers.errors import Conflict, DomainError, DomainValidationError, FieldError, NotFound
from controllers.outbox_controller import chunks
from controllers.pagination import Page, SortKey, paginate
from controllers.payment_controller import claim_coupons_many, settle_approved_many
from controllers.transaction_controller import local_day_start
from domain.asobancaria import CONTROL_ERRORS, AsobancariaError, AsobancariaFile, Detail, LineError, parse
from domain.coupon_codes import reference_forms
from models.base_model import utcnow
from models.billing_model import Invoice
from models.collection_file_model import DETAIL_OUTCOMES, SETTLED_OUTCOMES, CollectionFile, CollectionFileDetail
from models.payment_model import CollectionReceipt, Coupon, Payment
from models.tenant_model import Tenant

# A reconciliation lists at most this many exceptions (a refusal this many lines), first lines first; counts are whole.
MAX_LISTED_EXCEPTIONS = 1000
# What a refused claim means for a file's detail (claim_coupon's error codes).
_REFUSALS = {"already_paid": "already_paid", "payment_in_progress": "already_paid", "coupon_expired": "expired_coupon"}


@dataclass(frozen=True)
class FileOutcome:
    """A processed file and whether this upload processed it (False: the same file came before)."""

    file: CollectionFile
    created: bool


@dataclass(frozen=True)
class Reconciliation:
    """A file's totals per outcome and the details an operator has to resolve."""

    file: CollectionFile
    currency: str
    counts: dict[str, int]
    amounts: dict[str, Decimal]
    exceptions: list[CollectionFileDetail]
    exceptions_truncated: bool
    unresolved_count: int


@dataclass(frozen=True)
class FileSummary:
    """A file in the list: its totals and how many of its exceptions nobody has resolved yet."""

    file: CollectionFile
    unresolved_count: int


@dataclass
class _Result:
    """What became of one detail, being worked out."""

    detail: Detail
    outcome: str | None = None
    expected: Decimal | None = None
    coupon: Any = None  # the coupon's columns (id, tenant_id, customer_id, reference, amount, currency)
    # The reference as this app issued it (leading zeros and all), for the receipt.
    reference: str = ""
    payment_id: int | None = None


def file_hash(content: bytes) -> str:
    """SHA-256 hex of the file's bytes: the idempotency key of an upload."""
    return hashlib.sha256(content).hexdigest()


async def _file_by_hash(session: AsyncSession, tenant_id: int, digest: str) -> CollectionFile | None:
    return await session.scalar(select(CollectionFile).where(CollectionFile.tenant_id == tenant_id, CollectionFile.file_hash == digest))


def _invalid_file(errors: list[LineError]) -> DomainValidationError:
    control_only = all(e.code in CONTROL_ERRORS for e in errors)
    lines = sorted({e.line for e in errors})
    return DomainValidationError(
        ("The file's control totals do not match its details" if control_only else "The file is not a valid Asobancaria 2001 file")
        + f" (lines {', '.join(map(str, lines[:20]))}{'…' if len(lines) > 20 else ''}); nothing was applied.",
        code="control_total_mismatch" if control_only else "invalid_collection_file",
        errors=[FieldError(f"line {e.line}", e.message, e.code) for e in errors[:MAX_LISTED_EXCEPTIONS]],
        # A file of garbage would otherwise answer with every one of its line numbers.
        extra={"lines": lines[:MAX_LISTED_EXCEPTIONS], "lines_truncated": len(lines) > MAX_LISTED_EXCEPTIONS},
    )


def _parse(content: bytes, tenant: Tenant, now: datetime) -> AsobancariaFile:
    """The parsed file, or a 422 listing each line at fault: format, control totals, biller, date."""
    try:
        parsed = parse(content.decode("latin-1"))
    except AsobancariaError as exc:
        raise _invalid_file(list(exc.errors)) from None
    errors = [
        LineError(lot.line, "wrong_biller", f"the lot is for service code {lot.service_code}, this utility's is {tenant.gln}")
        for lot in parsed.lots
        if lot.service_code != tenant.gln
    ]
    if parsed.collection_date > tenant_today(tenant, now):
        errors.insert(0, LineError(1, "collection_date_in_future", f"the collection date {parsed.collection_date} is in the future"))
    if errors:
        raise _invalid_file(errors)
    return parsed


async def _by_forms(session: AsyncSession, query: Select[Any], column: Any, wanted: dict[str, str]) -> dict[str, list[Row[Any]]]:
    """Rows of `query` (which selects `column`) whose `column` is one of the `wanted` forms, by the bank's reference."""
    found: dict[str, list[Row[Any]]] = {}
    for chunk in chunks(sorted(wanted)):
        for row in (await session.execute(query.where(column.in_(chunk)))).all():
            found.setdefault(wanted[getattr(row, column.key)], []).append(row)
    return found


async def _match(session: AsyncSession, tenant: Tenant, results: list[_Result], now: datetime) -> None:
    """Classify every detail whose reference comes first in the file; invoices' references get their coupon here (commits)."""
    firsts = {r.detail.reference: r for r in reversed(results)}
    for result in results:
        if firsts[result.detail.reference] is not result:
            result.outcome = "duplicate"
    forms = {form: reference for reference in firsts for form in reference_forms(reference)}
    receipts = await _by_forms(
        session,
        select(CollectionReceipt.reference, CollectionReceipt.amount).where(CollectionReceipt.tenant_id == tenant.id),
        CollectionReceipt.reference,
        forms,
    )
    # Columns, not Coupon objects: a file's 100 000 ORM loads would cost more than its claims.
    coupon_columns = (Coupon.id, Coupon.tenant_id, Coupon.customer_id, Coupon.reference, Coupon.amount, Coupon.currency)
    coupons = await _by_forms(session, select(*coupon_columns).where(Coupon.tenant_id == tenant.id).order_by(Coupon.id), Coupon.reference, forms)
    rest = {form: reference for form, reference in forms.items() if reference not in receipts and reference not in coupons}
    invoices = await _by_forms(
        session, select(Invoice.payment_reference, Invoice).where(Invoice.tenant_id == tenant.id).order_by(Invoice.id), Invoice.payment_reference, rest
    )
    for reference, result in firsts.items():
        amount = result.detail.amount
        if reference in receipts:
            first = receipts[reference][0]
            result.outcome = "duplicate" if first.amount == amount else "amount_mismatch"
            result.expected = None if first.amount == amount else first.amount
        elif reference in coupons:
            coupon = coupons[reference][0]
            result.coupon, result.reference = coupon, coupon.reference
            if amount != coupon.amount:
                result.outcome, result.expected = "amount_mismatch", coupon.amount
        elif reference in invoices:
            await _invoice_match(session, tenant, result, invoices[reference][0].Invoice, now)
        else:
            result.outcome = "unknown_reference"


async def _invoice_match(session: AsyncSession, tenant: Tenant, result: _Result, invoice: Invoice, now: datetime) -> None:
    """An invoice's own reference: a coupon for it (as POST /collections makes), or why not."""
    result.reference = invoice.payment_reference or ""
    if invoice.status not in UNPAID_STATUSES:
        result.outcome = "already_paid" if invoice.status == "paid" else "not_payable"
        return
    try:
        result.coupon = await invoice_coupon(session, tenant, invoice, result.detail.amount, now)
    except DomainError as exc:
        if exc.code == "amount_mismatch":
            result.outcome, result.expected = "amount_mismatch", invoice_payable_amount(tenant, invoice)
        else:
            result.outcome = "already_paid" if exc.code == "payment_in_progress" else "not_payable"


async def process_file(
    *,
    session: AsyncSession,
    tenant: Tenant,
    content: bytes,
    bank_key_id: int | None = None,
    uploaded_by: int | None = None,
    now: datetime | None = None,
) -> FileOutcome:
    """Apply a bank's collection file once: each detail settles its coupon or invoice, or is listed as an exception."""
    now = now or utcnow()
    digest = file_hash(content)
    existing = await _file_by_hash(session, tenant.id, digest)
    if existing is not None:
        return FileOutcome(existing, created=False)
    parsed = _parse(content, tenant, now)
    paid_at = local_day_start(parsed.collection_date, ZoneInfo(tenant.timezone))
    results = [_Result(detail) for detail in parsed.details]
    await _match(session, tenant, results, now)
    record = CollectionFile(
        tenant_id=tenant.id,
        file_hash=digest,
        bank_code=parsed.bank_code,
        biller_nit=parsed.biller_nit,
        collection_date=parsed.collection_date,
        bank_api_key_id=bank_key_id,
        uploaded_by=uploaded_by,
        detail_count=parsed.count,
        total=parsed.total,
        applied_count=0,
        applied_total=Decimal(0),
        exception_count=0,
        status="reconciled",
        received_at=now,
    )
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:
        # The same file, uploaded at the same time, got there first.
        await session.rollback()
        first = await _file_by_hash(session, tenant.id, digest)
        if first is None:
            raise
        return FileOutcome(first, created=False)
    await _settle(session, results, record, paid_at, now)
    outcomes = Counter(r.outcome for r in results)
    record.applied_count = outcomes["applied"]
    record.applied_total = sum((r.detail.amount for r in results if r.outcome == "applied"), Decimal(0))
    record.exception_count = sum(n for outcome, n in outcomes.items() if outcome not in SETTLED_OUTCOMES)
    record.status = "with_exceptions" if record.exception_count else "reconciled"
    await session.execute(
        insert(CollectionFileDetail.__table__),
        [
            {
                "tenant_id": tenant.id,
                "collection_file_id": record.id,
                "line": r.detail.line,
                "lot": r.detail.lot,
                "reference": r.detail.reference,
                "amount": r.detail.amount,
                "outcome": r.outcome,
                "expected_amount": r.expected,
                "payment_id": r.payment_id,
            }
            for r in results
        ],
    )
    await session.commit()
    return FileOutcome(record, created=True)


async def _settle(session: AsyncSession, results: list[_Result], record: CollectionFile, paid_at: datetime, now: datetime) -> None:
    """Claim, pay and settle every detail still open, and write its receipt; in the caller's transaction."""
    open_results = {r.coupon.id: r for r in results if r.outcome is None and r.coupon is not None}
    refused = await claim_coupons_many(session=session, coupon_ids=list(open_results), now=now, accept_expired_before=paid_at)
    for coupon_id, error in refused.items():
        open_results.pop(coupon_id).outcome = _REFUSALS.get(error.code, "not_payable")
    claimed = list(open_results.values())
    for chunk in chunks(claimed):
        await session.execute(insert(Payment.__table__), [payment_values(r.coupon, bank_key_id=record.bank_api_key_id, now=now) for r in chunk if r.coupon])
        # A claimed coupon has no other pending payment (a card attempt holds the claim while pending), so
        # this reads back exactly the payments just made; executemany with RETURNING goes row by row on SQLite.
        rows = await session.execute(
            select(Payment.coupon_id, Payment.id).where(Payment.coupon_id.in_([r.coupon.id for r in chunk if r.coupon]), Payment.status == "pending")
        )
        for coupon_id, payment_id in rows.all():
            result = open_results[coupon_id]
            result.payment_id, result.outcome = payment_id, "applied"
    await settle_approved_many(session=session, paid_at_by_payment={r.payment_id: paid_at for r in claimed if r.payment_id}, now=now)
    if claimed:
        await session.execute(
            insert(CollectionReceipt.__table__),
            [
                {
                    "tenant_id": record.tenant_id,
                    "bank_api_key_id": record.bank_api_key_id,
                    "reference": r.reference,
                    "amount": r.detail.amount,
                    "paid_at": paid_at,
                    "payment_id": r.payment_id,
                    "received_at": now,
                    "collection_file_id": record.id,
                }
                for r in claimed
            ],
        )


async def reconciliation(*, session: AsyncSession, tenant: Tenant, file_id: int) -> Reconciliation:
    """A file's reconciliation: counts and amounts per outcome (from the database), and its exceptions by line."""
    record = await session.scalar(select(CollectionFile).where(CollectionFile.id == file_id, CollectionFile.tenant_id == tenant.id))
    if record is None:
        raise NotFound("No such collection file.", code="not_found")
    rows = await session.execute(
        select(CollectionFileDetail.outcome, func.count(), func.sum(CollectionFileDetail.amount))
        .where(CollectionFileDetail.collection_file_id == record.id)
        .group_by(CollectionFileDetail.outcome)
    )
    counts = dict.fromkeys(DETAIL_OUTCOMES, 0)
    amounts = dict.fromkeys(DETAIL_OUTCOMES, Decimal(0))
    for outcome, count, amount in rows.all():
        counts[outcome], amounts[outcome] = count, Decimal(amount)
    exceptions = list(
        (
            await session.scalars(
                select(CollectionFileDetail)
                .where(CollectionFileDetail.collection_file_id == record.id, _is_exception())
                .order_by(CollectionFileDetail.line)
                .limit(MAX_LISTED_EXCEPTIONS + 1)
            )
        ).all()
    )
    unresolved = await session.scalar(
        select(func.count()).where(CollectionFileDetail.collection_file_id == record.id, *_unresolved())
    )
    return Reconciliation(
        file=record,
        currency=tenant.currency,
        counts=counts,
        amounts=amounts,
        exceptions=exceptions[:MAX_LISTED_EXCEPTIONS],
        exceptions_truncated=len(exceptions) > MAX_LISTED_EXCEPTIONS,
        unresolved_count=unresolved or 0,
    )


def _is_exception() -> Any:
    return CollectionFileDetail.outcome.not_in(SETTLED_OUTCOMES)


def _unresolved() -> tuple[Any, ...]:
    return _is_exception(), CollectionFileDetail.resolved_at.is_(None)


async def list_files(
    *, session: AsyncSession, tenant: Tenant, unresolved: bool | None = None, limit: int = 50, cursor: str | None = None
) -> Page[FileSummary]:
    """The tenant's files, newest first; `unresolved`: only (True) or never (False) those with open exceptions."""
    open_count = (
        select(func.count())
        .where(CollectionFileDetail.collection_file_id == CollectionFile.id, *_unresolved())
        .correlate(CollectionFile)
        .scalar_subquery()
    )
    stmt = select(CollectionFile, open_count.label("unresolved_count")).where(CollectionFile.tenant_id == tenant.id)
    if unresolved is not None:
        stmt = stmt.where(open_count > 0 if unresolved else open_count == 0)
    page = await paginate(session, stmt, keys=[SortKey(CollectionFile.id, descending=True)], limit=limit, cursor=cursor, rows=True)
    return Page(items=[FileSummary(file=r[0], unresolved_count=r[1]) for r in page.items], next_cursor=page.next_cursor)


async def resolve_exception(
    *,
    session: AsyncSession,
    tenant: Tenant,
    file_id: int,
    line: int,
    resolution: str,
    note: str,
    user_id: int,
    now: datetime | None = None,
) -> CollectionFileDetail:
    """Close one exception of a file once (how, why, who, when); the money itself moves outside this app
    (the bank returns it, or an operator applies it through another channel). One transaction."""
    now = now or utcnow()
    detail = await session.scalar(
        select(CollectionFileDetail)
        .join(CollectionFile, CollectionFile.id == CollectionFileDetail.collection_file_id)
        .where(CollectionFile.id == file_id, CollectionFile.tenant_id == tenant.id, CollectionFileDetail.line == line, _is_exception())
    )
    if detail is None:
        raise NotFound("This file has no exception on that line.", code="not_found")
    moved = await session.execute(
        update(CollectionFileDetail)
        .where(CollectionFileDetail.id == detail.id, CollectionFileDetail.resolved_at.is_(None))
        .values(resolution=resolution, resolution_note=note, resolved_by=user_id, resolved_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict("This exception is already resolved.", code="exception_resolved")
    await session.commit()
    await session.refresh(detail)
    return detail

"""The transaction history: append-only ledger entries and the customer's filtered, paginated view of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import DomainValidationError, FieldError
from controllers.pagination import Page, SortKey, paginate
from models.account_model import Contract
from models.billing_model import Invoice
from models.payment_model import LEDGER_KINDS, CouponInvoice, CreditBalance, LedgerEntry
from models.tenant_model import Tenant


async def coupon_contract_numbers(*, session: AsyncSession, coupon_id: int) -> list[str]:
    """The sorted, distinct contract numbers of a coupon's invoices."""
    rows = await session.scalars(
        select(Contract.contract_number)
        .join(Invoice, Invoice.contract_id == Contract.id)
        .join(CouponInvoice, CouponInvoice.invoice_id == Invoice.id)
        .where(CouponInvoice.coupon_id == coupon_id)
        .distinct()
    )
    return sorted(rows.all())


@dataclass(frozen=True)
class LedgerRow:
    """One ledger entry to append; `contract_numbers` is the snapshot history reads show.

    Coupon and payment entries name their coupon; credit-balance entries (`credit_applied`,
    `refund_paid`) name their credit balance, and the invoice or refund, instead.
    """

    tenant_id: int
    customer_id: int
    kind: str
    amount: Decimal
    currency: str
    reference: str
    coupon_id: int | None
    contract_numbers: list[str]
    payment_id: int | None = None
    credit_balance_id: int | None = None
    refund_id: int | None = None
    invoice_id: int | None = None


async def record_entry(
    *,
    session: AsyncSession,
    tenant_id: int,
    customer_id: int,
    kind: str,
    amount: Decimal,
    currency: str,
    reference: str,
    coupon_id: int | None,
    contract_numbers: list[str],
    now: datetime,
    payment_id: int | None = None,
    credit_balance_id: int | None = None,
    refund_id: int | None = None,
    invoice_id: int | None = None,
) -> None:
    """Append one ledger entry in the caller's transaction; entries are never updated or deleted."""
    row = LedgerRow(
        tenant_id, customer_id, kind, amount, currency, reference, coupon_id, contract_numbers, payment_id,
        credit_balance_id, refund_id, invoice_id,
    )
    await record_entries(session=session, entries=[row], now=now)


async def record_entries(*, session: AsyncSession, entries: Sequence[LedgerRow], now: datetime) -> None:
    """Append many ledger entries with one executemany, in the caller's transaction."""
    for entry in entries:
        if entry.kind not in LEDGER_KINDS:
            raise ValueError(f"unknown ledger kind {entry.kind!r}")
    if entries:
        # Core executemany: the ORM's bulk path and dataclasses.asdict cost more than the INSERT at 100 000 rows.
        columns = [f.name for f in fields(LedgerRow)]
        await session.execute(
            insert(LedgerEntry.__table__), [{**{c: getattr(entry, c) for c in columns}, "created_at": now} for entry in entries]
        )


def local_day_start(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant a day starts in a time zone (lists filter whole local days)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def check_date_range(date_from: date | None, date_to: date | None) -> None:
    """A `from` after `to` is a 422 naming `from`."""
    if date_from and date_to and date_from > date_to:
        raise DomainValidationError(
            "`from` is after `to`.", code="invalid_date_range", errors=[FieldError("from", "must not be after `to`", "invalid_date_range")]
        )


async def list_transactions(
    *,
    session: AsyncSession,
    tenant: Tenant,
    customer_id: int | None,
    contract_number: str | None = None,
    contract_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[LedgerEntry]:
    """A customer's own ledger entries, newest first; dates are whole days in the tenant's time zone."""
    check_date_range(date_from, date_to)
    if customer_id is None:
        return Page(items=[], next_cursor=None)
    stmt = select(LedgerEntry).where(LedgerEntry.tenant_id == tenant.id, LedgerEntry.customer_id == customer_id)
    if contract_number is not None or contract_id is not None:
        coupons = (
            select(CouponInvoice.coupon_id)
            .join(Invoice, Invoice.id == CouponInvoice.invoice_id)
            .join(Contract, Contract.id == Invoice.contract_id)
            .where(Contract.tenant_id == tenant.id, Contract.customer_id == customer_id)
        )
        # Credit-balance entries (credit applied, refund paid) name no coupon: they go by their credit's contract.
        credits = (
            select(CreditBalance.id)
            .join(Contract, Contract.id == CreditBalance.contract_id)
            .where(Contract.tenant_id == tenant.id, Contract.customer_id == customer_id)
        )
        if contract_number is not None:
            coupons = coupons.where(Contract.contract_number == contract_number)
            credits = credits.where(Contract.contract_number == contract_number)
        if contract_id is not None:
            coupons = coupons.where(Contract.id == contract_id)
            credits = credits.where(Contract.id == contract_id)
        stmt = stmt.where(or_(LedgerEntry.coupon_id.in_(coupons), LedgerEntry.credit_balance_id.in_(credits)))
    tz = ZoneInfo(tenant.timezone)
    if date_from is not None:
        stmt = stmt.where(LedgerEntry.created_at >= local_day_start(date_from, tz))
    if date_to is not None:
        stmt = stmt.where(LedgerEntry.created_at < local_day_start(date_to + timedelta(days=1), tz))
    return await paginate(
        session,
        stmt,
        keys=[SortKey(LedgerEntry.created_at, descending=True), SortKey(LedgerEntry.id, descending=True)],
        limit=limit,
        cursor=cursor,
    )

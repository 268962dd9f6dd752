"""Staff search of payments (by coupon, invoice, contract, customer, status, channel, dates), one payment in full, and payment exceptions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import NotFound
from controllers.pagination import Page, SortKey, paginate
from controllers.payment_controller import PaymentSnapshot
from controllers.transaction_controller import check_date_range, local_day_start
from domain.national_id import search_form
from models.account_model import Contract, Customer
from models.billing_model import Invoice
from models.note_model import InvoiceNote
from models.payment_model import Coupon, CouponInvoice, CreditBalance, LedgerEntry, Payment, PaymentAllocation
from models.tenant_model import Tenant


@dataclass(frozen=True)
class PaymentRow:
    """A payment in a staff list: its snapshot and the customer who paid."""

    payment: PaymentSnapshot
    customer_id: int


@dataclass(frozen=True)
class PaymentInvoiceView:
    """An invoice the payment's coupon covers, with the amount the payment allocated to it (None if not settled)."""

    invoice_id: int
    number: str
    contract_number: str
    period: str
    status: str
    coupon_amount: Decimal
    allocated: Decimal | None
    # Held as a credit balance instead: the invoice could no longer be paid when the payment was approved.
    credited: Decimal | None = None


@dataclass(frozen=True)
class PaymentDetail:
    """One payment with its coupon, the invoices it pays, its ledger entries and its reversal (if any)."""

    row: PaymentRow
    coupon: Coupon
    invoices: list[PaymentInvoiceView]
    ledger: list[LedgerEntry]
    reversed_by: int | None


async def _rows(session: AsyncSession, payments: Sequence[Payment]) -> list[PaymentRow]:
    """Attach coupon references to a page of payments with one query."""
    if not payments:
        return []
    references = dict(
        (
            await session.execute(
                select(Coupon.id, Coupon.reference).where(Coupon.id.in_(sorted({p.coupon_id for p in payments})))
            )
        ).all()
    )
    return [PaymentRow(payment=PaymentSnapshot.of(p, references[p.coupon_id]), customer_id=p.customer_id) for p in payments]


def _coupons_with(tenant: Tenant) -> object:
    """Coupon ids whose invoices match further conditions (a coupon is the only link from a payment to invoices)."""
    return (
        select(CouponInvoice.coupon_id)
        .join(Invoice, Invoice.id == CouponInvoice.invoice_id)
        .where(CouponInvoice.tenant_id == tenant.id)
    )


async def search_payments(
    *,
    session: AsyncSession,
    tenant: Tenant,
    coupon_reference: str | None = None,
    invoice_id: int | None = None,
    invoice_number: str | None = None,
    contract_number: str | None = None,
    customer_id: int | None = None,
    national_id: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[PaymentRow]:
    """The tenant's payments, filtered, newest first; dates are whole days in the tenant's time zone."""
    check_date_range(date_from, date_to)
    stmt = select(Payment).where(Payment.tenant_id == tenant.id)
    if coupon_reference:
        stmt = stmt.where(
            Payment.coupon_id.in_(
                select(Coupon.id).where(Coupon.tenant_id == tenant.id, Coupon.reference == coupon_reference.strip())
            )
        )
    if invoice_id is not None:
        stmt = stmt.where(Payment.coupon_id.in_(_coupons_with(tenant).where(Invoice.id == invoice_id)))  # type: ignore[attr-defined]
    if invoice_number:
        stmt = stmt.where(Payment.coupon_id.in_(_coupons_with(tenant).where(Invoice.number == invoice_number.strip())))  # type: ignore[attr-defined]
    if contract_number:
        stmt = stmt.where(
            Payment.coupon_id.in_(
                _coupons_with(tenant)  # type: ignore[attr-defined]
                .join(Contract, Contract.id == Invoice.contract_id)
                .where(Contract.contract_number == contract_number.strip())
            )
        )
    if customer_id is not None:
        stmt = stmt.where(Payment.customer_id == customer_id)
    if national_id:
        stmt = stmt.where(
            Payment.customer_id.in_(
                select(Customer.id).where(
                    Customer.tenant_id == tenant.id, Customer.national_id == search_form(national_id)
                )
            )
        )
    if status:
        stmt = stmt.where(Payment.status == status)
    if channel:
        stmt = stmt.where(Payment.channel == channel)
    tz = ZoneInfo(tenant.timezone)
    if date_from is not None:
        stmt = stmt.where(Payment.created_at >= local_day_start(date_from, tz))
    if date_to is not None:
        stmt = stmt.where(Payment.created_at < local_day_start(date_to + timedelta(days=1), tz))
    page = await paginate(
        session,
        stmt,
        keys=[SortKey(Payment.created_at, descending=True), SortKey(Payment.id, descending=True)],
        limit=limit,
        cursor=cursor,
    )
    return Page(items=await _rows(session, page.items), next_cursor=page.next_cursor)


async def get_payment(*, session: AsyncSession, tenant: Tenant, payment_id: int) -> PaymentDetail:
    """One payment of the tenant with its coupon, invoices, ledger entries and reversal; NotFound otherwise."""
    payment = await session.scalar(
        select(Payment).where(Payment.id == payment_id, Payment.tenant_id == tenant.id).execution_options(populate_existing=True)
    )
    if payment is None:
        raise NotFound("No payment has that id.", code="payment_not_found")
    coupon = await session.scalar(select(Coupon).where(Coupon.id == payment.coupon_id))
    assert coupon is not None
    allocated = dict(
        (
            await session.execute(
                select(PaymentAllocation.invoice_id, PaymentAllocation.amount).where(
                    PaymentAllocation.payment_id == payment.id, PaymentAllocation.kind == "invoice"
                )
            )
        ).all()
    )
    invoice_rows = (
        await session.execute(
            select(Invoice.id, Invoice.number, Contract.contract_number, Invoice.period, Invoice.status, CouponInvoice.amount)
            .join(Invoice, Invoice.id == CouponInvoice.invoice_id)
            .join(Contract, Contract.id == Invoice.contract_id)
            .where(CouponInvoice.coupon_id == coupon.id)
            .order_by(Invoice.due_on, Invoice.id)
        )
    ).all()
    credited = dict(
        (
            await session.execute(
                select(CreditBalance.invoice_id, CreditBalance.amount).where(CreditBalance.payment_id == payment.id)
            )
        ).all()
    )
    invoices = [
        PaymentInvoiceView(
            invoice_id=r[0],
            number=r[1],
            contract_number=r[2],
            period=r[3],
            status=r[4],
            coupon_amount=r[5],
            allocated=allocated.get(r[0]),
            credited=credited.get(r[0]),
        )
        for r in invoice_rows
    ]
    ledger = list(
        (
            await session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.tenant_id == tenant.id, LedgerEntry.payment_id == payment.id)
                .order_by(LedgerEntry.created_at, LedgerEntry.id)
            )
        ).all()
    )
    return PaymentDetail(
        row=PaymentRow(payment=PaymentSnapshot.of(payment, coupon.reference), customer_id=payment.customer_id),
        coupon=coupon,
        invoices=invoices,
        ledger=ledger,
        reversed_by=payment.reversed_by,
    )


@dataclass(frozen=True)
class CreditBalanceRow:
    """A credit balance: money an approved payment brought for an invoice that could no longer take it, or a
    credit note on a paid invoice (no payment nor coupon then, but the note's number)."""

    credit: CreditBalance
    contract_number: str
    invoice_number: str
    coupon_reference: str | None
    note_number: str | None = None


async def search_payment_exceptions(
    *,
    session: AsyncSession,
    tenant: Tenant,
    status: str | None = None,
    contract_number: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[CreditBalanceRow]:
    """The tenant's credit balances left by approvals no invoice could take, newest first (all statuses by default)."""
    stmt = select(CreditBalance).where(CreditBalance.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(CreditBalance.status == status)
    if contract_number:
        stmt = stmt.where(
            CreditBalance.contract_id.in_(
                select(Contract.id).where(Contract.tenant_id == tenant.id, Contract.contract_number == contract_number.strip())
            )
        )
    page = await paginate(
        session,
        stmt,
        keys=[SortKey(CreditBalance.created_at, descending=True), SortKey(CreditBalance.id, descending=True)],
        limit=limit,
        cursor=cursor,
    )
    credits = page.items
    if not credits:
        return Page(items=[], next_cursor=page.next_cursor)
    labels = {
        credit_id: (contract_number, invoice_number, reference, note_number)
        for credit_id, contract_number, invoice_number, reference, note_number in (
            await session.execute(
                select(CreditBalance.id, Contract.contract_number, Invoice.number, Coupon.reference, InvoiceNote.number)
                .join(Contract, Contract.id == CreditBalance.contract_id)
                .join(Invoice, Invoice.id == CreditBalance.invoice_id)
                .outerjoin(Payment, Payment.id == CreditBalance.payment_id)
                .outerjoin(Coupon, Coupon.id == Payment.coupon_id)
                .outerjoin(InvoiceNote, InvoiceNote.id == CreditBalance.note_id)
                .where(CreditBalance.id.in_([c.id for c in credits]))
            )
        ).all()
    }
    return Page(items=[CreditBalanceRow(credit, *labels[credit.id]) for credit in credits], next_cursor=page.next_cursor)

"""Office cash payments: an operator takes cash for a coupon or an invoice, settled like a bank collection, with a receipt.

Exactly once per Idempotency-Key (the card path's mechanism): the first request claims the coupon,
opens the `cash` payment and settles it in one transaction, storing its answer for replays. The
money is taken at the counter, so there is nothing pending: the payment is approved or refused.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.collection_controller import (
    check_amount,
    invoice_coupon,
    payable_coupon,
    payment_values,
    settle_collected,
)
from controllers.errors import Conflict, NotFound
from controllers.payment_controller import (
    IdempotentRequest,
    PaymentResult,
    PaymentSnapshot,
    body_fingerprint,
    claim_coupon,
    complete_idempotent_request,
)
from domain.caller import Caller
from domain.cash_receipt_pdf import CashReceiptDocument, CashReceiptInvoice, render_cash_receipt_pdf
from domain.money import round_money
from models.account_model import Contract, Customer
from models.base_model import utcnow
from models.billing_model import Invoice
from models.payment_model import Coupon, Payment, PaymentAllocation
from models.tenant_model import Tenant
from models.user_model import User


def _fingerprint(reference: str | None, invoice_id: int | None, amount: Decimal, office: str) -> str:
    # `normalize` so 85000 and 85000.00 are the same amount received.
    return body_fingerprint(
        {"channel": "cash", "coupon_reference": reference, "invoice_id": invoice_id, "amount": str(amount.normalize()), "office": office}
    )


async def _invoice_coupon(session: AsyncSession, tenant: Tenant, cashier: Caller, invoice_id: int, amount: Decimal, now: datetime) -> Coupon:
    """A coupon for exactly this invoice of the tenant, as a bank paying the invoice's own reference gets."""
    invoice = await session.scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.tenant_id == tenant.id))
    if invoice is None:
        raise NotFound("No invoice has that id.", code="invoice_not_found")
    if invoice.status == "paid":
        raise Conflict("This invoice is already paid.", code="already_paid")
    return await invoice_coupon(session, tenant, invoice, amount, now, cashier=cashier)


async def record_cash_payment(
    *,
    session: AsyncSession,
    tenant: Tenant,
    caller: Caller,
    amount: Decimal,
    office: str,
    idempotency_key: str | None,
    coupon_reference: str | None = None,
    invoice_id: int | None = None,
    now: datetime | None = None,
) -> PaymentResult:
    """Take cash at an office for a coupon (or an invoice's own reference) or an invoice id, exactly once per key."""
    request = IdempotentRequest.of(
        tenant_id=tenant.id, caller=caller, idempotency_key=idempotency_key,
        fingerprint=_fingerprint(coupon_reference, invoice_id, amount, office),
    )
    replayed = await request.replay(session)
    if replayed is not None:
        return replayed
    now = now or utcnow()
    # A coupon made here for an invoice is committed on its own (as for a bank): a refusal below leaves it unpaid.
    if invoice_id is not None:
        coupon = await _invoice_coupon(session, tenant, caller, invoice_id, amount, now)
    else:
        assert coupon_reference is not None
        coupon = await payable_coupon(session, tenant.id, coupon_reference, amount, now, cashier=caller)
    check_amount(coupon, amount)
    reference = coupon.reference
    key_id = await request.begin(session, now)
    if isinstance(key_id, PaymentResult):
        return key_id
    # A refused claim rolls back, taking the key with it (as for cards): a retry re-checks.
    await claim_coupon(session=session, coupon=coupon, now=now)
    values = payment_values(coupon, bank_key_id=None, now=now, channel="cash", user_id=caller.user_id, office=office)
    payment = await settle_collected(session, values, now=now, paid_at=now)
    snapshot = PaymentSnapshot.of(await _payment(session, tenant.id, payment.id), reference)
    await complete_idempotent_request(session, key_id, snapshot, now)
    await session.commit()
    return PaymentResult(snapshot)


async def _payment(session: AsyncSession, tenant_id: int, payment_id: int) -> Payment:
    payment = await session.scalar(
        select(Payment).where(Payment.id == payment_id, Payment.tenant_id == tenant_id).execution_options(populate_existing=True)
    )
    if payment is None:
        raise NotFound("No payment has that id.", code="payment_not_found")
    return payment


async def cash_receipt_pdf(*, session: AsyncSession, tenant: Tenant, payment_id: int) -> bytes:
    """The printable receipt of a cash payment of this tenant (404 for another channel's payment)."""
    payment = await _payment(session, tenant.id, payment_id)
    if payment.channel != "cash":
        raise NotFound("No cash payment has that id.", code="payment_not_found")
    reference = await session.scalar(select(Coupon.reference).where(Coupon.id == payment.coupon_id))
    customer_name = await session.scalar(select(Customer.name).where(Customer.id == payment.customer_id))
    cashier = None if payment.user_id is None else await session.scalar(select(User.full_name).where(User.id == payment.user_id))
    invoices = (
        await session.execute(
            select(Invoice.number, Contract.contract_number, Invoice.period, PaymentAllocation.amount)
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .join(Contract, Contract.id == Invoice.contract_id)
            .where(PaymentAllocation.payment_id == payment.id, PaymentAllocation.kind == "invoice")
            .order_by(Invoice.id)
        )
    ).all()
    tz = ZoneInfo(tenant.timezone)
    received_at = payment.settled_at or payment.created_at
    document = CashReceiptDocument(
        tenant_name=tenant.name,
        tenant_tax_id=tenant.legal_id,
        tenant_country=tenant.country,
        locale=tenant.locale,
        currency=payment.currency,
        payment_id=payment.id,
        reference=reference or "",
        amount=round_money(payment.amount, payment.currency),
        office=payment.office or "",
        received_at=received_at.astimezone(tz),
        customer_name=customer_name or "",
        cashier=cashier,
        invoices=tuple(
            CashReceiptInvoice(number, contract_number, period, round_money(amount, payment.currency))
            for number, contract_number, period, amount in invoices
        ),
        reversed_at=None if payment.reversed_at is None else payment.reversed_at.astimezone(tz),
    )
    # reportlab is CPU-bound; keep the event loop free for other requests.
    return await asyncio.to_thread(render_cash_receipt_pdf, document)

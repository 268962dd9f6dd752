"""Issue 11, finding 2 in the controllers: a void waits for a pending payment, and an approval no invoice can
take is held as a credit balance, also when the race slips past the guard or the gateway answers synchronously."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import ChargeResult, SandboxGateway
from controllers import invoice_controller, payment_controller
from controllers.errors import Conflict, DomainError
from domain.caller import Caller
from models.base_model import utcnow
from models.billing_model import Invoice
from models.notification_model import Notification
from models.payment_model import Coupon, CreditBalance, Payment, PaymentAllocation
from models.tenant_model import Tenant
from tests.payment_builders import coupon_status, fresh, make_coupon, make_debtor

SECRET = "webhook-secret-for-tests"
ANONYMOUS = Caller()
DUE = date(2099, 1, 15)
RACES = 8


def sql(app: Quart) -> Any:
    return app.extensions["cuponera"].sql


class VoidingGateway(SandboxGateway):
    """The sandbox, except that an operator's void lands while the card is being charged (past the guard, as a race could)."""

    def __init__(self, app: Quart, invoice_id: int) -> None:
        super().__init__(webhook_secret=SECRET)
        self.app, self.invoice_id = app, invoice_id

    async def charge(self, *, amount: Decimal, currency: str, card_token: str, merchant_reference: str) -> ChargeResult:
        async with sql(self.app).session_scope(write=True) as other:
            await other.execute(
                update(Invoice).where(Invoice.id == self.invoice_id).values(status="void", amount_due=0, voided_at=utcnow())
            )
            await other.commit()
        return await super().charge(amount=amount, currency=currency, card_token=card_token, merchant_reference=merchant_reference)


async def test_a_void_is_refused_while_a_payment_is_pending_and_nothing_changes(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=DUE)
    invoice_id = debtor.invoices[0].id
    reference = (await make_coupon(session, tenant, debtor, now=utcnow())).coupon.reference
    gateway = SandboxGateway(webhook_secret=SECRET)
    pending = await payment_controller.pay_coupon(
        session=session, tenant=tenant, caller=ANONYMOUS, gateway=gateway,
        coupon_reference=reference, card_token="tok_pending", idempotency_key="k-1",
    )
    assert pending.payment.status == "pending"
    with pytest.raises(Conflict) as err:
        await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=invoice_id, reason="Duplicada")
    assert err.value.code == "payment_pending"
    invoice = await fresh(session, Invoice, invoice_id)
    assert (invoice.status, invoice.amount_due, invoice.voided_at) == ("issued", Decimal(85000), None)  # type: ignore[attr-defined]
    assert await coupon_status(session, reference) == "processing"
    assert await session.scalar(select(func.count()).select_from(Notification).where(Notification.event == "invoice_voided")) == 0


async def test_a_synchronous_approval_racing_a_void_is_held_as_credit(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)
    voided_id, other_id = debtor.invoices[0].id, debtor.invoices[1].id
    contract_id = debtor.contract.id
    reference = (await make_coupon(session, tenant, debtor, now=utcnow())).coupon.reference
    result = await payment_controller.pay_coupon(
        session=session, tenant=tenant, caller=ANONYMOUS, gateway=VoidingGateway(app, voided_id),
        coupon_reference=reference, card_token="tok_approved", idempotency_key="k-1",
    )
    assert result.payment.status == "approved"
    voided = await fresh(session, Invoice, voided_id)
    assert (voided.status, voided.amount_due, voided.paid_at) == ("void", Decimal(0), None)  # type: ignore[attr-defined]
    assert (await fresh(session, Invoice, other_id)).status == "paid"  # type: ignore[attr-defined]
    credits = (await session.execute(select(CreditBalance.invoice_id, CreditBalance.contract_id, CreditBalance.amount, CreditBalance.reason))).all()
    assert [tuple(c) for c in credits] == [(voided_id, contract_id, Decimal(85000), "invoice_void")]
    allocated = (await session.execute(select(PaymentAllocation.invoice_id, PaymentAllocation.amount))).all()
    assert [tuple(a) for a in allocated] == [(other_id, Decimal(12000))]
    # Only the invoice actually paid is announced as paid.
    paid_notes = (await session.scalars(select(Notification.payload).where(Notification.event == "invoice_paid"))).all()
    assert [p["invoice_number"] for p in paid_notes] == [debtor.invoices[1].number]


async def test_a_carried_invoice_is_never_paid_by_a_late_approval(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)
    carried_id, carrier_id = debtor.invoices[1].id, debtor.invoices[0].id
    reference = (await make_coupon(session, tenant, debtor, now=utcnow())).coupon.reference
    gateway = SandboxGateway(webhook_secret=SECRET)
    pending = await payment_controller.pay_coupon(
        session=session, tenant=tenant, caller=ANONYMOUS, gateway=gateway,
        coupon_reference=reference, card_token="tok_pending", idempotency_key="k-1",
    )
    await session.execute(update(Invoice).where(Invoice.id == carried_id).values(carried_into_invoice_id=carrier_id))
    await session.commit()
    payment = await fresh(session, Payment, pending.payment.id)
    body, headers = gateway.settlement_webhook(
        gateway_reference=payment.gateway_reference, merchant_reference=str(payment.id), status="approved"  # type: ignore[attr-defined]
    )
    outcome = await payment_controller.handle_webhook(
        session=session, secret=SECRET, body=body,
        timestamp_header=headers["X-Webhook-Timestamp"], signature_header=headers["X-Webhook-Signature"],
    )
    assert (outcome.status, outcome.applied) == ("approved", True)
    credits = (await session.execute(select(CreditBalance.invoice_id, CreditBalance.amount, CreditBalance.reason))).all()
    assert [tuple(c) for c in credits] == [(carried_id, Decimal(12000), "invoice_carried")]


async def test_voids_racing_payments_never_book_money_to_a_void_invoice(app: Quart) -> None:
    """Each race: an operator voids an invoice while its coupon is paid by card; whoever wins, no money is stranded."""
    async with sql(app).session_scope(write=True) as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.is_default == true()))
        assert tenant is not None
        tenant_id = tenant.id
        races = []
        for _ in range(RACES):
            debtor = await make_debtor(session, tenant, due_on=DUE)
            invoice_id = debtor.invoices[0].id
            reference = (await make_coupon(session, tenant, debtor, now=utcnow())).coupon.reference
            races.append((invoice_id, reference))

    async def void(invoice_id: int) -> str:
        async with sql(app).session_scope(write=True) as session:
            tenant = await session.get_one(Tenant, tenant_id)
            try:
                await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=invoice_id, reason="Duplicada")
            except DomainError as exc:
                return exc.code
            return "voided"

    async def pay(reference: str, key: str) -> str:
        async with sql(app).session_scope(write=True) as session:
            tenant = await session.get_one(Tenant, tenant_id)
            try:
                result = await payment_controller.pay_coupon(
                    session=session, tenant=tenant, caller=ANONYMOUS, gateway=SandboxGateway(webhook_secret=SECRET),
                    coupon_reference=reference, card_token="tok_approved", idempotency_key=key,
                )
            except DomainError as exc:
                return exc.code
            return result.payment.status

    async def race(n: int, invoice_id: int, reference: str) -> tuple[str, str]:
        # Half the races start the payment first, so both orders meet at every step.
        if n % 2:
            paid, voided = await asyncio.gather(pay(reference, f"race-{n}"), void(invoice_id))
        else:
            voided, paid = await asyncio.gather(void(invoice_id), pay(reference, f"race-{n}"))
        return voided, paid

    outcomes = await asyncio.gather(*(race(n, invoice_id, reference) for n, (invoice_id, reference) in enumerate(races)))
    allowed = {("voided", "coupon_cancelled"), ("invalid_transition", "approved"), ("payment_pending", "approved")}
    assert set(outcomes) <= allowed, Counter(outcomes)
    async with sql(app).session_scope() as session:
        assert await session.scalar(select(func.count()).select_from(CreditBalance)) == 0
        for (invoice_id, reference), (voided, _paid) in zip(races, outcomes, strict=True):
            invoice = await session.get_one(Invoice, invoice_id)
            allocations = await session.scalar(
                select(func.count()).select_from(PaymentAllocation).where(PaymentAllocation.invoice_id == invoice_id)
            )
            coupon = await session.scalar(select(Coupon.status).where(Coupon.reference == reference))
            if voided == "voided":
                assert (invoice.status, allocations, coupon) == ("void", 0, "cancelled")
            else:
                assert (invoice.status, allocations, coupon) == ("paid", 1, "paid")

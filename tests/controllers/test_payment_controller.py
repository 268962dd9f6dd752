"""Payment controller: approval effects, declines, idempotency, refusals, webhooks and reversals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import SandboxGateway, signed_headers
from controllers import coupon_controller, payment_controller
from controllers.errors import (
    AuthenticationFailed,
    BadInput,
    Conflict,
    DomainError,
    DomainValidationError,
    Gone,
    NotFound,
)
from domain.caller import Caller
from models.billing_model import Invoice
from models.notification_model import Notification
from models.payment_model import Coupon, IdempotencyKey, LedgerEntry, Payment, PaymentAllocation
from models.tenant_model import Tenant
from tests.factories import make_customer_user
from tests.payment_builders import BEFORE_DUE, coupon_status, fresh, make_coupon, make_debtor

SECRET = "webhook-secret-for-tests"
ANONYMOUS = Caller()


@pytest.fixture
def gateway() -> SandboxGateway:
    return SandboxGateway(webhook_secret=SECRET)


async def pay(
    session: AsyncSession, tenant: Tenant, gateway: SandboxGateway, reference: str, token: str = "tok_approved", key: str = "k-1", **kw: object
) -> payment_controller.PaymentResult:
    try:
        return await payment_controller.pay_coupon(
            session=session,
            tenant=tenant,
            caller=kw.pop("caller", ANONYMOUS),  # type: ignore[arg-type]
            gateway=gateway,
            coupon_reference=reference,
            card_token=token,
            idempotency_key=key,
            now=kw.pop("now", BEFORE_DUE),  # type: ignore[arg-type]
        )
    except DomainError:
        # A refusal rolls the shared session back; reload the tenant for the next call, as a new request would.
        await session.refresh(tenant)
        raise


async def reverse(session: AsyncSession, tenant: Tenant, payment_id: int, reason: str, **kw: object) -> dict[str, object]:
    try:
        reversed_payment = await payment_controller.reverse_payment(
            session=session, tenant=tenant, admin_user_id=None, payment_id=payment_id, reason=reason, **kw  # type: ignore[arg-type]
        )
        return reversed_payment.to_record()
    except DomainError:
        await session.refresh(tenant)
        raise


async def ledger_kinds(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.id))).all())


async def test_approval_applies_every_effect_once(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000", "12000"))
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    outcome = await pay(session, tenant, gateway, coupon.reference)
    assert not outcome.replayed
    body = outcome.payment.to_record()
    assert (body["status"], body["amount"], body["currency"], body["coupon_reference"]) == ("approved", "97000", "COP", coupon.reference)
    assert await coupon_status(session, coupon.reference) == "paid"
    for invoice in debtor.invoices:
        row = await fresh(session, Invoice, invoice.id)
        assert (row.status, row.amount_due) == ("paid", Decimal(0))  # type: ignore[attr-defined]
        assert row.paid_at is not None  # type: ignore[attr-defined]
    allocations = (await session.scalars(select(PaymentAllocation).where(PaymentAllocation.payment_id == body["id"]))).all()
    assert sorted((a.invoice_id, a.amount) for a in allocations) == sorted((i.id, i.total) for i in debtor.invoices)
    assert sum(a.amount for a in allocations) == Decimal(97000)
    assert await ledger_kinds(session) == ["coupon_created", "payment_approved"]
    paid_notes = (await session.scalars(select(Notification).where(Notification.event == "invoice_paid"))).all()
    assert sorted(n.payload["invoice_number"] for n in paid_notes) == sorted(i.number for i in debtor.invoices)
    assert {n.payload["contract_number"] for n in paid_notes} == {debtor.contract.contract_number}
    assert sorted(n.payload["amount_paid"] for n in paid_notes) == ["12000", "85000"]


async def test_channel_fee_gets_its_own_allocation(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(channel_fee=Decimal(1500)))
    await session.commit()
    await session.refresh(tenant)
    debtor = await make_debtor(session, tenant)
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    body = (await pay(session, tenant, gateway, coupon.reference)).payment.to_record()
    rows = (await session.execute(select(PaymentAllocation.kind, PaymentAllocation.amount).where(PaymentAllocation.payment_id == body["id"]))).all()
    assert sorted(rows) == [("channel_fee", Decimal(1500)), ("invoice", Decimal(85000))]
    assert body["amount"] == "86500"


@pytest.mark.parametrize(("token", "code"), [("tok_declined", "card_declined"), ("tok_insufficient_funds", "insufficient_funds"), ("tok_nonsense", "invalid_card_token")])
async def test_a_decline_changes_nothing_but_history(
    session: AsyncSession, tenant: Tenant, gateway: SandboxGateway, token: str, code: str
) -> None:
    debtor = await make_debtor(session, tenant)
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    body = (await pay(session, tenant, gateway, coupon.reference, token)).payment.to_record()
    assert (body["status"], body["decline_code"]) == ("declined", code)
    assert await coupon_status(session, coupon.reference) == "active"
    invoice = await fresh(session, Invoice, debtor.invoices[0].id)
    assert (invoice.status, invoice.amount_due) == ("issued", Decimal(85000))  # type: ignore[attr-defined]
    assert await session.scalar(select(func.count()).select_from(PaymentAllocation)) == 0
    assert await ledger_kinds(session) == ["coupon_created", "payment_declined"]
    assert await session.scalar(select(func.count()).select_from(Notification).where(Notification.event == "invoice_paid")) == 0
    # The released coupon can be paid with another card.
    assert (await pay(session, tenant, gateway, coupon.reference, key="k-2")).payment.to_record()["status"] == "approved"


async def test_same_key_and_body_replays_the_first_response(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    first = await pay(session, tenant, gateway, coupon.reference)
    again = await pay(session, tenant, gateway, coupon.reference)
    assert again.replayed
    assert again.payment == first.payment
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_same_key_with_another_body_is_422(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    await pay(session, tenant, gateway, coupon.reference, "tok_declined")
    with pytest.raises(DomainValidationError) as err:
        await pay(session, tenant, gateway, coupon.reference, "tok_approved")
    assert err.value.code == "idempotency_key_reused"


async def test_keys_are_scoped_per_user(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    debtor = await make_debtor(session, tenant)
    user = await make_customer_user(session, debtor.customer)
    await session.commit()
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    await pay(session, tenant, gateway, coupon.reference, "tok_declined", key="shared")
    owner = Caller(user_id=user.id, role="customer", customer_id=debtor.customer.id)
    other = await pay(session, tenant, gateway, coupon.reference, "tok_approved", key="shared", caller=owner)
    assert other.payment.status == "approved" and not other.replayed
    scopes = sorted((await session.scalars(select(IdempotencyKey.scope))).all())
    assert scopes == ["anonymous", f"user:{user.id}"]


@pytest.mark.parametrize("key", [None, "", "   "])
async def test_a_missing_key_is_400(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway, key: str | None) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    with pytest.raises(BadInput) as err:
        await pay(session, tenant, gateway, coupon.reference, key=key)  # type: ignore[arg-type]
    assert err.value.code == "idempotency_key_required"


async def test_paying_a_paid_coupon_is_409_already_paid(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    await pay(session, tenant, gateway, coupon.reference)
    with pytest.raises(Conflict) as err:
        await pay(session, tenant, gateway, coupon.reference, key="k-2")
    assert err.value.code == "already_paid"
    # A refusal is not stored: the key is free for a later, valid attempt.
    assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


async def test_expired_and_cancelled_coupons_are_410(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    debtor = await make_debtor(session, tenant)
    old = (await make_coupon(session, tenant, debtor)).coupon
    new = (await make_coupon(session, tenant, debtor)).coupon
    # A refusal rolls the session back, which expires loaded rows: keep plain values.
    old_reference, new_reference, new_id, new_expiry = old.reference, new.reference, new.id, new.expires_at
    with pytest.raises(Gone) as cancelled:
        await pay(session, tenant, gateway, old_reference)
    assert cancelled.value.code == "coupon_cancelled"
    with pytest.raises(Gone) as expired:
        await pay(session, tenant, gateway, new_reference, now=new_expiry + timedelta(seconds=1))
    assert expired.value.code == "coupon_expired"
    await session.execute(update(Coupon).where(Coupon.id == new_id).values(status="expired"))
    await session.commit()
    with pytest.raises(Gone) as swept:
        await pay(session, tenant, gateway, new_reference)
    assert swept.value.code == "coupon_expired"


async def test_a_claimed_coupon_is_409_in_progress(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    await pay(session, tenant, gateway, coupon.reference, "tok_pending")
    with pytest.raises(Conflict) as err:
        await pay(session, tenant, gateway, coupon.reference, key="k-2")
    assert err.value.code == "payment_in_progress"


async def test_unknown_coupon_is_404(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    with pytest.raises(NotFound) as err:
        await pay(session, tenant, gateway, "12345678903")
    assert err.value.code == "coupon_not_found"
    assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


async def test_a_customer_cannot_pay_someone_elses_coupon(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    with pytest.raises(NotFound):
        await pay(session, tenant, gateway, coupon.reference, caller=Caller(user_id=99, role="customer", customer_id=None))


async def test_a_voided_invoice_cancels_the_coupon(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    debtor = await make_debtor(session, tenant)
    reference = (await make_coupon(session, tenant, debtor)).coupon.reference
    await session.execute(update(Invoice).where(Invoice.id == debtor.invoices[0].id).values(status="void"))
    await session.commit()
    with pytest.raises(Gone) as err:
        await pay(session, tenant, gateway, reference)
    assert err.value.code == "coupon_cancelled"
    assert await coupon_status(session, reference) == "cancelled"
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_pending_then_webhook_approval_applies_once(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    debtor = await make_debtor(session, tenant)
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    body = (await pay(session, tenant, gateway, coupon.reference, "tok_pending")).payment.to_record()
    assert body["status"] == "pending"
    assert await coupon_status(session, coupon.reference) == "processing"
    payment = await fresh(session, Payment, body["id"])
    webhook_body, headers = gateway.settlement_webhook(
        gateway_reference=payment.gateway_reference, merchant_reference=str(payment.id), status="approved"  # type: ignore[attr-defined]
    )
    outcome = await payment_controller.handle_webhook(
        session=session, secret=SECRET, body=webhook_body,
        timestamp_header=headers["X-Webhook-Timestamp"], signature_header=headers["X-Webhook-Signature"],
    )
    assert (outcome.status, outcome.applied) == ("approved", True)
    replay = await payment_controller.handle_webhook(
        session=session, secret=SECRET, body=webhook_body,
        timestamp_header=headers["X-Webhook-Timestamp"], signature_header=headers["X-Webhook-Signature"],
    )
    assert (replay.status, replay.applied) == ("approved", False)
    assert await coupon_status(session, coupon.reference) == "paid"
    assert await session.scalar(select(func.count()).select_from(PaymentAllocation)) == 1
    assert await ledger_kinds(session) == ["coupon_created", "payment_approved"]
    # The idempotent replay still answers with the first response.
    assert (await pay(session, tenant, gateway, coupon.reference, "tok_pending")).payment.to_record()["status"] == "pending"


async def test_webhook_decline_releases_the_coupon(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    body = (await pay(session, tenant, gateway, coupon.reference, "tok_pending")).payment.to_record()
    # Found by our merchant reference even without the gateway's.
    webhook_body, headers = gateway.settlement_webhook(
        gateway_reference="sbx_unknown", merchant_reference=str(body["id"]), status="declined", decline_code="expired_card"
    )
    outcome = await payment_controller.handle_webhook(
        session=session, secret=SECRET, body=webhook_body,
        timestamp_header=headers["X-Webhook-Timestamp"], signature_header=headers["X-Webhook-Signature"],
    )
    assert (outcome.status, outcome.applied) == ("declined", True)
    assert await coupon_status(session, coupon.reference) == "active"
    assert await ledger_kinds(session) == ["coupon_created", "payment_declined"]


async def test_webhook_signature_and_tolerance_are_checked(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    body = b'{"status":"approved","merchant_reference":"1"}'
    now = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    cases = [
        signed_headers("wrong-secret", body, timestamp=int(now.timestamp())),
        signed_headers(SECRET, body, timestamp=int(now.timestamp()) - 301),
        signed_headers(SECRET, body, timestamp=int(now.timestamp()) + 301),
        {"X-Webhook-Timestamp": str(int(now.timestamp())), "X-Webhook-Signature": ""},
        {"X-Webhook-Timestamp": "yesterday", "X-Webhook-Signature": "v1=00"},
    ]
    for headers in cases:
        with pytest.raises(AuthenticationFailed) as err:
            await payment_controller.handle_webhook(
                session=session, secret=SECRET, body=body, now=now,
                timestamp_header=headers["X-Webhook-Timestamp"], signature_header=headers["X-Webhook-Signature"],
            )
        assert err.value.code == "invalid_signature"
    ok = signed_headers(SECRET, body, timestamp=int(now.timestamp()) - 299)
    with pytest.raises(NotFound):  # signed and fresh, but about no payment
        await payment_controller.handle_webhook(
            session=session, secret=SECRET, body=body, now=now,
            timestamp_header=ok["X-Webhook-Timestamp"], signature_header=ok["X-Webhook-Signature"],
        )


async def test_reversal_restores_invoices_and_cancels_the_coupon(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    late = await make_debtor(session, tenant, amounts=("40000",), due_on=date(2026, 11, 3), status="overdue")
    on_time = await make_debtor(session, tenant, amounts=("85000",), due_on=date(2026, 11, 30), customer=late.customer)
    await session.commit()
    coupon = (
        await coupon_controller.create_coupon(
            session=session, tenant=tenant, caller=Caller(user_id=None, role="operator"),
            invoice_ids=[late.invoices[0].id, on_time.invoices[0].id], now=BEFORE_DUE,
        )
    ).coupon
    body = (await pay(session, tenant, gateway, coupon.reference)).payment.to_record()
    reversed_body = await reverse(session, tenant, body["id"], "Cargo desconocido", now=datetime(2026, 11, 10, 15, 0, tzinfo=UTC))
    assert (reversed_body["status"], reversed_body["reversal_reason"]) == ("reversed", "Cargo desconocido")
    late_row = await fresh(session, Invoice, late.invoices[0].id)
    on_time_row = await fresh(session, Invoice, on_time.invoices[0].id)
    assert (late_row.status, late_row.amount_due, late_row.paid_at) == ("overdue", Decimal(40000), None)  # type: ignore[attr-defined]
    assert (on_time_row.status, on_time_row.amount_due) == ("issued", Decimal(85000))  # type: ignore[attr-defined]
    assert await coupon_status(session, coupon.reference) == "cancelled"
    assert await ledger_kinds(session) == ["coupon_created", "payment_approved", "payment_reversed"]
    note = await session.scalar(select(Notification).where(Notification.event == "payment_reversed"))
    assert note is not None
    assert note.payload["reason"] == "Cargo desconocido"
    assert sorted(note.payload["invoice_numbers"]) == sorted([late.invoices[0].number, on_time.invoices[0].number])
    with pytest.raises(Conflict) as again:
        await reverse(session, tenant, body["id"], "otra vez")
    assert again.value.code == "already_reversed"


async def test_only_approved_payments_can_be_reversed(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    body = (await pay(session, tenant, gateway, coupon.reference, "tok_declined")).payment.to_record()
    with pytest.raises(Conflict) as err:
        await reverse(session, tenant, body["id"], "x y z")
    assert err.value.code == "payment_not_approved"
    with pytest.raises(NotFound):
        await reverse(session, tenant, 9999, "x y z")


async def test_a_reversed_invoice_can_be_paid_again_and_is_announced_again(
    session: AsyncSession, tenant: Tenant, gateway: SandboxGateway
) -> None:
    debtor = await make_debtor(session, tenant)
    first = (await make_coupon(session, tenant, debtor)).coupon
    body = (await pay(session, tenant, gateway, first.reference)).payment.to_record()
    await reverse(session, tenant, body["id"], "error de banco")
    second = (await make_coupon(session, tenant, debtor)).coupon
    assert (await pay(session, tenant, gateway, second.reference, key="k-2")).payment.to_record()["status"] == "approved"
    assert await session.scalar(select(func.count()).select_from(Notification).where(Notification.event == "invoice_paid")) == 2

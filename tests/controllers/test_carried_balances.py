"""Carried balances: an invoice carried into a later one is paid through it, once, by any channel, and reversals undo that."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import false, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import SandboxGateway
from controllers import (
    billing_run_controller,
    collection_controller,
    coupon_controller,
    lookup_controller,
    payment_controller,
)
from controllers.billing_run_controller import run_period
from controllers.coupon_controller import Caller
from controllers.errors import DomainError, DomainValidationError, Gone
from models.billing_model import Invoice
from models.payment_model import Coupon, Payment, PaymentAllocation
from models.tenant_model import Tenant
from tests.billing_builders import Metered, make_metered_contract, make_tariff
from tests.factories import make_invoice
from tests.payment_builders import fresh

STAFF = Caller(role="operator")
ANONYMOUS = Caller()
SEPTEMBER_DUE = date(2026, 10, 20)
BEFORE_RUN = datetime.fromisoformat("2026-11-04T15:00:00+00:00")
AFTER_RUN = datetime.fromisoformat("2026-11-06T15:00:00+00:00")
# October: 84763 consumption + 50000 carried + 1000 late fee, rounded to 10 (see the bill run's tests).
OCTOBER_TOTAL = Decimal(135760)


@pytest.fixture
def gateway() -> SandboxGateway:
    return SandboxGateway(webhook_secret="carried-balances")


async def overdue_september(session: AsyncSession, tenant: Tenant) -> tuple[Metered, int]:
    """A metered contract with October's reading and an overdue September invoice of 50000."""
    await make_tariff(session, tenant, "electricity")
    metered = await make_metered_contract(session, tenant, readings={"2026-10": (100, 100), "2026-11": (200, 100)})
    september = await make_invoice(
        session, metered.contract, period="2026-09", total="50000", status="overdue", due_on=SEPTEMBER_DUE, number="SEP-1"
    )
    await session.commit()
    return metered, september.id


async def bill(session: AsyncSession, tenant: Tenant, period: str = "2026-10", today: date = date(2026, 11, 5)) -> Invoice:
    """Run the real bill run for the period and return the invoice it made."""
    await run_period(session=session, tenant=tenant, period=period, today=today)
    await session.refresh(tenant)
    invoice = await session.scalar(
        select(Invoice).where(Invoice.period == period).execution_options(populate_existing=True)
    )
    assert invoice is not None
    return invoice


async def carried_setup(session: AsyncSession, tenant: Tenant) -> tuple[Metered, int, Invoice]:
    """September overdue, then October's run carries it."""
    metered, september_id = await overdue_september(session, tenant)
    october = await bill(session, tenant)
    assert (october.arrears, october.total, october.amount_due) == (Decimal(50000), OCTOBER_TOTAL, OCTOBER_TOTAL)
    return metered, september_id, october


async def pay_by_card(
    session: AsyncSession, tenant: Tenant, gateway: SandboxGateway, reference: str, *, token: str = "tok_approved", key: str = "k-1",
    now: datetime = AFTER_RUN,
) -> payment_controller.PaymentResult:
    try:
        return await payment_controller.pay_coupon(
            session=session, tenant=tenant, caller=ANONYMOUS, gateway=gateway, coupon_reference=reference,
            card_token=token, idempotency_key=key, now=now,
        )
    except DomainError:
        await session.refresh(tenant)
        raise


async def coupon_by_contract(session: AsyncSession, tenant: Tenant, metered: Metered, now: datetime = AFTER_RUN) -> Coupon:
    view = await coupon_controller.create_coupon(
        session=session, tenant=tenant, caller=STAFF, contract_number=metered.contract.contract_number, now=now
    )
    return view.coupon


async def coupon_state(session: AsyncSession, reference: str) -> tuple[str, str | None]:
    row = (await session.execute(select(Coupon.status, Coupon.cancel_reason).where(Coupon.reference == reference))).one()
    return (row[0], row[1])


async def state(session: AsyncSession, invoice_id: int) -> tuple[str, Decimal, int | None, bool]:
    row = await fresh(session, Invoice, invoice_id)
    return (row.status, row.amount_due, row.carried_into_invoice_id, row.paid_at is not None)  # type: ignore[attr-defined]


async def test_lookups_and_contract_coupons_offer_only_the_carrying_invoice(session: AsyncSession, tenant: Tenant) -> None:
    metered, _september_id, october = await carried_setup(session, tenant)
    number = metered.contract.contract_number

    public = await lookup_controller.public_lookup(session=session, tenant=tenant, contract_number=number)
    own = await lookup_controller.customer_lookup(
        session=session, tenant=tenant, customer_id=metered.customer.id, contract_number=number
    )
    for result in (public, own):
        assert [(i.number, i.amount_due) for i in result.invoices] == [(october.number, OCTOBER_TOTAL)]
        assert result.total_due == OCTOBER_TOTAL

    view = await coupon_controller.create_coupon(
        session=session, tenant=tenant, caller=ANONYMOUS, contract_number=number, now=AFTER_RUN
    )
    assert [(v.number, v.amount_due) for v in view.invoices] == [(october.number, OCTOBER_TOTAL)]
    assert (view.coupon.invoices_total, view.coupon.amount) == (OCTOBER_TOTAL, OCTOBER_TOTAL)


async def test_a_coupon_for_a_carried_invoice_by_id_is_422_naming_the_carrier(session: AsyncSession, tenant: Tenant) -> None:
    _metered, september_id, october = await carried_setup(session, tenant)
    with pytest.raises(DomainValidationError) as err:
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=STAFF, invoice_ids=[october.id, september_id])
    assert err.value.code == "invoice_carried"
    assert f"SEP-1 is carried into {october.number}" in err.value.detail
    assert [(e.field, e.code) for e in err.value.errors] == [("invoice_ids.1", "invoice_carried")]
    assert await session.scalar(select(func.count()).select_from(Coupon)) == 0


async def test_a_carried_invoice_names_the_end_of_its_chain(session: AsyncSession, tenant: Tenant) -> None:
    _metered, september_id, october = await carried_setup(session, tenant)
    november = await bill(session, tenant, "2026-11", date(2026, 12, 5))
    assert await state(session, october.id) == ("issued", OCTOBER_TOTAL, november.id, False)
    with pytest.raises(DomainValidationError) as err:
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=STAFF, invoice_ids=[september_id])
    assert err.value.code == "invoice_carried"
    assert f"SEP-1 is carried into {november.number}" in err.value.detail


async def test_paying_the_carrying_invoice_settles_the_carried_one_and_a_reversal_reopens_it(
    session: AsyncSession, tenant: Tenant, gateway: SandboxGateway
) -> None:
    metered, september_id, october = await carried_setup(session, tenant)
    coupon = await coupon_by_contract(session, tenant, metered)
    body = (await pay_by_card(session, tenant, gateway, coupon.reference)).payment.to_record()
    assert (body["status"], body["amount"]) == ("approved", "135760")

    assert await state(session, october.id) == ("paid", Decimal(0), None, True)
    assert await state(session, september_id) == ("paid", Decimal(0), october.id, True)
    allocations = (
        await session.execute(select(PaymentAllocation.invoice_id, PaymentAllocation.amount).where(PaymentAllocation.payment_id == body["id"]))
    ).all()
    assert [tuple(a) for a in allocations] == [(october.id, OCTOBER_TOTAL)]
    payment = await fresh(session, Payment, body["id"])
    assert sum(a.amount for a in allocations) == payment.amount  # type: ignore[attr-defined]

    await payment_controller.reverse_payment(
        session=session, tenant=tenant, admin_user_id=None, payment_id=body["id"], reason="Contracargo", now=AFTER_RUN
    )
    assert await state(session, october.id) == ("issued", OCTOBER_TOTAL, None, False)
    # Past due when it was carried, so overdue; still carried, so still paid only through October.
    assert await state(session, september_id) == ("overdue", Decimal(50000), october.id, False)
    lookup = await lookup_controller.public_lookup(session=session, tenant=tenant, contract_number=metered.contract.contract_number)
    assert [i.invoice_id for i in lookup.invoices] == [october.id]


async def test_settling_and_reversing_follow_the_whole_chain(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    metered, september_id, october = await carried_setup(session, tenant)
    november = await bill(session, tenant, "2026-11", date(2026, 12, 5))
    assert november.arrears == OCTOBER_TOTAL
    coupon = await coupon_by_contract(session, tenant, metered, now=datetime.fromisoformat("2026-12-06T15:00:00+00:00"))
    assert coupon.invoices_total == november.total
    body = (await pay_by_card(session, tenant, gateway, coupon.reference, now=datetime.fromisoformat("2026-12-06T16:00:00+00:00"))).payment.to_record()

    assert await state(session, november.id) == ("paid", Decimal(0), None, True)
    assert await state(session, october.id) == ("paid", Decimal(0), november.id, True)
    assert await state(session, september_id) == ("paid", Decimal(0), october.id, True)
    assert await session.scalar(select(func.count()).select_from(PaymentAllocation)) == 1

    await payment_controller.reverse_payment(
        session=session, tenant=tenant, admin_user_id=None, payment_id=body["id"], reason="Error", now=AFTER_RUN
    )
    assert await state(session, october.id) == ("overdue", OCTOBER_TOTAL, november.id, False)
    assert await state(session, september_id) == ("overdue", Decimal(50000), october.id, False)


async def test_a_bank_collection_settles_the_carried_invoice_too(session: AsyncSession, tenant: Tenant) -> None:
    metered, september_id, october = await carried_setup(session, tenant)
    coupon = await coupon_by_contract(session, tenant, metered)
    key, _raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco de Bogotá")
    await collection_controller.record_collection(
        session=session, bank_key=key, reference=coupon.reference, amount=OCTOBER_TOTAL, paid_at=AFTER_RUN, now=AFTER_RUN
    )
    assert await state(session, october.id) == ("paid", Decimal(0), None, True)
    assert await state(session, september_id) == ("paid", Decimal(0), october.id, True)
    row = await fresh(session, Invoice, september_id)
    assert row.paid_at == AFTER_RUN  # type: ignore[attr-defined]


async def test_the_run_cancels_an_older_coupon_of_the_invoice_it_carries(
    session: AsyncSession, tenant: Tenant, gateway: SandboxGateway
) -> None:
    metered, september_id = await overdue_september(session, tenant)
    old = await coupon_by_contract(session, tenant, metered, now=BEFORE_RUN)
    old_reference = old.reference
    october = await bill(session, tenant)
    october_id = october.id  # the refusal below rolls the session back, expiring the ORM objects
    assert october.total == OCTOBER_TOTAL

    old = await fresh(session, Coupon, old.id)  # type: ignore[assignment]
    assert (old.status, old.cancel_reason) == ("cancelled", "invoice_carried")
    with pytest.raises(Gone) as err:
        await pay_by_card(session, tenant, gateway, old_reference, now=BEFORE_RUN + timedelta(hours=2))
    assert err.value.code == "coupon_cancelled"
    # Nothing was paid twice: September is still owed only through October, whose amount is unchanged.
    assert await state(session, september_id) == ("overdue", Decimal(50000), october_id, False)
    assert await state(session, october_id) == ("issued", OCTOBER_TOTAL, None, False)
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_a_bank_report_of_an_expired_coupon_for_a_carried_invoice_is_refused(session: AsyncSession, tenant: Tenant) -> None:
    metered, september_id = await overdue_september(session, tenant)
    old = await coupon_by_contract(session, tenant, metered, now=BEFORE_RUN)
    reference, expires_at = old.reference, old.expires_at
    await session.execute(update(Coupon).where(Coupon.id == old.id).values(status="expired"))
    await session.commit()
    october_id = (await bill(session, tenant)).id
    key, _raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco de Bogotá")
    with pytest.raises(Gone) as err:
        await collection_controller.record_collection(
            session=session, bank_key=key, reference=reference, amount=Decimal(50000),
            paid_at=expires_at - timedelta(hours=1), now=expires_at + timedelta(hours=1),
        )
    assert err.value.code == "coupon_cancelled"
    assert await state(session, september_id) == ("overdue", Decimal(50000), october_id, False)
    assert await state(session, october_id) == ("issued", OCTOBER_TOTAL, None, False)
    assert await coupon_state(session, reference) == ("expired", None)


async def test_an_invoice_being_paid_is_not_carried(session: AsyncSession, tenant: Tenant, gateway: SandboxGateway) -> None:
    metered, september_id = await overdue_september(session, tenant)
    coupon = await coupon_by_contract(session, tenant, metered, now=BEFORE_RUN)
    pending = (await pay_by_card(session, tenant, gateway, coupon.reference, token="tok_pending", now=BEFORE_RUN)).payment.to_record()
    assert pending["status"] == "pending"

    october = await bill(session, tenant)
    assert (october.arrears, october.total) == (Decimal(0), Decimal(84760))
    assert await state(session, september_id) == ("overdue", Decimal(50000), None, False)

    assert await payment_controller.settle_approved(session=session, payment_id=pending["id"], now=AFTER_RUN)
    await session.commit()
    assert await state(session, september_id) == ("paid", Decimal(0), None, True)
    assert await state(session, october.id) == ("issued", Decimal(84760), None, False)


async def test_a_payment_that_takes_a_carried_invoice_during_the_batch_makes_the_batch_start_again(
    session: AsyncSession, tenant: Tenant, gateway: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    metered, september_id = await overdue_september(session, tenant)
    coupon = await coupon_by_contract(session, tenant, metered, now=BEFORE_RUN)
    await pay_by_card(session, tenant, gateway, coupon.reference, token="tok_pending", now=BEFORE_RUN)
    real_being_paid = billing_run_controller._being_paid
    blind = [True]

    def blind_once() -> object:
        # The first arrears SELECT misses the claim, as if the payment claimed the coupon right after it.
        if blind:
            blind.pop()
            return false()
        return real_being_paid()

    monkeypatch.setattr(billing_run_controller, "_being_paid", blind_once)
    october = await bill(session, tenant)

    assert not blind
    assert (october.arrears, october.total) == (Decimal(0), Decimal(84760))
    assert await state(session, september_id) == ("overdue", Decimal(50000), None, False)
    assert await session.scalar(select(func.count()).select_from(Invoice).where(Invoice.period == "2026-10")) == 1

"""Payment agreements: signing freezes the invoices, instalments settle once through any channel, missing two breaks it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import SandboxGateway
from controllers import (
    agreement_controller,
    cash_payment_controller,
    collection_controller,
    coupon_controller,
    invoice_controller,
    note_controller,
    payment_controller,
    report_controller,
    service_order_controller,
)
from controllers.agreement_controller import AgreementView
from controllers.billing_run_controller import run_period
from controllers.errors import Conflict, DomainError, DomainValidationError, Forbidden, NotFound
from domain.caller import Caller
from models.agreement_model import Agreement, AgreementInstalment
from models.billing_model import Invoice
from models.notification_model import Notification
from models.payment_model import Coupon, LedgerEntry, Payment
from models.service_order_model import ServiceOrder
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.factories import make_customer_user, make_invoice
from tests.payment_builders import Debtor, make_coupon, make_debtor

# Monday 7 December 2026, 10:00 in Bogotá: the debtors' invoices fell due on 16 November.
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
OPERATOR = Caller(user_id=None, role="operator")


async def sign(session: AsyncSession, tenant: Tenant, owed: Debtor | int, *, caller: Caller = OPERATOR, **terms: Any) -> AgreementView:
    """Sign for a debtor's contract (or a contract id, where a refusal rolled the session back and expired the debtor)."""
    terms.setdefault("instalment_count", 2)
    terms.setdefault("down_payment", Decimal(20000))
    contract_id = owed if isinstance(owed, int) else owed.contract.id
    return await agreement_controller.create_agreement(
        session=session, tenant=tenant, caller=caller, contract_id=contract_id, now=NOW, **terms
    )


async def set_tenant(session: AsyncSession, tenant: Tenant, **values: Any) -> None:
    await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(**values))
    await session.commit()
    await session.refresh(tenant)


async def agreement_status(session: AsyncSession, agreement_id: int) -> str:
    status = await session.scalar(select(Agreement.status).where(Agreement.id == agreement_id).execution_options(populate_existing=True))
    assert status is not None
    return status


async def invoice_states(session: AsyncSession, owed: Debtor) -> list[tuple[str, Decimal, int | None]]:
    rows = await session.execute(
        select(Invoice.status, Invoice.amount_due, Invoice.agreement_id)
        .where(Invoice.contract_id == owed.contract.id)
        .order_by(Invoice.due_on, Invoice.id)
        .execution_options(populate_existing=True)
    )
    return [(s, a, g) for s, a, g in rows.all()]


async def events(session: AsyncSession, event: str) -> list[dict[str, Any]]:
    return list((await session.scalars(select(Notification.payload).where(Notification.event == event).order_by(Notification.id))).all())


def local_noon(day: date) -> datetime:
    """Noon in Bogotá on `day`."""
    return datetime.combine(day, time(17, 0), tzinfo=UTC)


async def test_signing_freezes_the_invoices_and_issues_one_coupon_per_instalment(session: AsyncSession, tenant: Tenant) -> None:
    owed = await make_debtor(session, tenant, amounts=("60000", "40000"))
    contract_id, first_invoice = owed.contract.id, owed.invoices[0].id
    old = await make_coupon(session, tenant, owed, now=NOW)

    view = await sign(session, tenant, owed, instalment_count=7, monthly_rate=Decimal("1.5"))

    agreement = view.agreement
    assert (agreement.status, agreement.debt, agreement.down_payment, agreement.financing, agreement.total) == (
        "current", Decimal(100000), Decimal(20000), Decimal(8400), Decimal(108400)
    )
    assert [v.instalment.number for v in view.instalments] == list(range(8))
    assert [v.instalment.amount for v in view.instalments] == [Decimal(20000)] + [Decimal(12628)] * 6 + [Decimal(12632)]
    assert sum(v.coupon.amount for v in view.instalments) == agreement.total
    due_dates = [v.instalment.due_on for v in view.instalments]
    assert due_dates == sorted(due_dates) and all(d.weekday() < 5 for d in due_dates)
    # Each coupon is its own: a reference, a barcode with the instalment's amount and due date, no invoices.
    for v in view.instalments:
        assert v.coupon.status == "active" and v.coupon.due_on == v.instalment.due_on
        assert f"(3900){v.coupon.amount:.0f}(96){v.instalment.due_on:%Y%m%d}" in v.coupon.barcode_human_readable
    assert len({v.coupon.reference for v in view.instalments}) == 8
    assert await invoice_states(session, owed) == [("issued", Decimal(60000), agreement.id), ("issued", Decimal(40000), agreement.id)]
    assert [i.amount for i in view.invoices] == [Decimal(60000), Decimal(40000)]
    assert (await session.get_one(Coupon, old.coupon.id, populate_existing=True)).status == "cancelled"
    ledger = (await session.scalars(select(LedgerEntry.amount).where(LedgerEntry.reference.in_([v.coupon.reference for v in view.instalments])))).all()
    assert sum(ledger) == Decimal(108400)
    [created] = await events(session, "agreement_created")
    assert (created["total"], created["instalment_count"], created["first_amount"]) == ("108400", 7, "20000")

    # The frozen invoices are no longer payable on their own, by contract number or by id.
    with pytest.raises(NotFound):
        await make_coupon(session, tenant, owed, now=NOW)
    with pytest.raises(DomainValidationError) as refused:
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=OPERATOR, invoice_ids=[first_invoice], now=NOW)
    assert refused.value.code == "invoice_in_agreement"
    # ... nor are they marked overdue by the nightly sweep.
    assert await invoice_controller.mark_overdue(session=session, now=NOW) == 0
    # One current agreement per contract.
    await session.refresh(tenant)
    with pytest.raises(DomainError) as again:
        await sign(session, tenant, contract_id)
    assert again.value.code in {"agreement_exists", "nothing_due"}


async def test_limits_and_self_service(session: AsyncSession, tenant: Tenant) -> None:
    owed = await make_debtor(session, tenant, amounts=("100000",))
    other = await make_debtor(session, tenant, amounts=("50000",), name="Otra Persona")
    user = await make_customer_user(session, owed.customer)
    await session.commit()
    customer = Caller(user_id=user.id, role="customer", customer_id=owed.customer.id)
    mine, theirs, theirs_customer = owed.contract.id, other.contract.id, other.customer.id

    with pytest.raises(Forbidden):
        await sign(session, tenant, mine, caller=customer)
    await set_tenant(session, tenant, agreement_self_service=True, agreement_max_instalments=6,
                     agreement_min_down_payment_percent=Decimal("12.5"), agreement_monthly_rate=Decimal(1))
    refusals = [
        ({"instalment_count": 7}, "too_many_instalments"),
        ({"down_payment": Decimal(12499)}, "down_payment_too_small"),
        ({"down_payment": Decimal(100000)}, "down_payment_too_large"),
        ({"down_payment": Decimal("12500.5")}, "invalid_amount"),
        ({"monthly_rate": Decimal(0)}, "rate_not_allowed"),
    ]
    for terms, code in refusals:
        with pytest.raises(DomainValidationError) as refused:
            await sign(session, tenant, mine, caller=customer, **terms)
        assert refused.value.code == code
        await session.refresh(tenant)
    # Another customer's contract does not exist for this one.
    with pytest.raises(NotFound):
        await sign(session, tenant, theirs, caller=customer)

    view = await sign(session, tenant, mine, caller=customer, instalment_count=6, down_payment=Decimal(12500))

    # A customer's agreement gets the tenant's rate: 87 500 × 1 % × 6.
    assert (view.agreement.monthly_rate, view.agreement.financing, view.agreement.total) == (Decimal(1), Decimal(5250), Decimal(105250))
    assert view.instalments[0].coupon.creator_kind == "customer"
    with pytest.raises(NotFound):
        await agreement_controller.get_agreement(
            session=session, tenant=tenant, caller=Caller(user_id=None, role="customer", customer_id=theirs_customer),
            agreement_id=view.agreement.id,
        )


async def pay_by_card(session: AsyncSession, tenant: Tenant, reference: str, key: str, now: datetime) -> str:
    result = await payment_controller.pay_coupon(
        session=session, tenant=tenant, caller=Caller(), gateway=SandboxGateway(webhook_secret="s"), coupon_reference=reference,
        card_token="tok_approved", idempotency_key=key, now=now,
    )
    return result.payment.status


async def test_paying_by_card_bank_and_cash_completes_the_agreement(session: AsyncSession, tenant: Tenant) -> None:
    owed = await make_debtor(session, tenant, amounts=("60000", "40000"))
    view = await sign(session, tenant, owed, instalment_count=2, monthly_rate=Decimal(2))
    down, first, second = (v.coupon for v in view.instalments)
    bank_key, _ = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco de Prueba")
    cashier = Caller(user_id=None, role="operator")

    assert await pay_by_card(session, tenant, down.reference, "agree-1", NOW) == "approved"
    later = NOW + timedelta(days=20)
    await collection_controller.record_collection(session=session, bank_key=bank_key, reference=first.reference, amount=first.amount,
                                                  paid_at=later, now=later)
    assert await agreement_status(session, view.agreement.id) == "current"
    assert {s for s, _, _ in await invoice_states(session, owed)} == {"issued"}
    await cash_payment_controller.record_cash_payment(
        session=session, tenant=tenant, caller=cashier, amount=second.amount, office="Centro", idempotency_key="cash-1",
        coupon_reference=second.reference, now=later,
    )

    assert await agreement_status(session, view.agreement.id) == "completed"
    assert await invoice_states(session, owed) == [("paid", Decimal(0), view.agreement.id), ("paid", Decimal(0), view.agreement.id)]
    statuses = (await session.scalars(
        select(AgreementInstalment.status).where(AgreementInstalment.agreement_id == view.agreement.id).execution_options(populate_existing=True)
    )).all()
    assert set(statuses) == {"paid"}
    channels = (await session.scalars(select(Payment.channel).where(Payment.coupon_id.in_([down.id, first.id, second.id])).order_by(Payment.id))).all()
    assert channels == ["card", "bank", "cash"]
    # The ledger balances: the instalment coupons made = the payments approved = debt + financing.
    made = await session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.coupon_id.in_([down.id, first.id, second.id]), LedgerEntry.kind == "coupon_created"))
    paid = await session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.coupon_id.in_([down.id, first.id, second.id]), LedgerEntry.kind == "payment_approved"))
    assert made == paid == view.agreement.total == Decimal(100000 + 80000 * 2 * 2 // 100)
    [completed] = await events(session, "agreement_completed")
    assert completed["total"] == "103200"
    # The collections report counts them as the agreement channel, whichever channel paid.
    rows = await report_controller.collections(session=session, tenant=tenant, date_from=date(2026, 11, 20), date_to=date(2027, 1, 31))
    assert {r.channel for r in rows} == {"agreement"}
    assert (sum(r.payments for r in rows), sum(r.amount for r in rows)) == (3, Decimal(103200))
    # Settling the same coupons again changes nothing: each instalment settles once.
    await agreement_controller.after_coupons_paid(session=session, paid_at_by_coupon={down.id: later}, now=later)
    assert len(await events(session, "agreement_completed")) == 1


async def test_two_simultaneous_payments_of_one_instalment_settle_it_once(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    owed = await make_debtor(session, tenant, amounts=("100000",))
    view = await sign(session, tenant, owed, instalment_count=1)
    coupon = view.instalments[0].coupon
    bank_key, _ = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Simultáneo")
    sql = app.extensions["cuponera"].sql

    async def by_card() -> str:
        async with sql.session_scope(write=True) as own:
            mine = await own.get_one(Tenant, tenant.id)
            return await pay_by_card(own, mine, coupon.reference, "race-card", NOW)

    async def by_bank() -> str:
        async with sql.session_scope(write=True) as own:
            key = await own.get_one(type(bank_key), bank_key.id)
            await collection_controller.record_collection(session=own, bank_key=key, reference=coupon.reference, amount=coupon.amount,
                                                          paid_at=NOW, now=NOW)
            return "approved"

    outcomes = await asyncio.gather(by_card(), by_bank(), return_exceptions=True)

    assert sorted(o if isinstance(o, str) else "refused" for o in outcomes) == ["approved", "refused"]
    assert all(isinstance(o, (str, Conflict, DomainError)) for o in outcomes)
    approved = await session.scalar(select(func.count()).select_from(Payment).where(Payment.coupon_id == coupon.id, Payment.status == "approved"))
    assert approved == 1
    instalment = await session.scalar(
        select(AgreementInstalment).where(AgreementInstalment.coupon_id == coupon.id).execution_options(populate_existing=True)
    )
    assert instalment is not None and instalment.status == "paid" and instalment.paid_at is not None


async def test_missing_two_instalments_breaks_it_and_the_rest_falls_due_on_the_invoices(session: AsyncSession, tenant: Tenant) -> None:
    owed = await make_debtor(session, tenant, amounts=("60000", "40000"))
    view = await sign(session, tenant, owed, instalment_count=3, down_payment=Decimal(25000), monthly_rate=Decimal(1))
    down, first, second, third = view.instalments
    assert await pay_by_card(session, tenant, down.coupon.reference, "down", NOW) == "approved"

    # Two days before the first instalment: reminded once, however often the job runs.
    soon = local_noon(first.instalment.due_on - timedelta(days=2))
    assert await agreement_controller.run_agreements(session=session, now=soon) == 0
    assert await agreement_controller.run_agreements(session=session, now=soon) == 0
    assert [e["coupon_reference"] for e in await events(session, "instalment_due_soon")] == [first.coupon.reference]
    # The first is missed: overdue, notified, still current (the tenant breaks at two).
    assert await agreement_controller.run_agreements(session=session, now=local_noon(first.instalment.due_on + timedelta(days=1))) == 0
    assert [e["instalment_number"] for e in await events(session, "instalment_overdue")] == [1]
    assert await agreement_status(session, view.agreement.id) == "current"

    broke = await agreement_controller.run_agreements(session=session, now=local_noon(second.instalment.due_on + timedelta(days=1)))

    assert broke == 1
    assert await agreement_status(session, view.agreement.id) == "broken"
    # The 25 000 paid (principal) went to the oldest invoice; the rest is arrears again, out of the agreement.
    assert await invoice_states(session, owed) == [("issued", Decimal(35000), None), ("issued", Decimal(40000), None)]
    coupons = (await session.scalars(
        select(Coupon.status).where(Coupon.id.in_([v.coupon.id for v in (first, second, third)])).execution_options(populate_existing=True)
    )).all()
    assert set(coupons) == {"cancelled"}
    [broken] = await events(session, "agreement_broken")
    assert (broken["missed_count"], broken["amount_due"]) == (2, "75000")
    # It is payable again like any arrears.
    later = local_noon(second.instalment.due_on + timedelta(days=1))
    for invoice in owed.invoices:
        session.expire(invoice)  # as a new request's session would see them
    assert (await make_coupon(session, tenant, owed, now=later)).coupon.amount == Decimal(75000)
    with pytest.raises(DomainError):
        await pay_by_card(session, tenant, third.coupon.reference, "late", later)


async def test_the_suspension_job_skips_contracts_under_a_current_agreement(session: AsyncSession, tenant: Tenant) -> None:
    await set_tenant(session, tenant, suspension_after_days=10, suspension_min_amount=Decimal(0))
    covered = await make_debtor(session, tenant, amounts=("60000",), due_on=date(2026, 10, 1))
    uncovered = await make_debtor(session, tenant, amounts=("60000",), due_on=date(2026, 10, 1), name="Sin Acuerdo")
    await sign(session, tenant, covered, instalment_count=2, down_payment=Decimal(6000))

    assert await service_order_controller.order_suspensions(session=session, now=NOW) == 1

    ordered = (await session.scalars(select(ServiceOrder.contract_id))).all()
    assert ordered == [uncovered.contract.id]


async def test_cancelling_before_any_payment_returns_the_invoices_as_they_were(session: AsyncSession, tenant: Tenant) -> None:
    owed = await make_debtor(session, tenant, amounts=("60000",))
    view = await sign(session, tenant, owed)

    cancelled = await agreement_controller.cancel_agreement(session=session, tenant=tenant, caller=OPERATOR, agreement_id=view.agreement.id, now=NOW)

    assert cancelled.agreement.status == "cancelled"
    assert {v.instalment.status for v in cancelled.instalments} == {"cancelled"}
    assert {v.coupon.status for v in cancelled.instalments} == {"cancelled"}
    assert await invoice_states(session, owed) == [("issued", Decimal(60000), None)]
    with pytest.raises(Conflict):
        await agreement_controller.cancel_agreement(session=session, tenant=tenant, caller=OPERATOR, agreement_id=view.agreement.id, now=NOW)


async def test_the_bill_run_carries_no_arrears_nor_late_fee_for_frozen_invoices(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    frozen = await make_metered_contract(session, tenant, readings={"2026-10": (100, 100)})
    loose = await make_metered_contract(session, tenant, readings={"2026-10": (100, 100)})
    for metered, number in ((frozen, "SEP-1"), (loose, "SEP-2")):
        await make_invoice(session, metered.contract, period="2026-09", total="50000", status="overdue", due_on=date(2026, 10, 20), number=number)
    await session.commit()
    await agreement_controller.create_agreement(
        session=session, tenant=tenant, caller=OPERATOR, contract_id=frozen.contract.id, instalment_count=2,
        down_payment=Decimal(5000), now=datetime(2026, 11, 3, 15, tzinfo=UTC),
    )

    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))

    october = {
        i.contract_id: (i.arrears, i.total)
        for i in (await session.scalars(select(Invoice).where(Invoice.period == "2026-10").execution_options(populate_existing=True))).all()
    }
    # The loose one carries 50 000 and a month's late fee; the frozen one carries nothing.
    assert october[frozen.contract.id] == (Decimal(0), Decimal(84760))
    assert october[loose.contract.id] == (Decimal(50000), Decimal(135760))
    carried = (await session.scalars(select(Invoice.carried_into_invoice_id).where(Invoice.number == "SEP-1"))).one()
    assert carried is None


async def test_reversing_an_instalment_payment_reopens_it_with_a_new_coupon(session: AsyncSession, tenant: Tenant) -> None:
    owed = await make_debtor(session, tenant, amounts=("60000",))
    view = await sign(session, tenant, owed, instalment_count=1, down_payment=Decimal(10000))
    down, last = view.instalments
    assert await pay_by_card(session, tenant, down.coupon.reference, "rev-1", NOW) == "approved"
    assert await pay_by_card(session, tenant, last.coupon.reference, "rev-2", NOW) == "approved"
    assert await agreement_status(session, view.agreement.id) == "completed"
    payment_id = await session.scalar(select(Payment.id).where(Payment.coupon_id == last.coupon.id))
    assert payment_id is not None

    await payment_controller.reverse_payment(
        session=session, tenant=tenant, admin_user_id=None, payment_id=payment_id, reason="Contracargo", now=NOW  # type: ignore[arg-type]
    )

    assert await agreement_status(session, view.agreement.id) == "current"
    assert await invoice_states(session, owed) == [("overdue", Decimal(60000), view.agreement.id)]
    reopened = await agreement_controller.get_agreement(session=session, tenant=tenant, caller=OPERATOR, agreement_id=view.agreement.id)
    again = reopened.instalments[1]
    assert (again.instalment.status, again.instalment.paid_at) == ("pending", None)
    assert again.coupon.id != last.coupon.id and again.coupon.status == "active" and again.coupon.amount == last.coupon.amount
    # Paying the new coupon completes the agreement again.
    assert await pay_by_card(session, tenant, again.coupon.reference, "rev-3", NOW) == "approved"
    assert await agreement_status(session, view.agreement.id) == "completed"
    assert await invoice_states(session, owed) == [("paid", Decimal(0), view.agreement.id)]


async def test_a_frozen_invoice_cannot_be_voided_nor_noted_until_the_agreement_is_cancelled(session: AsyncSession, tenant: Tenant) -> None:
    owed = await make_debtor(session, tenant, amounts=("60000",))
    invoice_id = owed.invoices[0].id
    view = await sign(session, tenant, owed)

    with pytest.raises(Conflict) as voiding:
        await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=invoice_id, reason="Error de lectura")
    with pytest.raises(Conflict) as noting:
        await note_controller.issue_note(session=session, tenant=tenant, caller=OPERATOR, invoice_id=invoice_id, kind="credit",
                                         amount=Decimal(1000), reason="Ajuste")

    assert (voiding.value.code, noting.value.code) == ("invoice_in_agreement", "invoice_in_agreement")
    await agreement_controller.cancel_agreement(session=session, tenant=tenant, caller=OPERATOR, agreement_id=view.agreement.id, now=NOW)
    voided = await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=invoice_id, reason="Error de lectura")
    assert voided.invoice.status == "void"

"""Suspension and reconnection: the job orders suspensions only where the rules say, crews execute them,
and paying the arrears of a suspended contract orders its reconnection."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import collection_controller, coupon_controller, service_order_controller
from controllers.coupon_controller import CouponView
from controllers.errors import Conflict, DomainValidationError
from domain.caller import Caller
from models.account_model import Contract
from models.billing_model import ContractCharge, Invoice
from models.notification_model import Notification
from models.service_order_model import ServiceOrder
from models.tenant_model import Tenant
from tests.factories import make_contract, make_customer, make_invoice
from tests.payment_builders import Debtor, fresh, make_coupon

NOW = datetime.fromisoformat("2026-12-06T15:00:00+00:00")  # 10:00 in Bogotá: the tenant's today is 2026-12-06
# More than 60 days past due on 2026-12-06 means due on 2026-10-06 or earlier.
OVER_THRESHOLD = date(2026, 10, 6)
AT_THRESHOLD = date(2026, 10, 7)


async def debtor(session: AsyncSession, tenant: Tenant, *invoices: tuple[date, str], **contract_fields: object) -> Debtor:
    """A contract with one overdue invoice per (due date, amount), periods going back from 2026-09."""
    customer = await make_customer(session, tenant)
    contract = await make_contract(session, customer, **contract_fields)
    made = [
        await make_invoice(session, contract, period=f"2026-{9 - i:02d}", total=Decimal(amount), due_on=due_on,
                           issued_on=due_on - timedelta(days=15), status="overdue")
        for i, (due_on, amount) in enumerate(invoices)
    ]
    await session.commit()
    return Debtor(customer=customer, contract=contract, invoices=made)


async def orders(session: AsyncSession, contract_id: int) -> list[ServiceOrder]:
    return list(
        (await session.scalars(
            select(ServiceOrder).where(ServiceOrder.contract_id == contract_id).order_by(ServiceOrder.id)
            .execution_options(populate_existing=True)
        )).all()
    )


async def contract_status(session: AsyncSession, contract_id: int) -> str:
    contract = await fresh(session, Contract, contract_id)
    return contract.status  # type: ignore[attr-defined]


async def set_rules(session: AsyncSession, tenant: Tenant, **values: object) -> None:
    await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(**values))
    await session.commit()


async def pay_everything(session: AsyncSession, tenant: Tenant, owed: Debtor, now: datetime) -> None:
    """A bank collects a coupon for all the contract's unpaid invoices (late fees included)."""
    coupon = (await make_coupon(session, tenant, owed, now=now)).coupon
    key, _ = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco de Bogotá")
    await collection_controller.record_collection(
        session=session, bank_key=key, reference=coupon.reference, amount=coupon.amount, paid_at=now, now=now
    )


async def coupon_for(session: AsyncSession, tenant: Tenant, owed: Debtor, now: datetime) -> CouponView:
    """A coupon for just the given invoices."""
    return await coupon_controller.create_coupon(
        session=session, tenant=tenant, caller=Caller(user_id=None, role="operator"),
        invoice_ids=[i.id for i in owed.invoices], now=now,
    )


async def test_the_job_orders_suspensions_only_where_the_rules_say(session: AsyncSession, tenant: Tenant) -> None:
    await set_rules(session, tenant, suspension_min_amount=Decimal(50000), suspension_notice_days=5)
    over = await debtor(session, tenant, (OVER_THRESHOLD, "85000"), supply_address="Calle 5 # 10-20, Cali")
    at_threshold = await debtor(session, tenant, (AT_THRESHOLD, "85000"))
    too_little = await debtor(session, tenant, (date(2026, 9, 1), "30000"))
    # Two small bills add up to the minimum: the past-due debt counts, not one bill.
    adds_up = await debtor(session, tenant, (date(2026, 9, 1), "30000"), (date(2026, 11, 20), "20000"))
    disputed = await debtor(session, tenant, (date(2026, 9, 1), "85000"))
    # An open PQR claim on the invoice (pqr_controller sets the flag while it is open).
    await session.execute(update(Invoice).where(Invoice.id == disputed.invoices[0].id).values(disputed=True))
    already_suspended = await debtor(session, tenant, (date(2026, 9, 1), "85000"), status="suspended")
    await session.commit()

    created = await service_order_controller.order_suspensions(session=session, now=NOW)

    assert created == 2
    [order] = await orders(session, over.contract.id)
    assert (order.kind, order.status, order.amount, order.currency) == ("suspension", "pending", Decimal(85000), "COP")
    assert order.due_at == NOW + timedelta(days=5)
    assert order.reason == "Unpaid since 2026-10-06: 85000 COP past due"
    assert [o.amount for o in await orders(session, adds_up.contract.id)] == [Decimal(50000)]
    for untouched in (at_threshold, too_little, disputed, already_suspended):
        assert await orders(session, untouched.contract.id) == []
    assert await contract_status(session, over.contract.id) == "active"  # suspended only when a crew executes it
    notice = await session.scalar(select(Notification).where(Notification.dedupe_key == f"suspension_notice:{order.id}"))
    assert notice is not None
    assert (notice.event, notice.customer_id, notice.recipient) == ("suspension_notice", over.customer.id, over.customer.email)
    assert {k: notice.payload[k] for k in ("contract_number", "supply_address", "amount_due", "oldest_due_date", "suspend_from")} == {
        "contract_number": over.contract.contract_number, "supply_address": "Calle 5 # 10-20, Cali",
        "amount_due": "85000", "oldest_due_date": "2026-10-06", "suspend_from": "2026-12-11",
    }

    # Idempotent: the next run (and the one after) orders nothing new and sends no second notice.
    assert await service_order_controller.order_suspensions(session=session, now=NOW + timedelta(hours=1)) == 0
    assert len(await orders(session, over.contract.id)) == 1
    notices = (await session.scalars(select(Notification.id).where(Notification.event == "suspension_notice"))).all()
    assert len(notices) == 2


async def test_a_suspension_executes_after_the_notice_and_suspends_the_contract(session: AsyncSession, tenant: Tenant) -> None:
    owed = await debtor(session, tenant, (date(2026, 9, 1), "85000"))
    await service_order_controller.order_suspensions(session=session, now=NOW)
    [order] = await orders(session, owed.contract.id)

    with pytest.raises(Conflict) as early:
        await service_order_controller.change_order(
            session=session, tenant=tenant, order_id=order.id, user_id=None, status="executed",  # type: ignore[arg-type]
            executed_at=NOW + timedelta(days=4), reading=Decimal("1234.5"), now=NOW + timedelta(days=4),
        )
    assert early.value.code == "notice_period_running"
    with pytest.raises(DomainValidationError) as missing:
        await service_order_controller.change_order(
            session=session, tenant=tenant, order_id=order.id, user_id=None, status="executed",  # type: ignore[arg-type]
            executed_at=NOW + timedelta(days=6), now=NOW + timedelta(days=6),
        )
    assert [e.field for e in missing.value.errors] == ["reading"]
    assert await contract_status(session, owed.contract.id) == "active"

    done = await service_order_controller.change_order(
        session=session, tenant=tenant, order_id=order.id, user_id=None, status="executed",  # type: ignore[arg-type]
        executed_at=NOW + timedelta(days=6), reading=Decimal("1234.5"), note="Medidor sellado", now=NOW + timedelta(days=7),
    )

    assert (done.status, done.executed_at, done.reading, done.note) == ("executed", NOW + timedelta(days=6), Decimal("1234.5"), "Medidor sellado")
    assert await contract_status(session, owed.contract.id) == "suspended"
    with pytest.raises(Conflict) as again:
        await service_order_controller.change_order(
            session=session, tenant=tenant, order_id=order.id, user_id=None, status="cancelled", now=NOW + timedelta(days=8),  # type: ignore[arg-type]
        )
    assert again.value.code == "service_order_closed"
    # A suspended contract gets no second suspension order.
    assert await service_order_controller.order_suspensions(session=session, now=NOW + timedelta(days=8)) == 0


async def test_paying_the_arrears_orders_the_reconnection_and_executing_it_reactivates(session: AsyncSession, tenant: Tenant) -> None:
    await set_rules(session, tenant, reconnection_fee=Decimal(38500), reconnection_deadline_hours=24, suspension_notice_days=0)
    owed = await debtor(session, tenant, (date(2026, 9, 1), "85000"), (date(2026, 10, 1), "60000"))
    await service_order_controller.order_suspensions(session=session, now=NOW)
    [suspension] = await orders(session, owed.contract.id)
    await service_order_controller.change_order(
        session=session, tenant=tenant, order_id=suspension.id, user_id=None, status="executed",  # type: ignore[arg-type]
        executed_at=NOW, reading=Decimal(900), now=NOW + timedelta(hours=1),
    )
    paid_at = NOW + timedelta(days=1)

    # Paying part of the arrears orders nothing.
    partial = Debtor(customer=owed.customer, contract=owed.contract, invoices=owed.invoices[:1])
    coupon = (await coupon_for(session, tenant, partial, paid_at)).coupon
    key, _ = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Popular")
    await collection_controller.record_collection(session=session, bank_key=key, reference=coupon.reference, amount=coupon.amount, paid_at=paid_at, now=paid_at)
    assert [o.kind for o in await orders(session, owed.contract.id)] == ["suspension"]

    await pay_everything(session, tenant, owed, paid_at + timedelta(hours=1))

    _suspension, reconnection = await orders(session, owed.contract.id)
    assert (reconnection.kind, reconnection.status, reconnection.amount, reconnection.reason) == ("reconnection", "pending", Decimal(38500), "Arrears paid")
    assert reconnection.due_at == paid_at + timedelta(hours=25)
    assert await contract_status(session, owed.contract.id) == "suspended"
    # The fee waits as a charge for the contract's next bill, once.
    fees = (
        await session.execute(
            select(ContractCharge.description, ContractCharge.amount, ContractCharge.status)
            .where(ContractCharge.contract_id == owed.contract.id)
        )
    ).all()
    assert fees == [("Reconexión del servicio", Decimal(38500), "pending")]

    done = await service_order_controller.change_order(
        session=session, tenant=tenant, order_id=reconnection.id, user_id=None, status="executed",  # type: ignore[arg-type]
        executed_at=paid_at + timedelta(hours=5), reading=Decimal(900), now=paid_at + timedelta(hours=6),
    )
    assert done.status == "executed"
    assert await contract_status(session, owed.contract.id) == "active"


async def test_paying_before_the_crew_comes_cancels_the_pending_suspension(session: AsyncSession, tenant: Tenant) -> None:
    owed = await debtor(session, tenant, (date(2026, 9, 1), "85000"))
    await service_order_controller.order_suspensions(session=session, now=NOW)

    await pay_everything(session, tenant, owed, NOW + timedelta(days=1))

    [order] = await orders(session, owed.contract.id)
    assert (order.status, order.cancelled_at, order.note) == ("cancelled", NOW + timedelta(days=1), "Arrears paid before the suspension.")
    assert await contract_status(session, owed.contract.id) == "active"


async def test_a_reconnection_ordered_meanwhile_does_not_fail_the_payment(session: AsyncSession, tenant: Tenant) -> None:
    # Two payments of one contract at once both see no open reconnection; the second insert meets the
    # unique index. Its savepoint gives way and the payment's transaction goes on with the other rows.
    first = await debtor(session, tenant, (date(2026, 9, 1), "85000"), status="suspended")
    second = await debtor(session, tenant, (date(2026, 9, 1), "85000"), status="suspended")
    row = {"tenant_id": tenant.id, "kind": "reconnection", "status": "pending", "reason": "Arrears paid",
           "amount": Decimal(0), "currency": "COP", "created_at": NOW, "due_at": NOW + timedelta(hours=24)}
    await service_order_controller._insert_reconnections(session, [{**row, "contract_id": first.contract.id}])

    await service_order_controller._insert_reconnections(
        session, [{**row, "contract_id": first.contract.id}, {**row, "contract_id": second.contract.id}]
    )
    await session.commit()

    assert [o.kind for o in await orders(session, first.contract.id)] == ["reconnection"]
    assert [o.kind for o in await orders(session, second.contract.id)] == ["reconnection"]

"""Credit balances the bill run applies: a `Saldo a favor` line on the contract's next invoice, exactly once,
the rest of a credit larger than the bill kept open, also when a killed run is resumed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import note_controller, transaction_controller
from controllers.billing_run_controller import DEFAULT_STALE_AFTER, SimulatedCrash, claim_run, execute_run, run_period
from controllers.credit_balance_controller import CREDIT_DESCRIPTION, CreditTaken, apply_credits, open_credits
from domain.caller import Caller
from models.account_model import Contract
from models.base_model import utcnow
from models.billing_model import Invoice, InvoiceLine
from models.payment_model import CreditApplication, CreditBalance, LedgerEntry
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.controllers.test_billing_run_controller import PERIOD, RUN_DAY
from tests.factories import make_invoice

ADMIN = Caller(user_id=None, role="admin")


async def credit_on(session: AsyncSession, tenant: Tenant, contract_id: int, amount: int) -> int:
    """A credit balance on the contract: a credit note on a paid invoice of the month before."""
    contract = await session.get_one(Contract, contract_id)
    paid = await make_invoice(session, contract, period="2026-09", total=Decimal(amount) * 2, status="paid")
    await session.commit()
    view = await note_controller.issue_note(
        session=session, tenant=tenant, caller=ADMIN, invoice_id=paid.id, kind="credit", amount=Decimal(amount),
        reason="Reclamo procedente",
    )
    assert view.credit_balance_id is not None
    return view.credit_balance_id


async def invoice_of(session: AsyncSession, contract_id: int) -> Invoice:
    invoice = await session.scalar(
        select(Invoice).where(Invoice.contract_id == contract_id, Invoice.period == PERIOD)
        .execution_options(populate_existing=True)
    )
    assert invoice is not None
    return invoice


async def credit_lines(session: AsyncSession, invoice_id: int) -> list[tuple[str, Decimal]]:
    rows = await session.execute(
        select(InvoiceLine.kind, InvoiceLine.amount).where(
            InvoiceLine.invoice_id == invoice_id, InvoiceLine.description == CREDIT_DESCRIPTION
        )
    )
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def test_the_next_invoice_takes_the_credit_once_and_a_large_credit_keeps_its_rest(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    plain = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    small = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    large = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    await session.commit()
    small_customer, small_contract = small.customer.id, small.contract.id
    small_credit = await credit_on(session, tenant, small.contract.id, 30000)
    large_credit = await credit_on(session, tenant, large.contract.id, 3000000)

    await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    again = await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    assert again.billed == 0 and again.skipped == 3

    reference = await invoice_of(session, plain.contract.id)
    with_small = await invoice_of(session, small.contract.id)
    assert await credit_lines(session, with_small.id) == [("adjustment", Decimal(-30000))]
    assert with_small.total == with_small.amount_due == reference.total - 30000
    with_large = await invoice_of(session, large.contract.id)
    [(_, taken)] = await credit_lines(session, with_large.id)
    # A credit never makes the bill negative: it takes what leaves the total at zero (or just above).
    assert 0 <= with_large.total < reference.total and with_large.total == with_large.amount_due
    assert -taken > reference.total - 10000

    small_row = await session.get_one(CreditBalance, small_credit, populate_existing=True)
    assert (small_row.used_amount, small_row.status) == (Decimal(30000), "used")
    large_row = await session.get_one(CreditBalance, large_credit, populate_existing=True)
    assert (large_row.used_amount, large_row.status) == (-taken, "open")
    applications = (
        await session.execute(select(CreditApplication.credit_balance_id, CreditApplication.invoice_id, CreditApplication.amount))
    ).all()
    assert sorted(applications) == sorted([(small_credit, with_small.id, Decimal(30000)), (large_credit, with_large.id, -taken)])
    entries = (
        await session.execute(
            select(LedgerEntry.credit_balance_id, LedgerEntry.amount, LedgerEntry.reference).where(LedgerEntry.kind == "credit_applied")
        )
    ).all()
    assert sorted(entries) == sorted([(small_credit, Decimal(30000), with_small.number), (large_credit, -taken, with_large.number)])
    # The customer's history filtered by the contract shows the credit entry (it names no coupon).
    history = await transaction_controller.list_transactions(
        session=session, tenant=tenant, customer_id=small_customer, contract_id=small_contract
    )
    assert [(e.kind, e.amount) for e in history.items] == [("credit_applied", Decimal(30000))]


async def test_a_resumed_run_applies_each_credit_exactly_once(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    metered = [await make_metered_contract(session, tenant, readings={PERIOD: (v, v)}) for v in (100, 120, 140)]
    await session.commit()
    credits = [await credit_on(session, tenant, m.contract.id, 20000) for m in metered]

    with pytest.raises(SimulatedCrash):
        await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY, batch_size=1, stop_after_batches=1)
    claim = await claim_run(session=session, now=utcnow() + DEFAULT_STALE_AFTER + timedelta(seconds=1))
    assert claim is not None
    resumed = await execute_run(session=session, claim=claim, batch_size=1)
    assert (resumed.billed, resumed.status) == (3, "completed")

    for m, credit_id in zip(metered, credits, strict=True):
        invoice = await invoice_of(session, m.contract.id)
        assert await credit_lines(session, invoice.id) == [("adjustment", Decimal(-20000))]
        row = await session.get_one(CreditBalance, credit_id, populate_existing=True)
        assert (row.used_amount, row.status) == (Decimal(20000), "used")
    assert await session.scalar(select(func.count()).select_from(CreditApplication)) == 3
    assert await session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "credit_applied")) == 3


async def test_a_credit_a_refund_took_meanwhile_is_not_applied_from_a_stale_read(session: AsyncSession, tenant: Tenant) -> None:
    metered = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    await session.commit()
    contract_id = metered.contract.id
    credit_id = await credit_on(session, tenant, contract_id, 30000)
    conn = await session.connection()
    [held] = (await open_credits(conn, Contract.id == contract_id))[contract_id]
    assert (held.amount, held.used_before) == (Decimal(-30000), Decimal(0))
    # A refund takes part of it after the batch read it.
    await session.execute(update(CreditBalance).where(CreditBalance.id == credit_id).values(used_amount=Decimal(5000)))
    invoice = await make_invoice(session, await session.get_one(Contract, contract_id), period=PERIOD, total=Decimal(90000))
    with pytest.raises(CreditTaken):
        await apply_credits(
            session, conn, tenant_id=tenant.id, applied=[("1", invoice.id, invoice.number, held, Decimal(-30000))], now=utcnow()
        )
    await session.rollback()
    row = await session.get_one(CreditBalance, credit_id, populate_existing=True)
    assert (row.used_amount, row.status) == (Decimal(0), "open")
    assert await session.scalar(select(func.count()).select_from(CreditApplication)) == 0

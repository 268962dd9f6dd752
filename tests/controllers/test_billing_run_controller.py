"""The bill run: counts, estimation, arrears, idempotency, resuming after a crash, and its statement count."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from clients import bulk_insert
from controllers.billing_run_controller import (
    DEFAULT_STALE_AFTER,
    MAX_CLAIMS,
    RunTakenOver,
    SimulatedCrash,
    claim_run,
    execute_run,
    queue_run,
    run_period,
    whole_months_between,
)
from controllers.errors import Conflict, DomainValidationError
from controllers.outbox_controller import OutboxMessage, enqueue
from models.account_model import Reading
from models.base_model import utcnow
from models.billing_model import BillingRun, BillingRunItem, Invoice, InvoiceLine
from models.notification_model import Notification
from models.sequence_model import TenantSequence
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.factories import make_contract, make_customer, make_customer_user, make_invoice, make_meter

PERIOD = "2026-10"
RUN_DAY = date(2026, 11, 5)


async def _invoices(session: AsyncSession) -> list[Invoice]:
    return list((await session.scalars(select(Invoice).order_by(Invoice.contract_id, Invoice.period))).all())


async def _lines(session: AsyncSession, invoice_id: int) -> list[tuple[str, str, Decimal]]:
    rows = await session.execute(
        select(InvoiceLine.kind, InvoiceLine.description, InvoiceLine.amount)
        .where(InvoiceLine.invoice_id == invoice_id)
        .order_by(InvoiceLine.position)
    )
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def _items(session: AsyncSession, run_id: int) -> list[tuple[int, str, str]]:
    rows = await session.execute(
        select(BillingRunItem.contract_id, BillingRunItem.outcome, BillingRunItem.reason)
        .where(BillingRunItem.billing_run_id == run_id)
        .order_by(BillingRunItem.contract_id)
    )
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


def _counts(run: BillingRun) -> dict[str, int]:
    return {k: getattr(run, k) for k in ("billed", "skipped", "estimated", "flagged", "failed")}


async def test_a_run_bills_estimates_skips_and_fails_and_the_counts_add_up(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    plain = await make_metered_contract(session, tenant, readings={"2026-09": (1000, 100), PERIOD: (1100, 100)})
    # 93 kWh in August (31 days) and 90 in September (30 days): 3 a day, so 93 for October.
    estimated = await make_metered_contract(session, tenant, readings={"2026-08": (93, 93), "2026-09": (183, 90)})
    no_history = await make_metered_contract(session, tenant)
    gas = await make_metered_contract(session, tenant, service="gas", readings={PERIOD: (10, 10)})
    no_meter = await make_contract(session, await make_customer(session, tenant))
    suspended = await make_metered_contract(session, tenant, readings={PERIOD: (5, 5)})
    suspended.contract.status = "suspended"
    flagged = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    flagged_reading = await session.scalar(select(Reading).where(Reading.meter_id == flagged.meter.id))
    assert flagged_reading is not None
    flagged_reading.flags = "high"
    await session.commit()

    run = await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    assert run.status == "completed" and run.finished_at is not None
    assert _counts(run) == {"billed": 3, "skipped": 1, "estimated": 1, "flagged": 1, "failed": 2}
    assert run.billed + run.skipped + run.failed == 6  # the active contracts
    assert await _items(session, run.id) == [
        (no_history.contract.id, "skipped", "no actual readings to estimate from"),
        (gas.contract.id, "failed", "no gas tariff in force on 2026-10-31"),
        (no_meter.id, "failed", "no active meter"),
    ]

    invoices = await _invoices(session)
    assert [(i.contract_id, i.number) for i in invoices] == [
        (plain.contract.id, "FAC-2026-000001"),
        (estimated.contract.id, "FAC-2026-000002"),
        (flagged.contract.id, "FAC-2026-000003"),
    ]
    first = invoices[0]
    assert (first.period, first.issued_on, first.due_on, first.status) == (
        PERIOD, RUN_DAY, date(2026, 11, 20), "issued"
    )
    # 100 kWh x 847.63 = 84763, rounded to the nearest 10 COP.
    assert (first.consumption, first.total, first.amount_due, first.currency) == (
        Decimal(100), Decimal(84760), Decimal(84760), "COP"
    )
    assert await _lines(session, first.id) == [
        ("consumption", "Consumo 0-130 kWh", Decimal(84763)),
        ("rounding", "Redondeo", Decimal(-3)),
    ]
    assert first.billing_run_id == run.id and first.reading_id is not None

    reading = await session.scalar(
        select(Reading).where(Reading.meter_id == estimated.meter.id, Reading.period == PERIOD)
    )
    assert reading is not None
    assert (reading.kind, reading.value, reading.consumption, reading.flags) == (
        "estimated", Decimal(276), Decimal(93), ""
    )
    second = invoices[1]
    assert (second.reading_id, second.consumption, second.total) == (reading.id, Decimal(93), Decimal(78830))

    messages = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    assert [m.dedupe_key for m in messages] == [f"invoice_issued:{i.id}" for i in invoices]
    assert messages[0].recipient == plain.customer.email and messages[0].customer_id == plain.customer.id
    assert messages[0].payload == {
        "customer_name": plain.customer.name,
        "tenant_name": tenant.name,
        "invoice_id": invoices[0].id,
        "invoice_number": "FAC-2026-000001",
        "contract_number": plain.contract.contract_number,
        "period": PERIOD,
        "amount_due": "84760",
        "due_date": "2026-11-20",
    }


async def test_a_second_run_bills_nothing_and_counts_the_billed_as_skipped(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    for value in (100, 200, 300):
        await make_metered_contract(session, tenant, readings={PERIOD: (value, value)})
    await session.commit()

    first = await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    again = await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    assert _counts(first) == {"billed": 3, "skipped": 0, "estimated": 0, "flagged": 0, "failed": 0}
    assert _counts(again) == {"billed": 0, "skipped": 3, "estimated": 0, "flagged": 0, "failed": 0}
    assert await session.scalar(select(func.count()).select_from(Invoice)) == 3
    assert await session.scalar(select(func.count()).select_from(Notification)) == 3
    assert await _items(session, again.id) == []


async def _sequence(session: AsyncSession, tenant: Tenant) -> int | None:
    return await session.scalar(
        select(TenantSequence.last_value).where(TenantSequence.tenant_id == tenant.id, TenantSequence.name == "invoice")
    )


async def _assert_one_invoice_each_numbered_without_gaps(session: AsyncSession, tenant: Tenant, contracts: int) -> None:
    invoices = await _invoices(session)
    assert len({i.contract_id for i in invoices}) == len(invoices) == contracts
    assert sorted(i.number for i in invoices) == [f"FAC-2026-{n:06d}" for n in range(1, contracts + 1)]
    assert await _sequence(session, tenant) == contracts


async def test_a_run_killed_between_batches_resumes_without_duplicates_or_gaps(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    for value in range(1, 6):
        await make_metered_contract(session, tenant, readings={PERIOD: (value * 10, value * 10)})
    await session.commit()

    with pytest.raises(SimulatedCrash):
        await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY, batch_size=2, stop_after_batches=1)
    crashed = await session.scalar(select(BillingRun).execution_options(populate_existing=True))
    assert crashed is not None
    # Like a killed process: still `running`, its first batch committed with the cursor after it.
    assert (crashed.status, crashed.billed, crashed.contracts_done, crashed.contracts_total) == ("running", 2, 2, 5)
    assert crashed.claims == 1 and crashed.last_contract_id > 0
    assert await session.scalar(select(func.count()).select_from(Invoice)) == 2
    # While its heartbeat is fresh nobody takes it, and the period cannot be started twice.
    assert await claim_run(session=session) is None
    with pytest.raises(Conflict):
        await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    later = utcnow() + DEFAULT_STALE_AFTER + timedelta(seconds=1)
    claim = await claim_run(session=session, now=later)
    assert claim is not None and (claim.run_id, claim.claims) == (crashed.id, 2)
    resumed = await execute_run(session=session, claim=claim, batch_size=2)

    # The same run, resumed after its committed batch: nothing counted twice, nothing billed twice.
    assert resumed.id == crashed.id
    assert (resumed.billed, resumed.skipped, resumed.status) == (5, 0, "completed")
    assert (resumed.contracts_done, resumed.contracts_total) == (5, 5)
    await _assert_one_invoice_each_numbered_without_gaps(session, tenant, 5)


async def test_a_worker_presumed_dead_cannot_commit_after_another_took_its_run(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    for value in range(1, 4):
        await make_metered_contract(session, tenant, readings={PERIOD: (value * 10, value * 10)})
    await session.commit()
    run = await queue_run(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    assert run.status == "queued" and run.issued_on == RUN_DAY
    # Queuing the period again joins the queued run.
    assert (await queue_run(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)).id == run.id
    slow = await claim_run(session=session)
    assert slow is not None
    taker = await claim_run(session=session, now=utcnow() + DEFAULT_STALE_AFTER + timedelta(seconds=1))
    assert taker is not None and taker.claims == slow.claims + 1

    with pytest.raises(RunTakenOver):
        await execute_run(session=session, claim=slow, batch_size=2)
    assert await session.scalar(select(func.count()).select_from(Invoice)) == 0

    done = await execute_run(session=session, claim=taker, batch_size=2)
    assert (done.status, done.billed, done.claims) == ("completed", 3, 2)


async def test_a_worker_told_to_stop_hands_its_run_back_after_the_batch(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    for value in range(1, 6):
        await make_metered_contract(session, tenant, readings={PERIOD: (value * 10, value * 10)})
    await session.commit()
    await queue_run(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    claim = await claim_run(session=session)
    assert claim is not None
    asked = 0

    def stop_after_one_batch() -> bool:
        nonlocal asked
        asked += 1
        return asked > 1

    stopped = await execute_run(session=session, claim=claim, batch_size=2, should_stop=stop_after_one_batch)
    assert (stopped.status, stopped.billed, stopped.contracts_done) == ("queued", 2, 2)
    again = await claim_run(session=session)
    assert again is not None and again.run_id == claim.run_id
    finished = await execute_run(session=session, claim=again, batch_size=2)
    assert (finished.status, finished.billed) == ("completed", 5)
    await _assert_one_invoice_each_numbered_without_gaps(session, tenant, 5)


async def test_a_batch_that_fails_half_written_gives_its_numbers_back(
    session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_tariff(session, tenant, "electricity")
    for value in range(1, 6):
        await make_metered_contract(session, tenant, readings={PERIOD: (value * 10, value * 10)})
    await session.commit()
    real_insert = bulk_insert.FastInsert.run
    outbox_writes = 0

    async def insert_then_die(self: Any, conn: Any, rows: list[Any]) -> None:
        nonlocal outbox_writes
        if self.table.name == "notifications":
            outbox_writes += 1
            if outbox_writes == 2:  # the second batch dies after its invoices and lines are written
                raise RuntimeError("power cut")
        await real_insert(self, conn, rows)

    monkeypatch.setattr(bulk_insert.FastInsert, "run", insert_then_die)
    with pytest.raises(RuntimeError, match="power cut"):
        await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY, batch_size=2)
    await session.refresh(tenant)
    assert await session.scalar(select(func.count()).select_from(Invoice)) == 2
    assert await _sequence(session, tenant) == 2

    monkeypatch.setattr(bulk_insert.FastInsert, "run", real_insert)
    await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY, batch_size=2)
    await _assert_one_invoice_each_numbered_without_gaps(session, tenant, 5)


async def test_overdue_balances_are_carried_with_a_late_fee_except_disputed_paid_or_not_yet_due(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    readings = {PERIOD: (100, 100)}
    carried = await make_metered_contract(session, tenant, readings=readings)
    disputed = await make_metered_contract(session, tenant, readings=readings)
    paid = await make_metered_contract(session, tenant, readings=readings)
    not_due = await make_metered_contract(session, tenant, readings=readings)
    old = await make_metered_contract(session, tenant, readings=readings)
    sep = "2026-09"
    overdue = await make_invoice(
        session, carried.contract, period=sep, total="50000", status="overdue", due_on=date(2026, 10, 20), number="OLD-1"
    )
    await make_invoice(
        session, disputed.contract, period=sep, total="50000", status="overdue", due_on=date(2026, 10, 20),
        number="OLD-2", disputed=True,
    )
    await make_invoice(session, paid.contract, period=sep, total="50000", status="paid", due_on=date(2026, 10, 20), number="OLD-3")
    await make_invoice(session, not_due.contract, period=sep, total="50000", due_on=date(2026, 11, 20), number="OLD-4")
    # Still `issued` (mark-overdue has not run) but three whole months past due.
    await make_invoice(session, old.contract, period="2026-07", total="50000", due_on=date(2026, 8, 1), number="OLD-5")
    await session.commit()

    await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    new = {i.contract_id: i for i in await _invoices(session) if i.period == PERIOD}
    carried_invoice = new[carried.contract.id]
    # 84763 consumption + 50000 carried + 2 % of it for one month (1000), rounded to 10.
    assert await _lines(session, carried_invoice.id) == [
        ("consumption", "Consumo 0-130 kWh", Decimal(84763)),
        ("adjustment", "Saldo anterior", Decimal(50000)),
        ("late_fee", "Intereses de mora", Decimal(1000)),
        ("rounding", "Redondeo", Decimal(-3)),
    ]
    assert (carried_invoice.arrears, carried_invoice.total) == (Decimal(50000), Decimal(135760))
    for contract in (disputed, paid, not_due):
        assert (new[contract.contract.id].arrears, new[contract.contract.id].total) == (Decimal(0), Decimal(84760))
    old_invoice = new[old.contract.id]
    assert (old_invoice.arrears, old_invoice.total) == (Decimal(50000), Decimal(137760))  # 3 % x 3 months

    await session.refresh(overdue)
    # The carried invoice stays open; it is marked so no later run carries it a second time.
    assert (overdue.status, overdue.amount_due, overdue.carried_into_invoice_id) == (
        "overdue", Decimal(50000), carried_invoice.id
    )


async def test_a_carried_balance_is_not_carried_twice(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    customer = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100), "2026-11": (200, 100)})
    await make_invoice(session, customer.contract, period="2026-09", total="50000", status="overdue",
                       due_on=date(2026, 10, 20), number="OLD-1")
    await session.commit()
    await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    # October's invoice (135760, which includes September's 50000) is unpaid a month later.
    await run_period(session=session, tenant=tenant, period="2026-11", today=date(2026, 12, 5))

    november = (await _invoices(session))[-1]
    assert november.period == "2026-11"
    assert november.arrears == Decimal(135760)
    # 84763 + 135760 + 2715.2 late fee -> 223238.2 -> 223238, rounded to 223240.
    assert november.total == Decimal(223240)


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2026, 10, 20), date(2026, 11, 5), 1),
        (date(2026, 10, 5), date(2026, 11, 5), 1),
        (date(2026, 8, 1), date(2026, 11, 5), 3),
        (date(2026, 8, 6), date(2026, 11, 5), 2),
        (date(2025, 11, 5), date(2026, 11, 5), 12),
    ],
)
def test_late_fee_months_are_whole_months_overdue_and_at_least_one(start: date, end: date, months: int) -> None:
    assert whole_months_between(start, end) == months


async def test_a_contract_with_two_active_meters_fails_instead_of_billing_one(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    metered = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    await make_meter(session, metered.contract)
    await session.commit()

    run = await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    assert (run.billed, run.failed) == (0, 1)
    assert await _items(session, run.id) == [(metered.contract.id, "failed", "more than one active meter")]


async def test_the_tariff_in_force_is_the_latest_started_by_the_periods_last_day(
    session: AsyncSession, tenant: Tenant
) -> None:
    older = await make_tariff(session, tenant, "electricity", effective_from=date(2025, 1, 1))
    current = await make_tariff(session, tenant, "electricity", effective_from=date(2026, 10, 31))
    await make_tariff(session, tenant, "electricity", effective_from=date(2026, 11, 1))
    await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    await session.commit()

    await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    invoice = (await _invoices(session))[0]
    assert invoice.tariff_id == current.id != older.id


@pytest.mark.parametrize(("period", "code"), [("2026-13", "invalid_period"), ("2026-12", "period_in_future")])
async def test_a_bad_period_is_a_422(session: AsyncSession, tenant: Tenant, period: str, code: str) -> None:
    with pytest.raises(DomainValidationError) as raised:
        await run_period(session=session, tenant=tenant, period=period, today=RUN_DAY)
    assert raised.value.code == code
    assert raised.value.errors[0].field == "period"


@contextmanager
def count_statements(app: Quart) -> Iterator[list[str]]:
    """Collect every statement sent to the database while the block runs."""
    engine = app.extensions["cuponera"].sql.engine.sync_engine
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _billable_contracts(session: AsyncSession, tenant: Tenant, count: int) -> None:
    """`count` contracts: one to estimate, one with an overdue balance, the rest with a reading."""
    estimated = await make_metered_contract(session, tenant, readings={"2026-09": (90, 90)})
    owing = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    await make_invoice(session, owing.contract, period="2026-09", total="1000", status="overdue",
                       due_on=date(2026, 10, 1), number=f"OLD-{owing.contract.id}")
    customer = await make_customer(session, tenant)
    for n in range(count - 2):
        await make_metered_contract(session, tenant, customer=customer, readings={PERIOD: (n + 1, n + 1)})
    assert estimated.contract.id < owing.contract.id
    await session.commit()


async def test_the_run_costs_the_same_statements_for_50_or_500_contracts(
    app: Quart, session: AsyncSession, tenant: Tenant
) -> None:
    other = Tenant(code="other", name="Otra E.S.P.", country="CO", currency="COP", timezone="America/Bogota",
                   gln="7701234000011")
    session.add(other)
    await session.flush()
    statements_by_size = {}
    for size, owner in ((50, tenant), (500, other)):
        await make_tariff(session, owner, "electricity")
        await _billable_contracts(session, owner, size)
        with count_statements(app) as statements:
            run = await run_period(session=session, tenant=owner, period=PERIOD, today=RUN_DAY, batch_size=1000)
        assert (run.billed, run.estimated, run.failed) == (size, 1, 0)
        statements_by_size[size] = len(statements)
    # Ten times the contracts, not one statement more: nothing is done per contract.
    assert statements_by_size[50] == statements_by_size[500]
    assert statements_by_size[50] < 40

    with count_statements(app) as statements:
        await run_period(session=session, tenant=other, period=PERIOD, today=RUN_DAY, batch_size=100)
    # In batches of 100 the cost grows with the number of batches (5), still not with the contracts.
    assert len(statements) < 5 * statements_by_size[500]


async def test_the_runs_outbox_rows_are_the_ones_enqueue_would_write(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    metered = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)}, locale="en")
    login = await make_customer_user(session, metered.customer)
    silent = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)}, email=None)
    await session.commit()
    await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    written = (await session.scalars(select(Notification))).all()
    assert len(written) == 1  # the customer without an email gets nothing
    assert silent.customer.email is None
    ours = written[0]
    assert (ours.user_id, ours.customer_id, ours.recipient, ours.locale) == (
        login.id, metered.customer.id, metered.customer.email, "en"
    )

    await enqueue(
        session=session,
        message=OutboxMessage(
            tenant_id=tenant.id, event="invoice_issued", dedupe_key="copy", payload=ours.payload,
            recipient=ours.recipient, locale=ours.locale, user_id=ours.user_id, customer_id=ours.customer_id,
        ),
    )
    await session.commit()
    theirs = await session.scalar(select(Notification).where(Notification.dedupe_key == "copy"))
    assert theirs is not None
    skip = {"id", "dedupe_key", "created_at", "next_attempt_at"}
    columns = [c.key for c in Notification.__table__.columns if c.key not in skip]
    assert {c: getattr(ours, c) for c in columns} == {c: getattr(theirs, c) for c in columns}
    assert ours.created_at.tzinfo is not None and ours.next_attempt_at <= theirs.next_attempt_at


async def test_an_absurd_stored_tariff_fails_its_contracts_not_the_run(session: AsyncSession, tenant: Tenant) -> None:
    # Stored directly, as if accepted before the bounds existed: a fixed charge of 1e30.
    absurd = await make_tariff(session, tenant, "electricity")
    absurd.fixed_charges = [{"name": "Cargo fijo", "amount": "1E+30"}]
    await make_tariff(session, tenant, "water")
    victims = [await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)}) for _ in range(2)]
    fine = await make_metered_contract(session, tenant, service="water", readings={PERIOD: (10, 10)})
    await session.commit()

    run = await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    assert run.status == "completed"
    assert (run.billed, run.failed) == (1, 2)
    items = await _items(session, run.id)
    assert [(cid, outcome) for cid, outcome, _ in items] == [(v.contract.id, "failed") for v in victims]
    assert all(f"tariff {absurd.id} is not valid" in reason and "at most" in reason for _, _, reason in items)
    assert [i.contract_id for i in await _invoices(session)] == [fine.contract.id]


async def test_a_bill_too_large_for_the_columns_fails_that_contract_only(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    huge = await make_metered_contract(session, tenant, readings={PERIOD: (10**13, 10**13)})
    plain = await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    await session.commit()

    run = await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    assert run.status == "completed" and (run.billed, run.failed) == (1, 1)
    [(contract_id, outcome, reason)] = await _items(session, run.id)
    assert (contract_id, outcome) == (huge.contract.id, "failed") and "above the maximum" in reason
    assert [i.contract_id for i in await _invoices(session)] == [plain.contract.id]


async def test_a_killed_run_left_running_is_resumed_when_the_period_runs_again(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    # Left `running` by a process that died before heartbeats existed (or whose heartbeat stopped).
    killed = BillingRun(tenant_id=tenant.id, period=PERIOD, status="running", started_at=utcnow() - timedelta(hours=2))
    session.add(killed)
    await session.commit()
    killed_id = killed.id

    run = await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)

    assert (run.id, run.status, run.billed, run.claims) == (killed_id, "completed", 1, 1)
    assert run.finished_at is not None and run.error is None


async def test_a_run_whose_workers_keep_dying_is_failed_not_claimed_for_ever(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    await make_metered_contract(session, tenant, readings={PERIOD: (100, 100)})
    await session.commit()
    run = await queue_run(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    now = utcnow()
    for attempt in range(1, MAX_CLAIMS + 1):
        now += DEFAULT_STALE_AFTER + timedelta(seconds=1)
        claim = await claim_run(session=session, now=now)  # and its worker dies straight away
        assert claim is not None and claim.claims == attempt

    assert await claim_run(session=session, now=now + DEFAULT_STALE_AFTER + timedelta(seconds=1)) is None
    failed = await session.scalar(select(BillingRun).where(BillingRun.id == run.id).execution_options(populate_existing=True))
    assert failed is not None and failed.status == "failed"
    assert failed.error == f"abandoned: its worker stopped {MAX_CLAIMS} times"


async def test_a_run_that_meets_a_busy_database_is_handed_back_not_failed(
    session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_tariff(session, tenant, "electricity")
    for value in range(1, 4):
        await make_metered_contract(session, tenant, readings={PERIOD: (value * 10, value * 10)})
    await session.commit()
    run_id = (await queue_run(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)).id
    claim = await claim_run(session=session)
    assert claim is not None
    real_insert = bulk_insert.FastInsert.run

    async def locked(self: Any, conn: Any, rows: list[Any]) -> None:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(bulk_insert.FastInsert, "run", locked)
    with pytest.raises(OperationalError):
        await execute_run(session=session, claim=claim, batch_size=2)
    back = await session.scalar(select(BillingRun).where(BillingRun.id == run_id).execution_options(populate_existing=True))
    assert back is not None and (back.status, back.billed, back.error) == ("queued", 0, None)

    monkeypatch.setattr(bulk_insert.FastInsert, "run", real_insert)
    again = await claim_run(session=session)
    assert again is not None and again.run_id == run_id
    assert (await execute_run(session=session, claim=again, batch_size=2)).billed == 3

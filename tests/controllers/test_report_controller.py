"""Reports against the rows they sum: a real bill run, payments by card and bank, invoices of every age."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import SandboxGateway
from controllers import collection_controller, payment_controller, report_controller
from controllers.billing_run_controller import run_period
from controllers.errors import DomainValidationError
from domain.caller import Caller
from models.account_model import Contract
from models.billing_model import Invoice, InvoiceLine
from models.payment_model import Payment
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.factories import make_contract, make_customer, make_invoice
from tests.payment_builders import BEFORE_DUE, make_coupon, make_debtor

PERIOD = "2026-10"


async def test_billing_summary_matches_the_invoices_and_lines_of_a_bill_run(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    await make_tariff(session, tenant, "gas")
    for stratum, consumption in (("1", 120), ("1", 80), ("2", 150), ("5", 300), ("5", 10)):
        await make_metered_contract(session, tenant, stratum=stratum, readings={PERIOD: (1000 + consumption, consumption)})
    await make_metered_contract(session, tenant, service="gas", stratum="1", readings={PERIOD: (40, 40)})
    # Another period's invoice and a voided one stay out of the summary; this contract is estimated for October.
    await make_metered_contract(session, tenant, stratum="1", readings={"2026-09": (50, 50)})
    await session.commit()
    await run_period(session=session, tenant=tenant, period="2026-09", today=date(2026, 10, 5))
    await run_period(session=session, tenant=tenant, period=PERIOD, today=date(2026, 11, 5))
    unmetered = await make_contract(session, await make_customer(session, tenant), stratum="1")
    voided = await make_invoice(session, unmetered, period=PERIOD, total="99999", status="void")
    await session.commit()

    period, rows = await report_controller.billing(session=session, tenant=tenant, period=PERIOD)
    assert str(period) == PERIOD

    expected: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    invoices = (
        await session.execute(
            select(Invoice, Contract.service, Contract.stratum)
            .join(Contract, Contract.id == Invoice.contract_id)
            .where(Invoice.period == PERIOD, Invoice.status != "void")
        )
    ).all()
    assert voided.id not in {invoice.id for invoice, _, _ in invoices}
    for invoice, service, stratum in invoices:
        sums = expected[(service, stratum)]
        sums["invoices"] += 1
        for name, value in (("consumption", invoice.consumption), ("subtotal", invoice.subtotal), ("taxes", invoice.tax), ("total", invoice.total)):
            sums[name] += value
        for kind, amount in (await session.execute(select(InvoiceLine.kind, InvoiceLine.amount).where(InvoiceLine.invoice_id == invoice.id))).all():
            if kind in ("subsidy", "contribution"):
                sums[{"subsidy": "subsidies", "contribution": "contributions"}[kind]] += amount
    got = {
        (r.service, r.stratum): {
            "invoices": Decimal(r.invoices), "consumption": r.consumption, "subtotal": r.subtotal, "subsidies": r.subsidies,
            "contributions": r.contributions, "taxes": r.taxes, "total": r.total,
        }
        for r in rows
    }
    assert set(got) == {("electricity", "1"), ("electricity", "2"), ("electricity", "5"), ("gas", "1")}
    for key, sums in got.items():
        for name, value in sums.items():
            assert value == expected[key][name], (key, name)
    # Two read contracts and `other`, estimated from its September reading.
    assert got[("electricity", "1")]["invoices"] == 3 and got[("electricity", "1")]["subsidies"] < 0
    assert got[("electricity", "5")]["contributions"] > 0
    assert all(r.currency == "COP" for r in rows)
    assert (await report_controller.billing(session=session, tenant=tenant, period="2025-01"))[1] == []
    with pytest.raises(DomainValidationError) as err:
        await report_controller.billing(session=session, tenant=tenant, period="0000-01")
    assert err.value.code == "invalid_period"


async def test_aging_buckets_open_balances_by_days_past_due(session: AsyncSession, tenant: Tenant) -> None:
    as_of = date(2026, 11, 30)
    customer = await make_customer(session, tenant)
    low = await make_contract(session, customer, stratum="2")
    water = await make_contract(session, customer, service="water", stratum="2")
    issued = date(2026, 6, 1)
    # (contract, days past due at as_of, amount due, status)
    cases = [
        (low, -5, "1000", "issued"),  # not yet due: current
        (low, 0, "2000", "issued"),  # due today: current
        (low, 1, "30", "overdue"),
        (low, 30, "70", "overdue"),
        (low, 31, "300", "overdue"),
        (low, 60, "400", "overdue"),
        (low, 61, "5000", "overdue"),
        (low, 90, "6000", "overdue"),
        (low, 91, "70000", "overdue"),
        (low, 200, "800000", "overdue"),
        (water, 10, "11", "overdue"),
        (low, 15, "123456", "paid"),  # paid: not a receivable
    ]
    for index, (contract, days, amount, status) in enumerate(cases):
        invoice = await make_invoice(
            session, contract, period=f"20{10 + index}-01", total=amount, issued_on=issued, due_on=as_of - timedelta(days=days), status=status
        )
        if status == "paid":
            invoice.amount_due = Decimal(0)
    # Issued after as_of, and carried into a later invoice: neither counts.
    await make_invoice(session, low, period="2030-01", total="9", issued_on=as_of + timedelta(days=1), due_on=as_of + timedelta(days=16))
    carrier = await make_invoice(session, low, period="2030-02", total="1", issued_on=issued, due_on=as_of)
    carried = await make_invoice(session, low, period="2030-03", total="8", issued_on=issued, due_on=as_of - timedelta(days=45))
    carried.carried_into_invoice_id = carrier.id
    await session.commit()

    returned_as_of, rows = await report_controller.aging(session=session, tenant=tenant, as_of=as_of)

    assert returned_as_of == as_of
    by_service = {r.service: r for r in rows}
    assert set(by_service) == {"electricity", "water"}
    elec = by_service["electricity"]
    assert (elec.stratum, elec.currency, elec.invoices) == ("2", "COP", 11)
    assert (elec.current, elec.days_1_30, elec.days_31_60, elec.days_61_90, elec.days_90_plus) == (
        Decimal(3001), Decimal(100), Decimal(700), Decimal(11000), Decimal(870000),
    )
    assert elec.total == Decimal(884801) == elec.current + elec.days_1_30 + elec.days_31_60 + elec.days_61_90 + elec.days_90_plus
    water_row = by_service["water"]
    assert (water_row.invoices, water_row.days_1_30, water_row.total) == (1, Decimal(11), Decimal(11))
    # The same sum, straight from the rows.
    open_due = await session.scalars(
        select(Invoice.amount_due).where(
            Invoice.status.in_(("issued", "overdue")), Invoice.carried_into_invoice_id.is_(None), Invoice.issued_on <= as_of
        )
    )
    assert sum(open_due.all(), Decimal(0)) == elec.total + water_row.total


async def test_collections_per_local_day_and_channel(session: AsyncSession, tenant: Tenant) -> None:
    gateway = SandboxGateway(webhook_secret="s")
    key, _raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Popular")
    debtors = [await make_debtor(session, tenant, amounts=(amount,)) for amount in ("1000", "2500", "400", "77")]
    references = [(await make_coupon(session, tenant, d)).coupon.reference for d in debtors]
    # Bogotá is UTC-5: 03:00 UTC on 6 November is still 5 November there.
    late_evening = datetime.fromisoformat("2026-11-06T03:00:00+00:00")
    next_morning = datetime.fromisoformat("2026-11-06T12:00:00+00:00")
    await payment_controller.pay_coupon(
        session=session, tenant=tenant, caller=Caller(), gateway=gateway, coupon_reference=references[0],
        card_token="tok_approved", idempotency_key="k-1", now=BEFORE_DUE,
    )
    for reference, amount, now in ((references[1], "2500", late_evening), (references[2], "400", BEFORE_DUE), (references[3], "77", next_morning)):
        await collection_controller.record_collection(
            session=session, bank_key=key, reference=reference, amount=Decimal(amount), paid_at=BEFORE_DUE, now=now
        )

    rows = await report_controller.collections(session=session, tenant=tenant, date_from=date(2026, 11, 1), date_to=date(2026, 11, 30))

    got = {(r.day, r.channel): (r.currency, r.payments, r.amount) for r in rows}
    assert got[(date(2026, 11, 5), "bank_api")] == ("COP", 2, Decimal(2900))
    assert got[(date(2026, 11, 6), "bank_api")] == ("COP", 1, Decimal(77))
    # The card payment settles when the gateway answers, which is the real clock.
    card_settled = await session.scalar(select(Payment.settled_at).where(Payment.channel == "card"))
    assert card_settled is not None
    card_day = card_settled.astimezone(ZoneInfo(tenant.timezone)).date()
    if date(2026, 11, 1) <= card_day <= date(2026, 11, 30):
        assert got.pop((card_day, "card")) == ("COP", 1, Decimal(1000))
    assert set(got) == {(date(2026, 11, 5), "bank_api"), (date(2026, 11, 6), "bank_api")}
    # Every approved payment is in exactly one row of a range that covers them all.
    everything = await report_controller.collections(session=session, tenant=tenant, date_from=date(2026, 11, 1), date_to=date(2026, 11, 1) + timedelta(days=365))
    if card_day <= date(2027, 11, 1):
        paid = await session.scalars(select(Payment.amount).where(Payment.status == "approved"))
        assert sum(r.amount for r in everything) == sum(paid.all(), Decimal(0)) == Decimal(3977)
    only_sixth = await report_controller.collections(session=session, tenant=tenant, date_from=date(2026, 11, 6), date_to=date(2026, 11, 6))
    assert [(r.day, r.amount) for r in only_sixth] == [(date(2026, 11, 6), Decimal(77))]


@pytest.mark.parametrize(("date_from", "date_to"), [(date(2026, 11, 2), date(2026, 11, 1)), (date(2025, 1, 1), date(2026, 1, 2))])
async def test_collections_reject_a_reversed_or_too_long_range(session: AsyncSession, tenant: Tenant, date_from: date, date_to: date) -> None:
    with pytest.raises(DomainValidationError) as err:
        await report_controller.collections(session=session, tenant=tenant, date_from=date_from, date_to=date_to)
    assert err.value.code == "invalid_date_range"

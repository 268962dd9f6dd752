"""A year of demo history made by the real paths: bill runs, quick-pay card payments, bank collections,
a PQR that disputes an invoice, coupons that expired, overdue and carried invoices.

Nothing is written to the tables directly: each month is billed by `run_period` with that month's
issue date, and paid through `create_coupon` + `pay_coupon` (sandbox card) or `record_collection`
(a bank's report) with timestamps inside the month, so every ledger entry, allocation and email is
what production would have written. The demo customer gets every status at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import SandboxGateway
from controllers import billing_run_controller, collection_controller, invoice_controller, pqr_controller
from controllers.coupon_controller import create_coupon, expire_coupons, invoice_payable_amount
from controllers.demo_accounts import DEMO_CUSTOMER_EMAIL, SEED, demo_periods
from controllers.payment_controller import pay_coupon
from domain.caller import Caller
from domain.period import Period
from models.account_model import Contract
from models.billing_model import Invoice
from models.tenant_model import Tenant
from models.user_model import User

# Of each past month's invoices: most are paid, by card or at a bank; the rest carry into the next month.
PAID_SHARE = 0.85
CARD_SHARE = 0.6


@dataclass(frozen=True)
class DemoHistory:
    """What the history made, for the seed's summary line."""

    invoices: int
    card_payments: int
    bank_payments: int


def _at(tenant: Tenant, day: date, hour: int) -> datetime:
    """A moment of a local day in the tenant's time zone, in UTC."""
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tenant.timezone)).astimezone(UTC)


async def seed_demo_history(*, session: AsyncSession, tenant: Tenant, today: date) -> DemoHistory:
    """Bill the demo year month by month and pay it as customers would have; commits as the real paths do."""
    rng = random.Random(SEED + 1)
    gateway = SandboxGateway(webhook_secret="demo-history")  # approves tok_approved synchronously
    bank_key, _secret = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Demo")
    demo_user = await session.scalar(select(User).where(User.tenant_id == tenant.id, User.email == DEMO_CUSTOMER_EMAIL))
    assert demo_user is not None and demo_user.customer_id is not None
    demo = Caller(user_id=demo_user.id, role="customer", customer_id=demo_user.customer_id)
    periods = demo_periods(today)
    invoices = cards = banks = 0
    for index, period in enumerate(periods):
        issued_on = min(Period.parse(period).last_day + timedelta(days=2), today)
        await billing_run_controller.run_period(session=session, tenant=tenant, period=period, today=issued_on)
        rows = (
            await session.execute(
                select(Invoice.id, Invoice.customer_id, Invoice.payment_reference)
                .where(Invoice.tenant_id == tenant.id, Invoice.period == period)
                .order_by(Invoice.id)
            )
        ).all()
        invoices += len(rows)
        last = index == len(periods) - 1
        for invoice_id, customer_id, reference in rows:
            if customer_id == demo.customer_id:
                paid = await _demo_customer_month(session, tenant, demo, invoice_id, index, len(periods), issued_on, gateway)
                cards += paid
                continue
            if last or rng.random() >= PAID_SHARE:
                continue  # unpaid: the next run carries it as arrears, or it is this month's open bill
            paid_day = issued_on + timedelta(days=rng.randint(1, tenant.payment_terms_days - 1))
            moment = _at(tenant, paid_day, rng.randint(8, 19))
            if rng.random() < CARD_SHARE or not reference:
                view = await create_coupon(
                    session=session, tenant=tenant, caller=Caller(), invoice_ids=None,
                    contract_number=await _contract_number(session, invoice_id), now=moment,
                )
                await pay_coupon(
                    session=session, tenant=tenant, caller=Caller(anonymous_namespace=view.coupon.reference),
                    gateway=gateway, coupon_reference=view.coupon.reference, card_token="tok_approved",
                    idempotency_key=f"demo-{invoice_id}", now=moment,
                )
                cards += 1
            else:
                invoice = await session.get_one(Invoice, invoice_id)
                await collection_controller.record_collection(
                    session=session, bank_key=bank_key, reference=reference,
                    amount=invoice_payable_amount(tenant, invoice), paid_at=moment, now=moment,
                )
                banks += 1
        # Invoices whose due date passed before the next month's run are overdue when it reads arrears.
        await invoice_controller.mark_overdue(
            session=session, today=min(issued_on + timedelta(days=tenant.payment_terms_days + 1), today),
            tenant_id=tenant.id,
        )
    # This month's bill gets the coupon its holder would pay with now.
    latest = await session.scalar(
        select(Invoice.id).where(Invoice.customer_id == demo.customer_id, Invoice.period == periods[-1])
    )
    if latest is not None:
        await create_coupon(session=session, tenant=tenant, caller=demo, invoice_ids=[latest])
    return DemoHistory(invoices=invoices, card_payments=cards, bank_payments=banks)


async def _contract_number(session: AsyncSession, invoice_id: int) -> str:
    number = await session.scalar(
        select(Contract.contract_number).join(Invoice, Invoice.contract_id == Contract.id).where(Invoice.id == invoice_id)
    )
    assert number is not None
    return number


async def _demo_customer_month(
    session: AsyncSession, tenant: Tenant, demo: Caller, invoice_id: int, index: int, months: int,
    issued_on: date, gateway: SandboxGateway,
) -> int:
    """The demo customer's year: paid by card until three months ago, then one bill disputed by a PQR,
    one left unpaid with a coupon that expired (carried into the next), and this month's open."""
    moment = _at(tenant, issued_on + timedelta(days=5), 10)
    if index < months - 3:
        view = await create_coupon(session=session, tenant=tenant, caller=demo, invoice_ids=[invoice_id], now=moment)
        await pay_coupon(
            session=session, tenant=tenant, caller=demo, gateway=gateway, coupon_reference=view.coupon.reference,
            card_token="tok_approved", idempotency_key=f"demo-own-{invoice_id}", now=moment,
        )
        return 1
    if index == months - 3:
        user = await session.get_one(User, demo.user_id)
        await pqr_controller.file_pqr(
            session=session, tenant=tenant, user=user, pqr_type="claim", subject="Consumo muy alto",
            description="El consumo de este mes es el doble de lo normal; pido revisar la lectura del medidor.",
            invoice_id=invoice_id, now=moment,
        )
    elif index == months - 2:
        # A coupon made and never paid: it lapses before the next run carries the invoice.
        view = await create_coupon(session=session, tenant=tenant, caller=demo, invoice_ids=[invoice_id], now=moment)
        await expire_coupons(session=session, now=view.coupon.expires_at + timedelta(minutes=1))
    return 0

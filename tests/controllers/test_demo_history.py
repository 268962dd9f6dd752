"""The demo year: made by the real bill run and payment paths, it shows the demo customer every status."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import demo_controller
from controllers.demo_accounts import DEMO_CUSTOMER_EMAIL
from models.billing_model import Invoice
from models.notification_model import Notification
from models.payment_model import Coupon, Payment, PaymentAllocation
from models.pqr_model import Pqr
from models.tenant_model import Tenant
from models.user_model import User


async def test_the_demo_customer_sees_a_year_of_mixed_statuses(session: AsyncSession, tenant: Tenant, tmp_path: Path) -> None:
    lines = await demo_controller.seed_demo(session=session, var_dir=tmp_path, rounds=4)
    assert lines[0].startswith("Demo data loaded: 600 invoices over 12 months")
    customer_id = await session.scalar(select(User.customer_id).where(User.email == DEMO_CUSTOMER_EMAIL))

    invoices = (
        await session.execute(
            select(Invoice.period, Invoice.status, Invoice.disputed, Invoice.carried_into_invoice_id)
            .where(Invoice.customer_id == customer_id).order_by(Invoice.period)
        )
    ).all()
    assert len(invoices) == 12
    assert [status for _, status, _, _ in invoices] == ["paid"] * 9 + ["overdue", "overdue", "issued"]
    assert [disputed for _, _, disputed, _ in invoices][9] is True  # the PQR claim disputes it
    assert invoices[10][3] is not None  # left unpaid, it was carried into this month's bill
    coupons = Counter(await session.scalars(select(Coupon.status).where(Coupon.customer_id == customer_id)))
    assert coupons == {"paid": 9, "expired": 1, "active": 1}
    assert await session.scalar(select(func.count(Pqr.id)).where(Pqr.customer_id == customer_id)) == 1

    # Every paid invoice of the tenant was paid once, by card or by a bank, with its money allocated
    # (a carried invoice is settled through the bill that carried it, so it has no allocation of its own).
    paid = await session.scalar(
        select(func.count(Invoice.id)).where(Invoice.status == "paid", Invoice.carried_into_invoice_id.is_(None))
    )
    allocated = await session.scalar(
        select(func.count(func.distinct(PaymentAllocation.invoice_id)))
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(Payment.status == "approved", PaymentAllocation.kind == "invoice")
    )
    assert paid == allocated and paid > 400
    channels = Counter(await session.scalars(select(Payment.channel).where(Payment.status == "approved")))
    assert channels["card"] > 0 and channels["bank"] > 0
    # The emails of the year wait for the worker; none failed to be queued.
    assert await session.scalar(select(func.count(Notification.id)).where(Notification.status != "pending")) == 0

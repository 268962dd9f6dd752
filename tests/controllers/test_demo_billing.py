"""Demo billing data: the demo tenant gets valid electricity, water and gas tariffs, once."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import demo_billing, tariff_controller
from domain import billing_calculator as calc
from models.billing_model import Tariff
from models.tenant_model import Tenant


async def test_demo_tariffs_are_seeded_once_and_are_valid(session: AsyncSession, tenant: Tenant) -> None:
    added = await demo_billing.seed_demo_tariffs(session=session, tenant=tenant)
    again = await demo_billing.seed_demo_tariffs(session=session, tenant=tenant)
    await session.commit()

    assert [t.service for t in added] == ["electricity", "water", "gas"] and again == []
    stored = (await session.scalars(select(Tariff).order_by(Tariff.service))).all()
    assert [(t.service, t.effective_from, t.currency, t.unit) for t in stored] == [
        ("electricity", date(2025, 1, 1), "COP", "kWh"),
        ("gas", date(2025, 1, 1), "COP", "m3"),
        ("water", date(2025, 1, 1), "COP", "m3"),
    ]
    for tariff in stored:
        fields = tariff_controller.row_fields(tariff)
        assert calc.validate_tariff(tariff_controller.calculator_tariff(fields), tenant_currency=tenant.currency) == []

"""The shared test builders produce valid, linked rows."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from models.tenant_model import Tenant
from tests.factories import make_contract, make_customer, make_customer_user, make_invoice, make_meter, make_reading


async def test_builders_link_rows(session: AsyncSession, tenant: Tenant) -> None:
    customer = await make_customer(session, tenant, national_id="1.020.304.050")
    contract = await make_contract(session, customer)
    meter = await make_meter(session, contract)
    reading = await make_reading(session, meter, "2026-10", 150, 150)
    invoice = await make_invoice(session, contract, total="20870")
    user = await make_customer_user(session, customer)
    await session.commit()
    assert customer.national_id == "1020304050"
    assert customer.national_id_display == "1.020.304.050"
    assert (contract.customer_id, meter.contract_id, reading.meter_id) == (customer.id, contract.id, meter.id)
    assert invoice.amount_due == Decimal(20870) and invoice.customer_id == customer.id
    assert user.customer_id == customer.id and user.role == "customer"

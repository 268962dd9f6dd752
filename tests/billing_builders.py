"""Test builders for billing: stored tariffs and metered contracts with a reading history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from controllers import tariff_controller
from domain.billing_calculator import Tariff as CalculatorTariff
from domain.demo_tariffs import DEMO_TARIFFS
from models.account_model import Contract, Customer, Meter
from models.billing_model import Tariff
from models.tenant_model import Tenant
from tests.factories import make_contract, make_customer, make_meter, make_reading


def tariff_fields(service: str = "electricity", **overrides: Any) -> dict[str, Any]:
    """API-shaped fields of a demo tariff, with overrides."""
    fields = tariff_controller.fields_from_calculator(
        DEMO_TARIFFS[service], service=service, effective_from=date(2025, 1, 1), name=f"{service} test"
    )
    fields.update(overrides)
    return fields


async def make_tariff(
    session: AsyncSession,
    tenant: Tenant,
    service: str = "electricity",
    *,
    effective_from: date = date(2025, 1, 1),
    tariff: CalculatorTariff | None = None,
) -> Tariff:
    """A stored tariff version (the demo tariff of the service unless told otherwise)."""
    fields = tariff_controller.fields_from_calculator(
        tariff or DEMO_TARIFFS[service], service=service, effective_from=effective_from
    )
    row = tariff_controller.new_tariff_row(tenant_id=tenant.id, fields=fields)
    session.add(row)
    await session.flush()
    return row


@dataclass
class Metered:
    """A customer, its contract and the contract's meter."""

    customer: Customer
    contract: Contract
    meter: Meter


async def make_metered_contract(
    session: AsyncSession,
    tenant: Tenant,
    *,
    readings: Mapping[str, tuple[int | str, int | str]] | None = None,
    customer: Customer | None = None,
    service: str = "electricity",
    stratum: str = "4",
    **customer_fields: Any,
) -> Metered:
    """A contract with an active meter and readings {period: (register value, consumption)}, all actual."""
    customer = customer or await make_customer(session, tenant, **customer_fields)
    contract = await make_contract(session, customer, service=service, stratum=stratum)
    meter = await make_meter(session, contract)
    for period, (value, consumption) in (readings or {}).items():
        await make_reading(session, meter, period, Decimal(value), Decimal(consumption))
    return Metered(customer, contract, meter)

"""Demo billing data: the demo tenant's electricity, water and gas tariffs."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import tariff_controller
from domain.demo_tariffs import DEMO_TARIFFS
from models.billing_model import Tariff
from models.tenant_model import Tenant

DEMO_EFFECTIVE_FROM = date(2025, 1, 1)
DEMO_NAMES = {
    "electricity": "Energía residencial 2025",
    "water": "Acueducto y alcantarillado 2025",
    "gas": "Gas natural 2025",
}


async def seed_demo_tariffs(*, session: AsyncSession, tenant: Tenant) -> list[Tariff]:
    """Add the demo tariffs in force from 2025-01-01 (in the caller's transaction); existing ones are kept."""
    existing = set(
        await session.scalars(
            select(Tariff.service).where(Tariff.tenant_id == tenant.id, Tariff.effective_from == DEMO_EFFECTIVE_FROM)
        )
    )
    added = []
    for service, tariff in DEMO_TARIFFS.items():
        # The demo prices are in COP; a tenant in another currency needs its own price list.
        if service in existing or tariff.currency != tenant.currency:
            continue
        fields = tariff_controller.fields_from_calculator(
            tariff, service=service, effective_from=DEMO_EFFECTIVE_FROM, name=DEMO_NAMES[service]
        )
        row = tariff_controller.new_tariff_row(tenant_id=tenant.id, fields=fields)
        session.add(row)
        added.append(row)
    await session.flush()
    return added

"""Demo data for PQRs: Colombia's public holidays, so the demo tenant's answer deadlines skip them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from controllers import holiday_controller
from domain.holidays_co import COLOMBIA_HOLIDAYS
from models.tenant_model import Tenant


async def seed_demo_pqr(*, session: AsyncSession, tenant: Tenant) -> int:
    """Add Colombia's 2026 and 2027 holidays to the tenant (no commit: the demo seed commits once)."""
    added = 0
    for year in sorted(COLOMBIA_HOLIDAYS):
        added += await holiday_controller.add_holidays(
            session=session, tenant_id=tenant.id, holidays=COLOMBIA_HOLIDAYS[year]
        )
    return added

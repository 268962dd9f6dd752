"""Demo data for PQRs: the tenant's country's public holidays, so the demo answer deadlines skip them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from controllers import holiday_controller
from controllers.account_common import tenant_today
from domain.country_packs import country_pack
from models.tenant_model import Tenant


async def seed_demo_pqr(*, session: AsyncSession, tenant: Tenant) -> int:
    """Add this year's and next year's holidays to the tenant (no commit: the demo seed commits once)."""
    pack = country_pack(tenant.country)
    year = tenant_today(tenant).year
    added = 0
    for each in (year, year + 1):
        added += await holiday_controller.add_holidays(session=session, tenant_id=tenant.id, holidays=pack.holidays(each))
    return added

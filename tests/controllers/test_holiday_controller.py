"""Tenant holidays: idempotent loading, range queries, the demo seed and the load-holidays command."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import demo_controller, holiday_controller
from controllers.account_common import tenant_today
from controllers.errors import DomainValidationError
from domain.country_packs import country_pack
from models.pqr_model import TenantHoliday
from models.tenant_model import Tenant
from tests.conftest import TestDatabase
from tests.test_cli import run_cli


async def count_holidays(session: AsyncSession, tenant_id: int) -> int:
    """How many holidays the tenant has."""
    return await session.scalar(select(func.count(TenantHoliday.id)).where(TenantHoliday.tenant_id == tenant_id)) or 0


async def test_adding_holidays_is_idempotent(session: AsyncSession, tenant: Tenant) -> None:
    tenant_id = tenant.id
    assert await holiday_controller.add_holidays(session=session, tenant_id=tenant_id, holidays=country_pack("CO").holidays(2026)) == 19
    assert await holiday_controller.add_holidays(session=session, tenant_id=tenant_id, holidays=country_pack("CO").holidays(2026)) == 0
    await session.commit()
    assert await count_holidays(session, tenant_id) == 19
    found = await holiday_controller.holidays_between(
        session=session, tenant_id=tenant_id, start=date(2026, 3, 23), end=date(2026, 4, 3)
    )
    assert found == {date(2026, 3, 23), date(2026, 4, 2), date(2026, 4, 3)}


async def test_a_country_without_a_pack_has_no_calendar(session: AsyncSession, tenant: Tenant) -> None:
    with pytest.raises(DomainValidationError) as caught:
        await holiday_controller.load_country_holidays(session=session, tenant_id=tenant.id, country="AR", years=[2026])
    assert caught.value.code == "holiday_calendar_unknown"


async def test_chilean_holidays_load_from_the_country_pack(session: AsyncSession, tenant: Tenant) -> None:
    tenant_id = tenant.id
    assert await holiday_controller.load_country_holidays(session=session, tenant_id=tenant_id, country="CL", years=[2026]) == 16
    found = await holiday_controller.holidays_between(
        session=session, tenant_id=tenant_id, start=date(2026, 9, 1), end=date(2026, 9, 30)
    )
    assert found == {date(2026, 9, 18), date(2026, 9, 19)}


async def test_the_demo_seed_loads_this_year_and_the_next(session: AsyncSession, tenant: Tenant, tmp_path: Path) -> None:
    tenant_id = tenant.id
    year = tenant_today(tenant).year
    await demo_controller.seed_demo(session=session, var_dir=tmp_path, rounds=4)
    expected = {d for each in (year, year + 1) for d, _ in country_pack("CO").holidays(each)}
    days = set((await session.scalars(select(TenantHoliday.day).where(TenantHoliday.tenant_id == tenant_id))).all())
    assert days == expected and len(expected) >= 36


async def test_load_holidays_command(database_url: str, test_database: TestDatabase, tmp_path: Path) -> None:
    common = {"database_url": database_url, "schema": test_database.schema, "var_dir": tmp_path}
    code, out, err = await run_cli(["load-holidays", "--year", "2028", "--year", "2029"], **common)
    assert code == 0, err
    assert "added 38 holidays to tenant default" in out
    code, out, err = await run_cli(["load-holidays", "--year", "2028"], **common)
    assert code == 0, err
    assert "added 0 holidays to tenant default" in out

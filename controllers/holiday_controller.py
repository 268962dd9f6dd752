"""Tenant holidays: the non-business days that legal deadlines (the PQR answer term) skip."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import DomainValidationError, FieldError
from domain.country_packs import UnknownCountry, country_pack
from models.pqr_model import TenantHoliday

# Wide enough for any business-day term we compute (60 business days span well under a year).
LOOKAHEAD = timedelta(days=366)


async def holidays_between(*, session: AsyncSession, tenant_id: int, start: date, end: date) -> frozenset[date]:
    """The tenant's holidays from `start` to `end`, both included."""
    days = await session.scalars(
        select(TenantHoliday.day).where(
            TenantHoliday.tenant_id == tenant_id, TenantHoliday.day >= start, TenantHoliday.day <= end
        )
    )
    return frozenset(days.all())


async def holidays_after(*, session: AsyncSession, tenant_id: int, start: date) -> frozenset[date]:
    """The tenant's holidays in the year after `start`: enough to count any legal term from it."""
    return await holidays_between(session=session, tenant_id=tenant_id, start=start, end=start + LOOKAHEAD)


async def add_holidays(*, session: AsyncSession, tenant_id: int, holidays: Iterable[tuple[date, str]]) -> int:
    """Insert the holidays the tenant does not have yet (idempotent); returns how many were added."""
    wanted = dict(holidays)
    if not wanted:
        return 0
    existing = set(
        (
            await session.scalars(
                select(TenantHoliday.day).where(TenantHoliday.tenant_id == tenant_id, TenantHoliday.day.in_(wanted))
            )
        ).all()
    )
    rows = [{"tenant_id": tenant_id, "day": d, "name": n} for d, n in sorted(wanted.items()) if d not in existing]
    if rows:
        await session.execute(insert(TenantHoliday), rows)
    return len(rows)


async def load_country_holidays(*, session: AsyncSession, tenant_id: int, country: str, years: Iterable[int]) -> int:
    """Add a country's public holidays (from its country pack) for `years` to the tenant and commit; returns how many were new."""
    try:
        pack = country_pack(country)
    except UnknownCountry as exc:
        raise DomainValidationError(
            "There is no holiday calendar for the tenant's country; add its holidays by hand.",
            code="holiday_calendar_unknown",
            errors=[FieldError("country", str(exc), "holiday_calendar_unknown")],
        ) from None
    added = 0
    for year in years:
        added += await add_holidays(session=session, tenant_id=tenant_id, holidays=pack.holidays(year))
    await session.commit()
    return added

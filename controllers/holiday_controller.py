"""Tenant holidays: the non-business days that legal deadlines (the PQR answer term) skip."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from domain.country_packs import UnknownCountry, country_pack
from models.pqr_model import TenantHoliday

# Wide enough for any business-day term we compute (60 business days span well under a year).
LOOKAHEAD = timedelta(days=366)
# The years a tenant's calendar may hold: those the `holidays` package covers (CLI and API alike).
FIRST_YEAR, LAST_YEAR = 1950, 2100


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


async def list_holidays(*, session: AsyncSession, tenant_id: int, year: int) -> list[TenantHoliday]:
    """The tenant's holidays of one year, in date order."""
    rows = await session.scalars(
        select(TenantHoliday)
        .where(TenantHoliday.tenant_id == tenant_id, TenantHoliday.day >= date(year, 1, 1), TenantHoliday.day <= date(year, 12, 31))
        .order_by(TenantHoliday.day)
    )
    return list(rows.all())


def _check_year(day: date) -> None:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise DomainValidationError(
            f"Holidays are kept for the years {FIRST_YEAR} to {LAST_YEAR}.",
            code="validation_error",
            errors=[FieldError("day", f"a date from {FIRST_YEAR} to {LAST_YEAR}", "out_of_range")],
        )


async def add_holiday(*, session: AsyncSession, tenant_id: int, day: date, name: str) -> TenantHoliday:
    """Add one holiday (a local one the country pack lacks, a decreed day off) and commit; 409 if the day is one."""
    _check_year(day)
    try:
        added = await add_holidays(session=session, tenant_id=tenant_id, holidays=[(day, name)])
        await session.commit()
    except IntegrityError:  # another admin added the same day meanwhile
        await session.rollback()
        added = 0
    if not added:
        raise Conflict("That day is already a holiday of the tenant.", code="holiday_exists")
    holiday = await session.scalar(select(TenantHoliday).where(TenantHoliday.tenant_id == tenant_id, TenantHoliday.day == day))
    assert holiday is not None
    return holiday


async def remove_holiday(*, session: AsyncSession, tenant_id: int, day: date) -> None:
    """Make a day a business day again and commit; deadlines already computed keep their dates."""
    removed = await session.execute(
        delete(TenantHoliday).where(TenantHoliday.tenant_id == tenant_id, TenantHoliday.day == day).execution_options(synchronize_session=False)
    )
    if removed.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise NotFound("That day is not a holiday of the tenant.", code="holiday_not_found")
    await session.commit()

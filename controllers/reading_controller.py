"""Meter readings: record one per meter and period, correct with history, list newest first.

Rules (domain/readings.py holds the arithmetic):
- The previous register value is the latest reading of an earlier period, or the meter's initial value.
- A decrease that is not a plausible rollover is refused (`register_decreased`) unless the reading is
  recorded with `kind: "corrected"` or through a correction; then its consumption is zero.
- VEE flags compare with the last up to 6 `actual` consumptions of the meter before the period.
- Consumption is a difference of registers, so recording or correcting a reading also recomputes the
  consumption and flags of the meter's next reading, if there is one.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import tenant_today, to_scale
from controllers.contract_controller import get_customer_contract
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.list_ordering import paginate_ordered
from controllers.pagination import Page, SortKey
from domain.period import Period
from domain.readings import (
    EXISTS_MESSAGE,
    HISTORY_PERIODS,
    ReadingRejected,
    RegisterDecreased,
    check_new_reading,
    check_read_on,
    check_value,
    decrease_message,
    evaluate_reading,
    next_lower_message,
)
from models.account_model import Contract, Meter, Reading, ReadingCorrection
from models.tenant_model import Tenant

NEWEST_FIRST = [SortKey(Reading.period, descending=True), SortKey(Reading.id, descending=True)]


def _invalid(field: str, code: str, message: str) -> DomainValidationError:
    return DomainValidationError(message, code=code, errors=[FieldError(field, message, code)])


def rejection_error(exc: ReadingRejected) -> DomainValidationError | Conflict:
    """The API error of a rule a reading breaks: a conflict with the meter's state, or invalid input."""
    if exc.code == "meter_retired":
        return Conflict(exc.message, code=exc.code)
    return _invalid(exc.field, exc.code, exc.message)


def _reading_exists() -> Conflict:
    return Conflict(
        EXISTS_MESSAGE,
        code="reading_exists",
        errors=[FieldError("period", "already read", "reading_exists")],
    )


async def _meter(session: AsyncSession, tenant: Tenant, meter_id: int) -> Meter:
    meter = await session.scalar(select(Meter).where(Meter.id == meter_id, Meter.tenant_id == tenant.id))
    if meter is None:
        raise NotFound("No such meter.")
    return meter


async def _previous_value(session: AsyncSession, meter: Meter, period: str) -> Decimal:
    value = await session.scalar(
        select(Reading.value)
        .where(Reading.meter_id == meter.id, Reading.period < period)
        .order_by(Reading.period.desc())
        .limit(1)
    )
    return meter.initial_value if value is None else value


async def _history(session: AsyncSession, meter_id: int, period: str) -> list[Decimal]:
    """The last up to 6 actual consumptions before `period`, newest first."""
    rows = await session.scalars(
        select(Reading.consumption)
        .where(Reading.meter_id == meter_id, Reading.period < period, Reading.kind == "actual")
        .order_by(Reading.period.desc())
        .limit(HISTORY_PERIODS)
    )
    return list(rows.all())


async def _evaluate(
    session: AsyncSession, meter: Meter, *, period: str, previous: Decimal, value: Decimal, allow_decrease: bool
) -> tuple[Decimal, str]:
    """Consumption and stored flags of `value` after `previous`; RegisterDecreased for an implausible drop."""
    return evaluate_reading(
        previous=previous,
        value=value,
        register_digits=meter.register_digits,
        multiplier=meter.multiplier,
        history=await _history(session, meter.id, period),
        allow_decrease=allow_decrease,
    )


async def _recompute_next(session: AsyncSession, meter: Meter, reading: Reading) -> None:
    """Bring the meter's next reading in line with this one's register value."""
    following = await session.scalar(
        select(Reading).where(Reading.meter_id == meter.id, Reading.period > reading.period).order_by(Reading.period).limit(1)
    )
    if following is None:
        return
    try:
        following.consumption, following.flags = await _evaluate(
            session,
            meter,
            period=following.period,
            previous=reading.value,
            value=following.value,
            # A corrected next reading was already accepted below its predecessor by an operator.
            allow_decrease=following.kind == "corrected",
        )
    except RegisterDecreased as exc:
        raise _invalid("value", "register_decreased", next_lower_message(following.period, following.value)) from exc


async def _recompute_next_or_roll_back(session: AsyncSession, meter: Meter, reading: Reading) -> None:
    try:
        await _recompute_next(session, meter, reading)
    except DomainValidationError:
        await session.rollback()
        raise


async def record_reading(
    *,
    session: AsyncSession,
    tenant: Tenant,
    meter_id: int,
    period: str,
    value: Decimal,
    read_on: date | None = None,
    kind: str = "actual",
    today: date | None = None,
) -> Reading:
    """Record a meter's register for a period, with its consumption and VEE flags."""
    meter = await _meter(session, tenant, meter_id)
    value = to_scale(value, 3)
    today = today or tenant_today(tenant)
    try:
        check_new_reading(
            period=period, value=value, read_on=read_on, today=today, installed_on=meter.installed_on,
            register_digits=meter.register_digits, status=meter.status,
        )
    except ReadingRejected as exc:
        raise rejection_error(exc) from exc
    exists = await session.scalar(select(Reading.id).where(Reading.meter_id == meter.id, Reading.period == period))
    if exists is not None:
        raise _reading_exists()
    previous = await _previous_value(session, meter, period)
    try:
        consumption, flags = await _evaluate(
            session, meter, period=period, previous=previous, value=value, allow_decrease=kind == "corrected"
        )
    except RegisterDecreased as exc:
        raise _invalid(
            "value",
            "register_decreased",
            decrease_message(previous, value) + '; send kind "corrected" if the lower value is right.',
        ) from exc
    reading = Reading(
        tenant_id=tenant.id,
        meter_id=meter.id,
        period=period,
        value=value,
        read_on=read_on,
        kind=kind,
        consumption=consumption,
        flags=flags,
    )
    session.add(reading)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request recorded the same period first
        await session.rollback()
        raise _reading_exists() from exc
    await _recompute_next_or_roll_back(session, meter, reading)
    await session.commit()
    return reading


async def get_reading(*, session: AsyncSession, tenant: Tenant, reading_id: int) -> Reading:
    """One reading of the tenant; 404 otherwise."""
    reading = await session.scalar(select(Reading).where(Reading.id == reading_id, Reading.tenant_id == tenant.id))
    if reading is None:
        raise NotFound("No such reading.")
    return reading


async def correct_reading(
    *,
    session: AsyncSession,
    tenant: Tenant,
    reading_id: int,
    value: Decimal,
    read_on: date | None = None,
    reason: str = "",
    user_id: int | None = None,
    today: date | None = None,
) -> Reading:
    """Replace a reading's value, keeping the old one in history; the next reading is recomputed too."""
    reading = await get_reading(session=session, tenant=tenant, reading_id=reading_id)
    meter = await _meter(session, tenant, reading.meter_id)
    value = to_scale(value, 3)
    try:
        check_value(value, register_digits=meter.register_digits)
        check_read_on(read_on, Period.parse(reading.period), today=today or tenant_today(tenant))
    except ReadingRejected as exc:
        raise rejection_error(exc) from exc
    session.add(
        ReadingCorrection(
            tenant_id=tenant.id,
            reading_id=reading.id,
            previous_value=reading.value,
            previous_kind=reading.kind,
            previous_consumption=reading.consumption,
            previous_flags=reading.flags,
            new_value=value,
            reason=reason,
            corrected_by=user_id,
        )
    )
    previous = await _previous_value(session, meter, reading.period)
    reading.consumption, reading.flags = await _evaluate(
        session, meter, period=reading.period, previous=previous, value=value, allow_decrease=True
    )
    reading.value = value
    reading.kind = "corrected"
    if read_on is not None:
        reading.read_on = read_on
    await session.flush()
    await _recompute_next_or_roll_back(session, meter, reading)
    await session.commit()
    return reading


async def list_readings(
    *, session: AsyncSession, tenant: Tenant, meter_id: int, limit: int = 50, cursor: str | None = None
) -> Page[Reading]:
    """A meter's readings, newest period first."""
    meter = await _meter(session, tenant, meter_id)
    stmt = select(Reading).where(Reading.meter_id == meter.id, Reading.tenant_id == tenant.id)
    return await paginate_ordered(session, stmt, keys=NEWEST_FIRST, limit=limit, cursor=cursor)


async def review_queue(
    *,
    session: AsyncSession,
    tenant: Tenant,
    period: str | None = None,
    flag: str | None = None,
    service: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Reading]:
    """Flagged readings across meters (one flag, or any), by period and service, newest period first."""
    stmt = select(Reading).where(Reading.tenant_id == tenant.id)
    if flag:
        # Flags are stored comma-separated: match the whole word wherever it sits.
        stmt = stmt.where(
            or_(
                Reading.flags == flag,
                Reading.flags.like(f"{flag},%"),
                Reading.flags.like(f"%,{flag}"),
                Reading.flags.like(f"%,{flag},%"),
            )
        )
    else:
        stmt = stmt.where(Reading.flags != "")
    if period:
        stmt = stmt.where(Reading.period == period)
    if service:
        stmt = stmt.where(
            Reading.meter_id.in_(
                select(Meter.id)
                .join(Contract, Contract.id == Meter.contract_id)
                .where(Meter.tenant_id == tenant.id, Contract.service == service)
            )
        )
    return await paginate_ordered(session, stmt, keys=NEWEST_FIRST, limit=limit, cursor=cursor)


async def list_corrections(*, session: AsyncSession, tenant: Tenant, reading_id: int) -> list[ReadingCorrection]:
    """A reading's correction history, oldest first."""
    reading = await get_reading(session=session, tenant=tenant, reading_id=reading_id)
    rows = await session.scalars(
        select(ReadingCorrection)
        .where(ReadingCorrection.reading_id == reading.id, ReadingCorrection.tenant_id == tenant.id)
        .order_by(ReadingCorrection.corrected_at, ReadingCorrection.id)
    )
    return list(rows.all())


async def list_customer_contract_readings(
    *,
    session: AsyncSession,
    tenant: Tenant,
    customer_id: int | None,
    contract_id: int,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Reading]:
    """The readings of every meter of one of the customer's own contracts, newest period first."""
    contract = await get_customer_contract(
        session=session, tenant=tenant, customer_id=customer_id, contract_id=contract_id
    )
    stmt = (
        select(Reading)
        .join(Meter, Meter.id == Reading.meter_id)
        .where(Meter.contract_id == contract.id, Reading.tenant_id == tenant.id)
    )
    return await paginate_ordered(session, stmt, keys=NEWEST_FIRST, limit=limit, cursor=cursor)

"""Reading rules through the controller: previous value, rollover, VEE history, corrections and the next reading."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import reading_controller
from controllers.errors import Conflict, DomainValidationError, NotFound
from models.account_model import Meter, Reading, ReadingCorrection
from models.tenant_model import Tenant
from tests.factories import make_contract, make_customer, make_meter, make_reading

TODAY = date(2026, 11, 23)


async def _meter(session: AsyncSession, tenant: Tenant, **fields: object) -> Meter:
    customer = await make_customer(session, tenant)
    contract = await make_contract(session, customer)
    meter = await make_meter(session, contract, **fields)
    await session.commit()
    return meter


async def _record(session: AsyncSession, tenant: Tenant, meter: Meter, period: str, value: str | int, **kw: object) -> Reading:
    return await reading_controller.record_reading(
        session=session, tenant=tenant, meter_id=meter.id, period=period, value=D(value), today=TODAY, **kw  # type: ignore[arg-type]
    )


async def test_first_reading_uses_the_initial_value_and_multiplier(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant, initial_value=D(1000), multiplier=D(10))
    reading = await _record(session, tenant, meter, "2026-01", "1015.5")
    assert (reading.consumption, reading.flags, reading.kind) == (D("155.000"), "", "actual")


async def test_previous_is_the_latest_earlier_period_even_with_a_gap(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant, initial_value=D(0))
    await _record(session, tenant, meter, "2026-01", 100)
    reading = await _record(session, tenant, meter, "2026-04", 460)
    assert reading.consumption == D("360.000")


async def test_rollover_consumption_follows_domain_md(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant, register_digits=5, initial_value=D(99800))
    await _record(session, tenant, meter, "2026-01", 99950)
    reading = await _record(session, tenant, meter, "2026-02", 120)
    # current + 10^d - previous = 120 + 100000 - 99950
    assert reading.consumption == D("170.000")
    assert reading.flags == "rollover"


async def test_implausible_decrease_is_refused_unless_marked_corrected(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    await _record(session, tenant, meter, "2026-01", 5000)
    with pytest.raises(DomainValidationError) as refused:
        await _record(session, tenant, meter, "2026-02", 4000)
    assert refused.value.code == "register_decreased"
    assert refused.value.errors[0].field == "value"
    reading = await _record(session, tenant, meter, "2026-02", 4000, kind="corrected")
    assert (reading.kind, reading.consumption, reading.flags) == ("corrected", D("0.000"), "zero")


async def test_duplicate_period_is_a_conflict(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    await _record(session, tenant, meter, "2026-01", 10)
    with pytest.raises(Conflict) as duplicate:
        await _record(session, tenant, meter, "2026-01", 20)
    assert duplicate.value.code == "reading_exists"


@pytest.mark.parametrize(
    ("period", "value", "read_on", "field", "code"),
    [
        ("2026-13", 10, None, "period", "invalid_period"),
        ("2026-12", 10, None, "period", "period_in_future"),
        ("2024-12", 10, None, "period", "period_before_installation"),
        ("2026-01", -1, None, "value", "negative_value"),
        ("2026-01", 100000, None, "value", "value_exceeds_register"),
        ("2026-01", 10, date(2025, 12, 31), "read_on", "invalid_read_on"),
        ("2026-01", 10, date(2026, 11, 24), "read_on", "invalid_read_on"),
    ],
)
async def test_bad_readings_are_422_naming_the_field(
    session: AsyncSession, tenant: Tenant, period: str, value: int, read_on: date | None, field: str, code: str
) -> None:
    meter = await _meter(session, tenant, installed_on=date(2025, 1, 15))
    with pytest.raises(DomainValidationError) as refused:
        await _record(session, tenant, meter, period, value, read_on=read_on)
    assert refused.value.code == code
    assert refused.value.errors[0].field == field


async def test_read_on_in_the_following_month_is_fine(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    reading = await _record(session, tenant, meter, "2026-10", 10, read_on=date(2026, 11, 2))
    assert reading.read_on == date(2026, 11, 2)


async def test_retired_meter_takes_no_readings(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant, status="retired")
    with pytest.raises(Conflict) as refused:
        await _record(session, tenant, meter, "2026-01", 10)
    assert refused.value.code == "meter_retired"


async def test_high_low_and_zero_against_the_actual_history(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    value = 0
    for month in range(1, 7):
        value += 100
        await _record(session, tenant, meter, f"2026-{month:02d}", value)
    high = await _record(session, tenant, meter, "2026-07", value + 301)
    assert (high.consumption, high.flags) == (D("301.000"), "high")
    other = await _meter(session, tenant)
    for month in range(1, 7):
        await make_reading(session, other, f"2026-{month:02d}", month * 100, 100)
    await session.commit()
    low = await _record(session, tenant, other, "2026-07", 629)
    assert (low.consumption, low.flags) == (D("29.000"), "low")
    zero = await _record(session, tenant, other, "2026-08", 629)
    assert zero.flags == "zero"


async def test_history_counts_only_actual_readings_and_the_last_six(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    # An old huge period (7 back) and an estimated spike must not lift the average of 100.
    await make_reading(session, meter, "2026-01", 10000, 10000)
    value = 10000
    for month in range(2, 8):
        value += 100
        await make_reading(session, meter, f"2026-{month:02d}", value, 100)
    value += 5000
    await make_reading(session, meter, "2026-08", value, 5000, kind="estimated")
    await session.commit()
    reading = await _record(session, tenant, meter, "2026-09", value + 350)
    assert (reading.consumption, reading.flags) == (D("350.000"), "high")


async def test_no_history_gives_no_high_or_low(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    reading = await _record(session, tenant, meter, "2026-01", 99999)
    assert reading.flags == ""


async def test_backdated_reading_recomputes_the_next_one(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    await _record(session, tenant, meter, "2026-01", 100)
    march = await _record(session, tenant, meter, "2026-03", 300)
    assert march.consumption == D("200.000")
    await _record(session, tenant, meter, "2026-02", 180)
    await session.refresh(march)
    assert march.consumption == D("120.000")


async def test_backdated_reading_above_the_next_is_refused(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    meter_id = meter.id
    await _record(session, tenant, meter, "2026-03", 300)
    with pytest.raises(DomainValidationError) as refused:
        await _record(session, tenant, meter, "2026-02", 400)
    assert refused.value.code == "register_decreased"
    periods = (await session.scalars(select(Reading.period).where(Reading.meter_id == meter_id))).all()
    assert periods == ["2026-03"]


async def test_correction_keeps_history_and_recomputes_the_next_reading(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    await _record(session, tenant, meter, "2026-01", 100)
    february = await _record(session, tenant, meter, "2026-02", 900)
    march = await _record(session, tenant, meter, "2026-03", 1000)
    assert (february.consumption, march.consumption) == (D("800.000"), D("100.000"))

    corrected = await reading_controller.correct_reading(
        session=session, tenant=tenant, reading_id=february.id, value=D(200), reason="typo", today=TODAY
    )
    assert (corrected.value, corrected.kind, corrected.consumption) == (D(200), "corrected", D("100.000"))
    await session.refresh(march)
    assert march.consumption == D("800.000")
    history = await reading_controller.list_corrections(session=session, tenant=tenant, reading_id=february.id)
    assert [(h.previous_value, h.previous_kind, h.previous_consumption, h.new_value, h.reason) for h in history] == [
        (D("900.000"), "actual", D("800.000"), D("200.000"), "typo")
    ]


async def test_correction_may_go_below_the_previous_register(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    await _record(session, tenant, meter, "2026-01", 5000)
    february = await _record(session, tenant, meter, "2026-02", 5100)
    corrected = await reading_controller.correct_reading(
        session=session, tenant=tenant, reading_id=february.id, value=D(4000), today=TODAY
    )
    assert (corrected.consumption, corrected.flags) == (D("0.000"), "zero")


async def test_correction_that_breaks_the_next_reading_changes_nothing(session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    await _record(session, tenant, meter, "2026-01", 100)
    february = await _record(session, tenant, meter, "2026-02", 200)
    await _record(session, tenant, meter, "2026-03", 300)
    february_id = february.id
    with pytest.raises(DomainValidationError) as refused:
        await reading_controller.correct_reading(
            session=session, tenant=tenant, reading_id=february_id, value=D(5000), today=TODAY
        )
    assert refused.value.code == "register_decreased"
    stored = await session.get(Reading, february_id, populate_existing=True)
    assert stored is not None and (stored.value, stored.kind) == (D("200.000"), "actual")
    assert await session.scalar(select(ReadingCorrection.id)) is None


async def test_readings_of_another_tenant_are_not_found(session: AsyncSession, tenant: Tenant) -> None:
    other = Tenant(code="other", name="Otra", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000001")
    session.add(other)
    await session.commit()
    meter = await _meter(session, tenant)
    reading = await _record(session, tenant, meter, "2026-01", 10)
    with pytest.raises(NotFound):
        await reading_controller.list_readings(session=session, tenant=other, meter_id=meter.id)
    with pytest.raises(NotFound):
        await reading_controller.correct_reading(session=session, tenant=other, reading_id=reading.id, value=D(5))

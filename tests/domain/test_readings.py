"""Reading rules: consumption, rollover, VEE flags and estimation (DOMAIN.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from domain.period import Period
from domain.readings import (
    RegisterDecreased,
    compute_consumption,
    estimate_reading,
    join_flags,
    split_flags,
    vee_flags,
)


@pytest.mark.parametrize(
    ("previous", "current", "digits", "multiplier", "expected", "rolled"),
    [
        (D(1000), D(1150), 5, D(1), D("150.000"), False),
        (D(1000), D(1000), 5, D(1), D("0.000"), False),
        (D("1000.5"), D("1010.25"), 5, D(10), D("97.500"), False),
        (D(99950), D(30), 5, D(1), D("80.000"), True),  # 30 + 100000 - 99950
        (D(9990), D(5), 4, D(2), D("30.000"), True),  # (5 + 10000 - 9990) x 2
        (D(60000), D(9999), 5, D(1), D("49999.000"), True),  # just under half the range
    ],
)
def test_consumption(previous: D, current: D, digits: int, multiplier: D, expected: D, rolled: bool) -> None:
    result = compute_consumption(previous=previous, current=current, register_digits=digits, multiplier=multiplier)
    assert result.quantity == expected
    assert result.rolled_over is rolled


@pytest.mark.parametrize(("previous", "current"), [(D(500), D(400)), (D(50000), D(0))])
def test_implausible_decrease_is_refused(previous: D, current: D) -> None:
    with pytest.raises(RegisterDecreased):
        compute_consumption(previous=previous, current=current, register_digits=5)


def test_correction_may_decrease_with_zero_consumption() -> None:
    result = compute_consumption(previous=D(500), current=D(400), register_digits=5, allow_decrease=True)
    assert result.quantity == D("0.000") and result.rolled_over is False


def test_negative_values_are_refused() -> None:
    with pytest.raises(ValueError):
        compute_consumption(previous=D(0), current=D(-1), register_digits=5)


AVG_100 = [D(100)] * 6


@pytest.mark.parametrize(
    ("consumption", "history", "rolled", "expected"),
    [
        (D(100), AVG_100, False, []),
        (D(300), AVG_100, False, []),  # exactly 3x is not above it
        (D("300.001"), AVG_100, False, ["high"]),
        (D(30), AVG_100, False, []),  # exactly 0.3x is not below it
        (D("29.999"), AVG_100, False, ["low"]),
        (D(0), AVG_100, False, ["zero"]),
        (D(0), [], False, ["zero"]),
        (D(500), [], False, []),
        (D(80), AVG_100, True, ["rollover"]),
        (D(900), AVG_100, True, ["rollover", "high"]),
        (D(100), [D(10), D(20), D(30), D(40), D(50), D(60), D(10_000)], False, []),  # only the last 6 count
        (D(500), [D(0)] * 3, False, []),  # an average of zero flags nothing but zero itself
    ],
)
def test_vee_flags(consumption: D, history: list[D], rolled: bool, expected: list[str]) -> None:
    assert vee_flags(consumption=consumption, history=history, rolled_over=rolled) == expected


def test_flags_round_trip_in_fixed_order() -> None:
    assert join_flags(["zero", "rollover"]) == "rollover,zero"
    assert split_flags("rollover,zero") == ["rollover", "zero"]
    assert split_flags("") == [] and split_flags(None) == []


def test_estimate_uses_average_daily_consumption_of_actual_periods() -> None:
    # 310 in October (31 days) and 300 in September (30 days): 10 a day; November has 30 days.
    estimate = estimate_reading(
        period="2026-11",
        previous_value=D(1000),
        history=[("2026-10", D(310)), ("2026-09", D(300))],
        register_digits=5,
    )
    assert estimate is not None
    assert estimate.consumption == D("300.000")
    assert estimate.value == D("1300.000")


def test_estimate_wraps_the_register_and_divides_by_multiplier() -> None:
    estimate = estimate_reading(
        period="2026-02", previous_value=D(9990), history=[("2026-01", D(62))], register_digits=4, multiplier=D(2)
    )
    assert estimate is not None
    assert estimate.consumption == D("56.000")  # 2 a day x 28 days
    assert estimate.value == D("18.000")  # 9990 + 28 wraps past 9999


def test_estimate_without_history_is_none() -> None:
    assert estimate_reading(period="2026-11", previous_value=D(0), history=[], register_digits=5) is None


def test_periods() -> None:
    assert Period.parse("2026-10") == Period(2026, 10)
    assert str(Period.parse("2026-01").previous()) == "2025-12"
    assert str(Period.parse("2025-12").next()) == "2026-01"
    assert Period.parse("2028-02").days == 29
    assert (Period.parse("2028-02").first_day, Period.parse("2028-02").last_day) == (date(2028, 2, 1), date(2028, 2, 29))
    assert Period.parse("2025-12") < Period.parse("2026-01") < Period.parse("2026-10")
    assert Period.parse("2026-10").has_started(date(2026, 10, 1)) and not Period.parse("2026-11").has_started(date(2026, 10, 31))
    for bad in ("2026-13", "2026-1", "26-10", "2026/10", "abcd-ef", "1999-12", "2026-00"):
        with pytest.raises(ValueError):
            Period.parse(bad)

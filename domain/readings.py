"""Meter reading rules: consumption with register rollover, VEE flags and estimation of a missing reading.

RULES (DOMAIN.md "Accounts, meters, readings", plus the choices written here):
- Consumption = (current - previous) x multiplier; the first period uses the meter's initial value.
- A register that went down rolled over when the meter has d digits and the rolled-over raw
  consumption (current + 10^d - previous) is less than half of the register's range (10^d / 2).
  Anything else is not a plausible rollover: the register decreased, which only a correction may do.
- VEE: compare with the average consumption of the last up to 6 actual periods. `high` above 3x
  the average, `low` below 0.3x the average, `zero` for zero consumption (a zero is not also
  `low`), `rollover` when the register rolled over. With no history only `zero` and `rollover` apply.
- Estimation: the average daily consumption of the last up to 6 actual periods (each period's
  consumption over the days of its month) times the days of the period being billed, rounded to
  the register's 3 decimals; the estimated register value is previous + consumption / multiplier,
  wrapped at 10^d.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from domain.period import Period

QUANTUM = Decimal("0.001")
HIGH_FACTOR = Decimal(3)
LOW_FACTOR = Decimal("0.3")
HISTORY_PERIODS = 6
FLAG_ORDER = ("rollover", "high", "low", "zero")


class RegisterDecreased(ValueError):
    """The register went down by more than a plausible rollover."""


class ReadingRejected(ValueError):
    """A new reading breaks a rule: a stable `code`, the `field` at fault and a message for people.

    The single reading route and the reading files both check through the functions below, so one
    rule gives one code whichever way the reading arrives.
    """

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


def check_period(period: str, *, today: date, installed_on: date) -> Period:
    """The period of a new reading: well formed, already begun, and not before the meter was installed."""
    try:
        parsed = Period.parse(period)
    except ValueError as exc:
        raise ReadingRejected("invalid_period", "period", "The period must be YYYY-MM.") from exc
    if not parsed.has_started(today):
        raise ReadingRejected("period_in_future", "period", "The period has not started yet.")
    if parsed < Period.containing(installed_on):
        raise ReadingRejected("period_before_installation", "period", "The meter was installed after that period.")
    return parsed


def check_value(value: Decimal, *, register_digits: int) -> None:
    """A register value is never negative and fits the meter's digits."""
    if value < 0:
        raise ReadingRejected("negative_value", "value", "A register value is never negative.")
    if value >= Decimal(10) ** register_digits:
        raise ReadingRejected(
            "value_exceeds_register", "value", f"A {register_digits}-digit register cannot show {value}."
        )


def check_read_on(read_on: date | None, period: Period, *, today: date) -> None:
    """A read date, when given, falls between the period's first day and today."""
    if read_on is not None and (read_on < period.first_day or read_on > today):
        raise ReadingRejected(
            "invalid_read_on", "read_on", "The read date must fall between the period's start and today."
        )


def check_active(status: str) -> None:
    """A retired meter takes no more readings."""
    if status != "active":
        raise ReadingRejected("meter_retired", "meter", "The meter is retired; it takes no more readings.")


def check_new_reading(
    *, period: str, value: Decimal, read_on: date | None, today: date, installed_on: date, register_digits: int,
    status: str,
) -> Period:
    """Every check of a new reading that needs no other reading, in the order the API reports them."""
    parsed = check_period(period, today=today, installed_on=installed_on)
    check_value(value, register_digits=register_digits)
    check_read_on(read_on, parsed, today=today)
    check_active(status)
    return parsed


EXISTS_MESSAGE = "The meter already has a reading for that period; correct it with PATCH /api/v1/readings/{id}."


def decrease_message(previous: Decimal, value: Decimal) -> str:
    """Why an implausible decrease is refused."""
    return f"The register went down from {previous} to {value}, which is not a plausible rollover"


def next_lower_message(next_period: str, next_value: Decimal) -> str:
    """Why a reading that would leave the meter's next reading below it is refused."""
    return f"The reading of {next_period} ({next_value}) would then be lower than this one; correct that one first."


@dataclass(frozen=True)
class Consumption:
    """The consumption of one reading and whether the register rolled over."""

    quantity: Decimal
    rolled_over: bool


def _q(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def compute_consumption(
    *, previous: Decimal, current: Decimal, register_digits: int, multiplier: Decimal = Decimal(1), allow_decrease: bool = False
) -> Consumption:
    """Consumption between two register values, detecting a rollover.

    With `allow_decrease` (an operator's correction) an implausible decrease is kept as zero
    consumption instead of raising, since the next reading restores the difference of registers.
    """
    if current < 0 or previous < 0:
        raise ValueError("register values are never negative")
    if current >= previous:
        return Consumption(_q((current - previous) * multiplier), False)
    span = Decimal(10) ** register_digits
    rolled = current + span - previous
    if rolled < span / 2:
        return Consumption(_q(rolled * multiplier), True)
    if allow_decrease:
        return Consumption(Decimal("0.000"), False)
    raise RegisterDecreased(
        f"the register went from {previous} down to {current}, which is not a plausible rollover "
        f"of a {register_digits}-digit meter"
    )


def vee_flags(*, consumption: Decimal, history: Sequence[Decimal], rolled_over: bool = False) -> list[str]:
    """Validation flags for a consumption, given up to the last 6 actual consumptions (newest first)."""
    flags: set[str] = set()
    if rolled_over:
        flags.add("rollover")
    if consumption == 0:
        flags.add("zero")
    recent = list(history)[:HISTORY_PERIODS]
    if recent:
        average = sum(recent, Decimal(0)) / len(recent)
        if average > 0:
            if consumption > HIGH_FACTOR * average:
                flags.add("high")
            elif consumption != 0 and consumption < LOW_FACTOR * average:
                flags.add("low")
    return [flag for flag in FLAG_ORDER if flag in flags]


def evaluate_reading(
    *,
    previous: Decimal,
    value: Decimal,
    register_digits: int,
    multiplier: Decimal,
    history: Sequence[Decimal],
    allow_decrease: bool = False,
) -> tuple[Decimal, str]:
    """Consumption and stored flags of `value` after `previous`; RegisterDecreased for an implausible drop."""
    result = compute_consumption(
        previous=previous,
        current=value,
        register_digits=register_digits,
        multiplier=multiplier,
        allow_decrease=allow_decrease,
    )
    flags = vee_flags(consumption=result.quantity, history=history, rolled_over=result.rolled_over)
    return result.quantity, join_flags(flags)


def join_flags(flags: Sequence[str]) -> str:
    """Flags as stored in the readings table (comma-separated, in a fixed order)."""
    return ",".join(flag for flag in FLAG_ORDER if flag in set(flags))


def split_flags(stored: str | None) -> list[str]:
    """Flags from their stored form."""
    return [flag for flag in (stored or "").split(",") if flag]


@dataclass(frozen=True)
class Estimate:
    """An estimated reading: its register value and consumption."""

    value: Decimal
    consumption: Decimal


def estimate_reading(
    *,
    period: str,
    previous_value: Decimal,
    history: Sequence[tuple[str, Decimal]],
    register_digits: int,
    multiplier: Decimal = Decimal(1),
) -> Estimate | None:
    """Estimate a missing reading from up to 6 actual (period, consumption) pairs, newest first.

    Returns None when there is no actual history to estimate from.
    """
    recent = list(history)[:HISTORY_PERIODS]
    if not recent:
        return None
    total_days = sum(Period.parse(p).days for p, _ in recent)
    total = sum((c for _, c in recent), Decimal(0))
    daily = total / Decimal(total_days)
    consumption = _q(daily * Period.parse(period).days)
    span = Decimal(10) ** register_digits
    value = _q(previous_value + consumption / multiplier) % span
    return Estimate(value=_q(value), consumption=consumption)

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
from decimal import ROUND_HALF_UP, Decimal

from domain.period import Period

QUANTUM = Decimal("0.001")
HIGH_FACTOR = Decimal(3)
LOW_FACTOR = Decimal("0.3")
HISTORY_PERIODS = 6
FLAG_ORDER = ("rollover", "high", "low", "zero")


class RegisterDecreased(ValueError):
    """The register went down by more than a plausible rollover."""


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

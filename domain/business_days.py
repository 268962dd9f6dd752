"""Business-day arithmetic for legal deadlines such as the PQR answer window."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta

_SATURDAY = 5


def is_business_day(d: date, holidays: Collection[date]) -> bool:
    """True when `d` is Monday to Friday and not in `holidays`."""
    return d.weekday() < _SATURDAY and d not in holidays


def add_business_days(start: date, days: int, holidays: Collection[date]) -> date:
    """The date `days` business days after `start`; day 1 is the first business day after `start`.

    The filing day itself never counts, even when it is a business day, because
    the legal term starts the day after filing; so a PQR filed on a Saturday or a
    holiday starts counting on the next business day. `days == 0` returns `start`.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    # A set makes the membership test O(1) whatever collection the caller passed.
    closed = holidays if isinstance(holidays, (set, frozenset)) else set(holidays)
    current = start
    counted = 0
    while counted < days:
        current += timedelta(days=1)
        if is_business_day(current, closed):
            counted += 1
    return current

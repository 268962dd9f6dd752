"""Billing periods: one calendar month, written `YYYY-MM` (readings, invoices and bill runs are per period)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

# The one spelling of a period, for request validation; `Period.parse` accepts exactly these.
PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
_PERIOD_RE = re.compile(PERIOD_PATTERN)
# Nothing was metered before the system existed; an earlier year is a typo.
_FIRST_YEAR = 2000


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """A calendar month; ordered in time, and `str()` gives its `YYYY-MM` text."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """The period `YYYY-MM` names; ValueError when malformed (month 1-12, year 2000 or later)."""
        if not isinstance(text, str) or not _PERIOD_RE.match(text) or int(text[:4]) < _FIRST_YEAR:
            raise ValueError(f"period must be YYYY-MM, got {text!r}")
        return cls(int(text[:4]), int(text[5:]))

    @classmethod
    def containing(cls, day: date) -> Period:
        """The period `day` falls in."""
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        """The period's first day."""
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        """The period's last day."""
        return date(self.year, self.month, self.days)

    @property
    def days(self) -> int:
        """How many days the period has."""
        return calendar.monthrange(self.year, self.month)[1]

    def previous(self) -> Period:
        """The month before."""
        return Period(self.year - 1, 12) if self.month == 1 else Period(self.year, self.month - 1)

    def next(self) -> Period:
        """The month after."""
        return Period(self.year + 1, 1) if self.month == 12 else Period(self.year, self.month + 1)

    def has_started(self, today: date) -> bool:
        """False for a future period: nothing can be read or billed for a month that has not begun."""
        return self <= Period.containing(today)

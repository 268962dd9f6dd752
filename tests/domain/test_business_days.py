"""Table-driven tests of business-day arithmetic and of the country packs' holiday calendars."""

from __future__ import annotations

from datetime import date

import pytest

from domain.business_days import add_business_days, is_business_day
from domain.country_packs import country_pack

COLOMBIA = country_pack("CO")
HOLIDAYS_2026 = frozenset(d for d, _ in COLOMBIA.holidays(2026))


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # Wed 2026-03-11 + 15: two weekends and San José (Mon 23 March) are skipped.
        (date(2026, 3, 11), 15, date(2026, 4, 6)),
        # The same window crossing Holy Week loses Thursday 2 and Friday 3 April too.
        (date(2026, 3, 20), 15, date(2026, 4, 15)),
        # Filed on a Saturday: day 1 is Monday.
        (date(2026, 2, 7), 1, date(2026, 2, 9)),
        (date(2026, 2, 7), 15, date(2026, 2, 27)),
        # Filed on a Sunday gives the same deadline as the Saturday before.
        (date(2026, 2, 8), 15, date(2026, 2, 27)),
        # Filed on a holiday (Mon 12 Jan, Reyes Magos): day 1 is Tuesday.
        (date(2026, 1, 12), 1, date(2026, 1, 13)),
        (date(2026, 1, 12), 15, date(2026, 2, 2)),
        # Filed on a Friday before a holiday Monday (Mon 20 Jul, Independencia).
        (date(2026, 7, 17), 1, date(2026, 7, 21)),
        # Christmas (Friday 25 Dec) is skipped.
        (date(2026, 12, 21), 5, date(2026, 12, 29)),
        # Zero days is the filing date itself, even on a weekend.
        (date(2026, 3, 11), 0, date(2026, 3, 11)),
        (date(2026, 2, 7), 0, date(2026, 2, 7)),
    ],
)
def test_add_business_days(start: date, days: int, expected: date) -> None:
    assert add_business_days(start, days, HOLIDAYS_2026) == expected


def test_add_business_days_without_holidays_only_skips_weekends() -> None:
    assert add_business_days(date(2026, 3, 20), 15, ()) == date(2026, 4, 10)


def test_add_business_days_accepts_any_collection() -> None:
    as_list = [d for d, _ in COLOMBIA.holidays(2026)]
    assert add_business_days(date(2026, 3, 11), 15, as_list) == date(2026, 4, 6)


def test_add_business_days_rejects_negative_days() -> None:
    with pytest.raises(ValueError):
        add_business_days(date(2026, 3, 11), -1, HOLIDAYS_2026)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 11), True),  # Wednesday
        (date(2026, 3, 14), False),  # Saturday
        (date(2026, 3, 15), False),  # Sunday
        (date(2026, 3, 23), False),  # Monday, San José moved
        (date(2026, 3, 19), True),  # San José's calendar date, a working Thursday
        (date(2026, 12, 8), False),  # Tuesday, Inmaculada Concepción
    ],
)
def test_is_business_day(day: date, expected: bool) -> None:
    assert is_business_day(day, HOLIDAYS_2026) is expected


@pytest.mark.parametrize(("year", "count"), [(2026, 19), (2027, 19)])
def test_colombia_has_its_legal_holidays_each_year(year: int, count: int) -> None:
    # 18 by Ley 51 de 1983, and from 2026 the Virgin of Chiquinquirá (9 July, moved to Monday).
    holidays = COLOMBIA.holidays(year)
    assert len(holidays) == count
    assert len({d for d, _ in holidays}) == count
    assert all(d.year == year for d, _ in holidays)
    assert holidays == sorted(holidays)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 1), date(2026, 1, 12), date(2026, 3, 23), date(2026, 4, 2), date(2026, 4, 3),
        date(2026, 5, 18), date(2026, 6, 8), date(2026, 6, 15), date(2026, 6, 29), date(2026, 7, 13),
        date(2026, 8, 17), date(2026, 11, 2), date(2026, 11, 16), date(2027, 1, 11), date(2027, 3, 22),
        date(2027, 3, 25), date(2027, 3, 26), date(2027, 5, 10), date(2027, 5, 31), date(2027, 6, 7),
        date(2027, 7, 5), date(2027, 10, 18), date(2027, 11, 15),
        # Fixed holidays stay put even on a Saturday.
        date(2027, 5, 1), date(2027, 8, 7), date(2027, 12, 25),
    ],
)
def test_specific_colombian_holidays(day: date) -> None:
    assert day in {d for d, _ in COLOMBIA.holidays(day.year)}


def test_colombian_holidays_are_named_in_spanish() -> None:
    assert (date(2026, 12, 25), "Navidad") in COLOMBIA.holidays(2026)


@pytest.mark.parametrize(
    ("country", "day", "name"),
    [
        ("CL", date(2026, 9, 18), "Día de la Independencia"),
        ("CL", date(2026, 5, 21), "Día de las Glorias Navales"),
        ("BR", date(2026, 9, 7), "Independência do Brasil"),
        ("BR", date(2026, 4, 21), "Tiradentes"),
    ],
)
def test_chile_and_brazil_have_their_holidays(country: str, day: date, name: str) -> None:
    assert (day, name) in country_pack(country).holidays(day.year)

"""Table-driven tests of business-day arithmetic and Colombia's holiday calendar."""

from __future__ import annotations

from datetime import date

import pytest

from domain.business_days import add_business_days, is_business_day
from domain.holidays_co import COLOMBIA_HOLIDAYS, colombia_holidays, easter_sunday, next_monday

HOLIDAYS_2026 = frozenset(d for d, _ in COLOMBIA_HOLIDAYS[2026])


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
    as_list = [d for d, _ in COLOMBIA_HOLIDAYS[2026]]
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


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


@pytest.mark.parametrize("year", [2026, 2027])
def test_colombia_has_18_distinct_holidays_a_year(year: int) -> None:
    holidays = COLOMBIA_HOLIDAYS[year]
    assert len(holidays) == 18
    assert len({d for d, _ in holidays}) == 18
    assert all(d.year == year for d, _ in holidays)
    assert holidays == sorted(holidays)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 1, 1), "Año Nuevo"),
        (date(2026, 1, 12), "Día de los Reyes Magos"),
        (date(2026, 3, 23), "Día de San José"),
        (date(2026, 4, 2), "Jueves Santo"),
        (date(2026, 4, 3), "Viernes Santo"),
        (date(2026, 5, 18), "Ascensión del Señor"),
        (date(2026, 6, 8), "Corpus Christi"),
        (date(2026, 6, 15), "Sagrado Corazón de Jesús"),
        (date(2026, 6, 29), "San Pedro y San Pablo"),
        (date(2026, 8, 17), "Asunción de la Virgen"),
        (date(2026, 11, 2), "Día de Todos los Santos"),
        (date(2026, 11, 16), "Independencia de Cartagena"),
        (date(2027, 1, 11), "Día de los Reyes Magos"),
        (date(2027, 3, 22), "Día de San José"),
        (date(2027, 3, 25), "Jueves Santo"),
        (date(2027, 3, 26), "Viernes Santo"),
        (date(2027, 5, 10), "Ascensión del Señor"),
        (date(2027, 5, 31), "Corpus Christi"),
        (date(2027, 6, 7), "Sagrado Corazón de Jesús"),
        (date(2027, 7, 5), "San Pedro y San Pablo"),
        (date(2027, 10, 18), "Día de la Raza"),
        (date(2027, 11, 15), "Independencia de Cartagena"),
        # Fixed holidays stay put even on a Saturday.
        (date(2027, 5, 1), "Día del Trabajo"),
        (date(2027, 8, 7), "Batalla de Boyacá"),
        (date(2027, 12, 25), "Navidad"),
    ],
)
def test_specific_holidays(day: date, name: str) -> None:
    assert (day, name) in COLOMBIA_HOLIDAYS[day.year]


def test_moved_holidays_fall_on_mondays() -> None:
    fixed = {"Año Nuevo", "Día del Trabajo", "Día de la Independencia", "Batalla de Boyacá",
             "Inmaculada Concepción", "Navidad", "Jueves Santo", "Viernes Santo"}
    for year in (2026, 2027):
        moved = [d for d, name in colombia_holidays(year) if name not in fixed]
        assert len(moved) == 10
        assert all(d.weekday() == 0 for d in moved)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 6, 29), date(2026, 6, 29)),
        (date(2026, 8, 15), date(2026, 8, 17)),
        (date(2026, 1, 6), date(2026, 1, 12)),
    ],
)
def test_next_monday(day: date, expected: date) -> None:
    assert next_monday(day) == expected

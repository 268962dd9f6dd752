"""Colombia's official public holidays (Ley 51 de 1983, "Ley Emiliani")."""

from __future__ import annotations

from datetime import date, timedelta

# Holidays that stay on their calendar date whatever the weekday.
_FIXED: tuple[tuple[int, int, str], ...] = (
    (1, 1, "Año Nuevo"),
    (5, 1, "Día del Trabajo"),
    (7, 20, "Día de la Independencia"),
    (8, 7, "Batalla de Boyacá"),
    (12, 8, "Inmaculada Concepción"),
    (12, 25, "Navidad"),
)

# Holidays that Ley Emiliani moves to the following Monday.
_MOVED_TO_MONDAY: tuple[tuple[int, int, str], ...] = (
    (1, 6, "Día de los Reyes Magos"),
    (3, 19, "Día de San José"),
    (6, 29, "San Pedro y San Pablo"),
    (8, 15, "Asunción de la Virgen"),
    (10, 12, "Día de la Raza"),
    (11, 1, "Día de Todos los Santos"),
    (11, 11, "Independencia de Cartagena"),
)

# Offsets from Easter Sunday; the last three already land on the moved Monday
# (Ascension +39, Corpus Christi +60 and Sacred Heart +68 are Thursdays/Fridays).
_EASTER_OFFSETS: tuple[tuple[int, str], ...] = (
    (-3, "Jueves Santo"),
    (-2, "Viernes Santo"),
    (43, "Ascensión del Señor"),
    (64, "Corpus Christi"),
    (71, "Sagrado Corazón de Jesús"),
)


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian / Meeus-Jones-Butcher algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def next_monday(d: date) -> date:
    """`d` itself when it is a Monday, otherwise the Monday after it."""
    return d + timedelta(days=(7 - d.weekday()) % 7)


def colombia_holidays(year: int) -> list[tuple[date, str]]:
    """Colombia's public holidays for `year`, sorted by date, with Spanish names."""
    easter = easter_sunday(year)
    holidays = [(date(year, m, d), name) for m, d, name in _FIXED]
    holidays += [(next_monday(date(year, m, d)), name) for m, d, name in _MOVED_TO_MONDAY]
    holidays += [(easter + timedelta(days=offset), name) for offset, name in _EASTER_OFFSETS]
    return sorted(holidays)


COLOMBIA_HOLIDAYS: dict[int, list[tuple[date, str]]] = {
    year: colombia_holidays(year) for year in (2026, 2027)
}

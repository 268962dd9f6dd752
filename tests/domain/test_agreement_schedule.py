"""The agreement schedule: exact amounts (every remainder on the last instalment) and due dates on business days."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.agreement_schedule import add_months, build_schedule, business_day_on_or_after, financing_of, split_evenly

# Monday 7 December 2026; 8 December is a Colombian holiday (Inmaculada Concepción).
SIGNED = date(2026, 12, 7)
HOLIDAYS = frozenset({date(2026, 12, 8), date(2026, 12, 25), date(2027, 1, 1), date(2027, 1, 11)})


def schedule(debt: str, down: str, count: int, rate: str = "0", currency: str = "COP"):
    return build_schedule(
        debt=Decimal(debt), down_payment=Decimal(down), instalment_count=count, monthly_rate=Decimal(rate),
        currency=currency, signed_on=SIGNED, holidays=HOLIDAYS,
    )


@pytest.mark.parametrize(
    ("debt", "down", "count", "rate", "currency"),
    [
        ("100000", "0", 7, "0", "COP"),
        ("100000", "15000", 7, "1.7", "COP"),
        ("99999", "1", 12, "2.35", "COP"),
        ("100000.00", "0.01", 7, "1.3333", "BRL"),
        ("1", "0", 1, "0", "CLP"),
        ("250000", "33333", 11, "0.9999", "CLP"),
    ],
)
def test_instalments_add_up_exactly_to_debt_plus_financing(debt, down, count, rate, currency):
    s = schedule(debt, down, count, rate, currency)

    assert sum(i.amount for i in s.instalments) == s.debt + s.financing == s.total
    assert sum(i.principal for i in s.instalments) == Decimal(debt)
    assert sum(i.financing for i in s.instalments) == s.financing
    assert len(s.instalments) == count + (1 if Decimal(down) > 0 else 0)


def test_100000_in_7_puts_the_remainder_on_the_last_instalment():
    s = schedule("100000", "0", 7)

    assert [i.amount for i in s.instalments] == [Decimal(14285)] * 6 + [Decimal(14290)]
    assert [i.number for i in s.instalments] == [1, 2, 3, 4, 5, 6, 7]


def test_simple_monthly_financing_on_the_balance_after_the_down_payment():
    s = schedule("100000", "20000", 7, "1.5")

    # 80 000 × 1.5 % × 7 months = 8 400, spread evenly.
    assert s.financing == Decimal(8400)
    assert (s.instalments[0].number, s.instalments[0].amount, s.instalments[0].financing) == (0, Decimal(20000), Decimal(0))
    assert [i.principal for i in s.instalments[1:]] == [Decimal(11428)] * 6 + [Decimal(11432)]
    assert {i.financing for i in s.instalments[1:]} == {Decimal(1200)}
    assert s.total == Decimal(108400)


def test_financing_rounds_once_at_the_currency():
    assert financing_of(Decimal("80000.00"), Decimal("1.3333"), 7, "BRL") == Decimal("7466.48")
    assert financing_of(Decimal(80001), Decimal("1.5"), 1, "COP") == Decimal(1200)
    assert split_evenly(Decimal("10.00"), 3, "BRL") == [Decimal("3.33"), Decimal("3.33"), Decimal("3.34")]


def test_due_dates_fall_on_business_days():
    s = schedule("100000", "10000", 3)

    # Down payment: 3 business days after Monday 7 Dec, the 8th a holiday: 9, 10, 11.
    assert s.instalments[0].due_on == date(2026, 12, 11)
    # 7 Jan 2027 is a Thursday; 7 Feb is a Sunday → Monday 8 Feb; 7 Mar a Sunday → Monday 8 Mar.
    assert [i.due_on for i in s.instalments[1:]] == [date(2027, 1, 7), date(2027, 2, 8), date(2027, 3, 8)]


def test_month_arithmetic_and_business_days():
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 13) == date(2028, 1, 15)
    assert business_day_on_or_after(date(2026, 12, 7), HOLIDAYS) == date(2026, 12, 7)
    assert business_day_on_or_after(date(2026, 12, 8), HOLIDAYS) == date(2026, 12, 9)
    assert business_day_on_or_after(date(2027, 1, 9), HOLIDAYS) == date(2027, 1, 12)  # Sat, Sun, holiday Monday


@pytest.mark.parametrize(("down", "count"), [("100000", 3), ("-1", 3), ("0", 0)])
def test_impossible_terms_are_refused(down, count):
    with pytest.raises(ValueError):
        schedule("100000", down, count)

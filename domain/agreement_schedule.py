"""The schedule of a payment agreement: exact instalment amounts and their due dates on business days (pure)."""

from __future__ import annotations

import calendar
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from domain.business_days import add_business_days
from domain.money import quantum, round_money

# The down payment falls due this many business days after signing: time to print the booklet and pay.
DOWN_PAYMENT_BUSINESS_DAYS = 3


@dataclass(frozen=True)
class ScheduledInstalment:
    """One instalment: number 0 is the down payment; `amount` = `principal` + `financing`."""

    number: int
    principal: Decimal
    financing: Decimal
    due_on: date

    @property
    def amount(self) -> Decimal:
        """What the instalment's coupon charges (before any channel fee)."""
        return self.principal + self.financing


@dataclass(frozen=True)
class Schedule:
    """The agreement's figures and its instalments; the instalments add up to `total` exactly."""

    debt: Decimal
    down_payment: Decimal
    financing: Decimal
    instalments: tuple[ScheduledInstalment, ...]

    @property
    def total(self) -> Decimal:
        """The debt plus the financing."""
        return self.debt + self.financing


def financing_of(balance: Decimal, monthly_rate: Decimal, months: int, currency: str) -> Decimal:
    """Simple interest: the balance after the down payment × the monthly rate (percent) × the months, rounded once."""
    return round_money(balance * monthly_rate / 100 * months, currency)


def split_evenly(amount: Decimal, parts: int, currency: str) -> list[Decimal]:
    """`amount` in `parts` equal shares at the currency's minor unit, truncated; the remainder goes on the last one."""
    share = (amount / parts).quantize(quantum(currency), rounding=ROUND_DOWN)
    return [share] * (parts - 1) + [amount - share * (parts - 1)]


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, or that month's last day when it is shorter (31 Jan + 1 = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def business_day_on_or_after(day: date, holidays: Collection[date]) -> date:
    """`day` when it is a business day, else the next one."""
    return add_business_days(day - timedelta(days=1), 1, holidays)


def build_schedule(
    *,
    debt: Decimal,
    down_payment: Decimal,
    instalment_count: int,
    monthly_rate: Decimal,
    currency: str,
    signed_on: date,
    holidays: Collection[date],
) -> Schedule:
    """The down payment (instalment 0, omitted when zero) and `instalment_count` monthly instalments.

    The balance after the down payment and the financing are each split evenly, every rounding remainder
    on the last instalment, so the amounts add up to debt + financing exactly. The down payment is due
    DOWN_PAYMENT_BUSINESS_DAYS business days after signing; instalment k on the same day k months after
    signing, moved to the next business day when that is a weekend or one of the tenant's holidays.
    """
    if instalment_count < 1:
        raise ValueError("an agreement has at least one monthly instalment")
    if not Decimal(0) <= down_payment < debt:
        raise ValueError("the down payment must be at least zero and less than the debt")
    balance = debt - down_payment
    financing = financing_of(balance, monthly_rate, instalment_count, currency)
    instalments = []
    if down_payment > 0:
        due = add_business_days(signed_on, DOWN_PAYMENT_BUSINESS_DAYS, holidays)
        instalments.append(ScheduledInstalment(0, down_payment, Decimal(0), due))
    principals = split_evenly(balance, instalment_count, currency)
    interests = split_evenly(financing, instalment_count, currency)
    for k in range(1, instalment_count + 1):
        due = business_day_on_or_after(add_months(signed_on, k), holidays)
        instalments.append(ScheduledInstalment(k, principals[k - 1], interests[k - 1], due))
    return Schedule(debt=debt, down_payment=down_payment, financing=financing, instalments=tuple(instalments))

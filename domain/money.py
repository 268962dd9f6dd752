"""Money rules shared by every layer: each currency's minor unit and the one way amounts are rounded to it."""

from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import TypeVar

T = TypeVar("T")

# Decimal places of each supported currency's minor unit; CLP and COP are billed in whole pesos.
MINOR_UNITS: Mapping[str, int] = MappingProxyType({"CLP": 0, "COP": 0, "BRL": 2, "USD": 2})

_QUANTA: Mapping[str, Decimal] = MappingProxyType(
    {currency: Decimal(1).scaleb(-places) for currency, places in MINOR_UNITS.items()}
)


def _half_up_to(step: Decimal) -> Callable[[Decimal], Decimal]:
    # Half-up (ties away from zero) because that is how utility bills and their regulators round
    # (DOMAIN.md), not banker's rounding.
    def rounded(amount: Decimal) -> Decimal:
        return amount.quantize(step, rounding=ROUND_HALF_UP)

    return rounded


# Each currency's rounding, built once: pages that round hundreds of amounts look it up once.
_ROUNDERS: Mapping[str, Callable[[Decimal], Decimal]] = MappingProxyType(
    {currency: _half_up_to(step) for currency, step in _QUANTA.items()}
)


def _of_currency(table: Mapping[str, T], currency: str) -> T:
    try:
        return table[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}") from None


def quantum(currency: str) -> Decimal:
    """The smallest amount of a currency (1 for CLP/COP, 0.01 for BRL/USD); an unknown currency is a ValueError."""
    return _of_currency(_QUANTA, currency)


def money_rounder(currency: str) -> Callable[[Decimal], Decimal]:
    """`round_money` for one currency, looked up once for many amounts; an unknown currency is a ValueError."""
    return _of_currency(_ROUNDERS, currency)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round an amount to the currency's minor unit, ties away from zero (ROUND_HALF_UP)."""
    return money_rounder(currency)(amount)

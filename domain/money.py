"""Money rules shared by every layer: each currency's minor unit and the one way amounts are rounded to it."""

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

# Decimal places of each supported currency's minor unit; CLP and COP are billed in whole pesos.
MINOR_UNITS: Mapping[str, int] = MappingProxyType({"CLP": 0, "COP": 0, "BRL": 2, "USD": 2})

_QUANTA: Mapping[str, Decimal] = MappingProxyType(
    {currency: Decimal(1).scaleb(-places) for currency, places in MINOR_UNITS.items()}
)


def quantum(currency: str) -> Decimal:
    """The smallest amount of a currency (1 for CLP/COP, 0.01 for BRL/USD); an unknown currency is a ValueError."""
    try:
        return _QUANTA[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}") from None


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round an amount to the currency's minor unit, ties away from zero (ROUND_HALF_UP)."""
    # Half-up because that is how utility bills and their regulators round (DOMAIN.md), not banker's rounding.
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)

"""Tests for locale-aware money and number formatting."""

from decimal import Decimal

import pytest

from domain.money_format import format_money, format_number, format_unit_price, language

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        # CLDR's es_CL and es_CO write the peso sign against the number.
        ("20870", "CLP", "es", "$20.870"),
        ("20870.45", "CLP", "es", "$20.870"),
        ("20870.5", "CLP", "es", "$20.871"),
        ("1234567", "COP", "es", "$1.234.567"),
        ("999", "COP", "es", "$999"),
        ("0", "COP", "es", "$0"),
        ("1520.5", "BRL", "pt", f"R${NBSP}1.520,50"),
        ("1520.505", "BRL", "pt", f"R${NBSP}1.520,51"),
        ("1520.5", "USD", "en", "$1,520.50"),
        # A reader of another language than the currency's sees its ISO code, with their own separators.
        ("1520.5", "USD", "es", f"USD{NBSP}1,520.50"),
        ("20870", "CLP", "en", f"CLP{NBSP}20,870"),
        ("629790", "COP", "en", f"COP{NBSP}629,790"),
        ("629790", "COP", "pt", f"COP{NBSP}629.790"),
        ("-1500", "COP", "es", "-$1.500"),
        ("-0.4", "CLP", "es", "$0"),
        ("-12.3", "BRL", "pt_BR", f"-R${NBSP}12,30"),
        ("10", "EUR", "es", f"EUR{NBSP}10,00"),
        ("10", "clp", "fr", "$10"),
    ],
)
def test_format_money(amount: str, currency: str, locale: str, expected: str) -> None:
    assert format_money(Decimal(amount), currency, locale) == expected


@pytest.mark.parametrize(
    ("value", "locale", "places", "expected"),
    [
        ("12345.600", "es", None, "12.345,6"),
        ("12345.600", "en", None, "12,345.6"),
        ("100", "es", None, "100"),
        ("1E+3", "es", None, "1.000"),
        ("0.123456", "es", None, "0,1235"),
        ("1234.5", "pt", 2, "1.234,50"),
        ("26839.533", "es", None, "26.839,533"),
        ("26839.533", "pt", None, "26.839,533"),
        ("26839.533", "en", None, "26,839.533"),
    ],
)
def test_format_number(value: str, locale: str, places: int | None, expected: str) -> None:
    assert format_number(Decimal(value), locale, places) == expected


def test_unit_price_keeps_tariff_decimals() -> None:
    assert format_unit_price(Decimal("160.55"), "CLP", "es") == "$160,55"
    assert format_unit_price(Decimal(160), "CLP", "es") == "$160"
    assert format_unit_price(Decimal("0.8"), "BRL", "pt") == f"R${NBSP}0,80"
    assert format_unit_price(Decimal("0.123456"), "USD", "en") == "$0.1235"


@pytest.mark.parametrize(
    ("locale", "expected"), [("es_CO", "es"), ("pt-BR", "pt"), ("EN", "en"), ("", "es"), ("fr", "es")]
)
def test_language(locale: str, expected: str) -> None:
    assert language(locale) == expected

"""Locale-aware formatting of money amounts and quantities for invoices, coupons and emails."""

from decimal import ROUND_HALF_UP, Decimal

from domain.money import MINOR_UNITS

# Printed symbol per ISO 4217 code; an unknown code prints as itself.
_SYMBOLS: dict[str, str] = {"CLP": "$", "COP": "$", "BRL": "R$", "USD": "US$"}
# Only for printing a currency the domain does not bill in: two places, as most currencies have.
_DEFAULT_PLACES = 2

# (thousands separator, decimal separator) per language. Spanish is the default.
_SEPARATORS: dict[str, tuple[str, str]] = {
    "es": (".", ","),
    "pt": (".", ","),
    "en": (",", "."),
}

_MAX_UNIT_PRICE_PLACES = 4


def language(locale: str) -> str:
    """Return the supported language ("es", "en" or "pt") for a locale such as "pt_BR", defaulting to "es"."""
    lang = (locale or "").replace("-", "_").split("_")[0].lower()
    return lang if lang in _SEPARATORS else "es"


def currency_places(currency: str) -> int:
    """Return the number of minor-unit decimal places used for a currency."""
    return MINOR_UNITS.get(currency.upper(), _DEFAULT_PLACES)


def format_number(value: Decimal, locale: str, places: int | None = None) -> str:
    """Format a decimal with the locale's separators; without places, trailing zeros are dropped."""
    if places is None:
        places = _significant_places(value, _MAX_UNIT_PRICE_PLACES)
    thousands, decimal_sep = _SEPARATORS[language(locale)]
    quantized = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if quantized < 0 else ""
    integer, _, fraction = f"{abs(quantized):f}".partition(".")
    grouped = _group_thousands(integer, thousands)
    return f"{sign}{grouped}{decimal_sep}{fraction}" if fraction else f"{sign}{grouped}"


def format_money(amount: Decimal, currency: str, locale: str, places: int | None = None) -> str:
    """Format an amount such as "$ 20.870" (CLP, es), "R$ 1.520,50" (BRL, pt) or "US$ 1,520.50" (USD, en)."""
    code = currency.upper()
    symbol = _SYMBOLS.get(code, code)
    if places is None:
        places = currency_places(code)
    number = format_number(amount, locale, places)
    if number.startswith("-"):
        return f"-{symbol} {number[1:]}"
    return f"{symbol} {number}"


def format_unit_price(amount: Decimal, currency: str, locale: str) -> str:
    """Format a per-unit tariff price, keeping up to 4 decimals so that it is not rounded to the minor unit."""
    minor = currency_places(currency)
    places = max(minor, _significant_places(amount, _MAX_UNIT_PRICE_PLACES))
    return format_money(amount, currency, locale, places=places)


def _significant_places(value: Decimal, limit: int) -> int:
    exponent = Decimal(value).normalize().as_tuple().exponent
    if not isinstance(exponent, int):
        return 0
    return min(max(-exponent, 0), limit)


def _group_thousands(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(groups)

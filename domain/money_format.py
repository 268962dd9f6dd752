"""The one money and number formatter (babel/CLDR) for PDFs and emails: tenant currency, reader's language."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_decimal, get_currency_precision

from domain.money import MINOR_UNITS

SUPPORTED_LANGUAGES = ("es", "en", "pt")
# Where a currency is at home: its country's conventions apply when the reader shares its language.
_CURRENCY_TERRITORY = {"CLP": "CL", "COP": "CO", "BRL": "BR", "USD": "US"}
# Readers of another language see the ISO code: "$" means dollars to an English reader.
_HOME_LANGUAGE = {"CLP": "es", "COP": "es", "BRL": "pt", "USD": "en"}
# A reader's language with no territory from the currency falls back to these regional variants.
_DEFAULT_TERRITORY = {"es": "CO", "en": "US", "pt": "BR"}
_FRACTION_IN_PATTERN = re.compile(r"\.[0#]+")
_CURRENCY_SIGN = re.compile(r"¤\s*")
_MAX_UNIT_PRICE_PLACES = 4


def language(locale: str) -> str:
    """Return the supported language ("es", "en" or "pt") for a locale such as "pt_BR", defaulting to "es"."""
    lang = (locale or "").replace("-", "_").split("_")[0].lower()
    return lang if lang in SUPPORTED_LANGUAGES else "es"


def currency_places(currency: str) -> int:
    """Return the number of minor-unit decimal places used for a currency."""
    code = currency.upper()
    # The domain's minor units first: CLDR still lists 2 decimals for COP.
    return MINOR_UNITS[code] if code in MINOR_UNITS else get_currency_precision(code)


@lru_cache(maxsize=64)
def reader_locale(lang: str, currency: str | None = None) -> Locale:
    """The CLDR locale for a reader: their language in the currency's country when CLDR has it (es_CL), else a default."""
    territory = _CURRENCY_TERRITORY.get((currency or "").upper())
    candidates = ([f"{lang}_{territory}"] if territory else []) + [f"{lang}_{_DEFAULT_TERRITORY[lang]}"]
    for identifier in candidates:
        try:
            return Locale.parse(identifier)
        except UnknownLocaleError:
            continue
    return Locale.parse(lang)


def format_money(amount: Decimal, currency: str, locale: str, places: int | None = None) -> str:
    """Format an amount, e.g. "$ 20.870" (COP, es), "R$ 1.520,50" (BRL, pt), "COP 20,870" (COP, en).

    Separators and layout follow the reader's language in the currency's country (CLDR); a reader
    whose language is not the currency's home language sees the ISO code, so "$" is never misread.
    """
    code = currency.upper()
    lang = language(locale)
    if places is None:
        places = currency_places(code)
    loc = reader_locale(lang, code)
    pattern = loc.currency_formats["standard"].pattern.split(";")[0]
    pattern = _FRACTION_IN_PATTERN.sub("." + "0" * places if places else "", pattern)
    if _HOME_LANGUAGE.get(code) != lang:
        pattern = _CURRENCY_SIGN.sub("¤¤\u00a0", pattern)
    quantized = Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) + 0
    return format_currency(quantized, code, format=pattern, locale=loc, currency_digits=False)


def format_number(value: Decimal, locale: str, places: int | None = None) -> str:
    """Format a quantity with the reader's separators; without places, trailing zeros are dropped (at most 4)."""
    if places is None:
        places = _significant_places(value, _MAX_UNIT_PRICE_PLACES)
    quantized = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) + 0
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(quantized, format=pattern, locale=reader_locale(language(locale)))


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

"""The one place for bounded request inputs: money, prices, rates, dates, ASCII digits, emails and names."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, PlainSerializer, StringConstraints

# App-wide ceilings (no tenant setting yet). A money field above 10^12 is a typo or an attack:
# no utility bills that much, and 50 invoices of this size plus a fee still fit a coupon's
# 15-digit barcode amount and the NUMERIC(18, 2) columns.
MAX_MONEY = Decimal(10) ** 12
MONEY_PLACES = 2  # the most minor units of any currency we bill in (see domain.money_format)
MAX_UNIT_PRICE = Decimal(10) ** 9
UNIT_PRICE_PLACES = 6  # NUMERIC(18, 6) on invoice lines
MAX_QUANTITY = Decimal(10) ** 12
QUANTITY_PLACES = 3
RATE_PLACES = 4  # percents and monthly rates: NUMERIC(7, 4)
FIRST_BUSINESS_DATE = date(2000, 1, 1)
LAST_BUSINESS_DATE = date(2100, 12, 31)

# Explicit bidi embeddings, overrides and isolates: they make "exe.txt" read as "txt.exe".
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _ascii_number(value: Any) -> Any:
    """Decimal("１２") is 12 to Python; refuse digits a bank file or a human would read differently."""
    if isinstance(value, str) and not value.isascii():
        raise ValueError("use ASCII digits (0-9) only")
    return value


def _safe_text(value: str) -> str:
    """No control characters (NUL, CR/LF, ...), no bidi controls and no digits other than 0-9."""
    for char in value:
        if char in BIDI_CONTROLS:
            raise ValueError("must not contain bidirectional control characters")
        category = unicodedata.category(char)
        if category == "Cc":
            raise ValueError("must not contain control characters")
        if category == "Nd" and not char.isascii():
            raise ValueError("use ASCII digits (0-9) only")
    return value


def _single_email(value: Any) -> Any:
    """One address, checked by email-validator: no lists, comments, quotes or header tricks."""
    if not isinstance(value, str):
        return value
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return checked.normalized


def _in_business_range(value: datetime) -> datetime:
    """Timestamps of business events fall between 2000 and 2100 (year 1 skips every expiry check)."""
    if not FIRST_BUSINESS_DATE <= value.date() <= LAST_BUSINESS_DATE:
        raise ValueError(f"must be between {FIRST_BUSINESS_DATE} and {LAST_BUSINESS_DATE}")
    return value


def plain_decimal(value: Decimal) -> Decimal:
    """Without trailing zeros and never in exponent form: 130.0000 reads 130 (normalize() alone prints 1.3E+2)."""
    return Decimal(plain_decimal_text(value))


def plain_decimal_text(value: Decimal) -> str:
    """`plain_decimal` as the text DecimalStr writes ("130", "0.125"), without building the Decimal."""
    return format(value.normalize(), "f")


def _decimal_str(value: Decimal) -> str:
    return str(value)


# Decimals travel as JSON strings (`"20870"`, `"1520.50"`) so that no client parses them into floats.
_AS_STRING = PlainSerializer(_decimal_str, return_type=str, when_used="json")

DecimalStr = Annotated[Decimal, BeforeValidator(_ascii_number), _AS_STRING]
Money = Annotated[
    Decimal, BeforeValidator(_ascii_number), Field(ge=0, le=MAX_MONEY, decimal_places=MONEY_PLACES), _AS_STRING
]
# A charge (positive) or a credit (negative).
SignedMoney = Annotated[
    Decimal, BeforeValidator(_ascii_number), Field(ge=-MAX_MONEY, le=MAX_MONEY, decimal_places=MONEY_PLACES), _AS_STRING
]
UnitPrice = Annotated[
    Decimal, BeforeValidator(_ascii_number), Field(ge=0, le=MAX_UNIT_PRICE, decimal_places=UNIT_PRICE_PLACES), _AS_STRING
]
Quantity = Annotated[
    Decimal, BeforeValidator(_ascii_number), Field(gt=0, le=MAX_QUANTITY, decimal_places=QUANTITY_PLACES), _AS_STRING
]
# A meter's cumulative register: never negative, 3 decimals.
RegisterValue = Annotated[DecimalStr, Field(ge=0, max_digits=15, decimal_places=3)]
Percent = Annotated[
    Decimal, BeforeValidator(_ascii_number), Field(ge=-100, le=100, decimal_places=RATE_PLACES), _AS_STRING
]
BusinessDate = Annotated[date, Field(ge=FIRST_BUSINESS_DATE, le=LAST_BUSINESS_DATE)]
BusinessDateTime = Annotated[AwareDatetime, AfterValidator(_in_business_range)]

# Ids in request bodies and queries: the range of an INTEGER column on every supported database.
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]

Email = Annotated[str, StringConstraints(max_length=254), BeforeValidator(_single_email)]


def single_line(max_length: int, *, min_length: int = 1) -> Any:
    """A stripped one-line text (names, addresses, subjects) without control or bidi characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_safe_text),
    ]


def ascii_code(max_length: int, *, min_length: int = 1) -> Any:
    """A stripped identifier a person types from paper (contract, national id): printable ASCII only."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length, pattern=r"^[ -~]*$"),
    ]


Name = single_line(200)
ContractNumberText = ascii_code(30)
NationalIdText = ascii_code(40)
ReferenceText = ascii_code(30)
Address = single_line(300, min_length=0)
# A phone number as people write it: digits, spaces, parentheses and dashes, an optional leading +.
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{5,29}$")]

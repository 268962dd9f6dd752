"""Payment-coupon codes: Luhn references, the GS1-128 bank barcode and masked holder names."""

from __future__ import annotations

import io
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import barcode as python_barcode
from barcode.writer import SVGWriter

# FNC1 inside the element string is transmitted by scanners as ASCII GS.
GS = "\x1d"

AI_GLN = "415"
AI_REFERENCE = "8020"
AI_AMOUNT = "3900"
AI_DUE_DATE = "96"

# (fixed length, or None for variable) and the maximum data length per GS1 spec.
_AI_LENGTHS: dict[str, tuple[int | None, int]] = {
    AI_GLN: (13, 13),
    AI_REFERENCE: (None, 25),
    AI_AMOUNT: (None, 15),
    AI_DUE_DATE: (None, 90),
}

_DUE_DATE_FORMAT = "%Y%m%d"
# The barcode's (3900) amount holds at most 15 digits of whole currency units.
MAX_BARCODE_AMOUNT = Decimal(10) ** _AI_LENGTHS[AI_AMOUNT][1] - 1


def _is_ascii_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def luhn_check_digit(digits: str) -> str:
    """The Luhn (mod 10) check digit to append to `digits`."""
    if not _is_ascii_digits(digits):
        raise ValueError("Luhn input must be a non-empty string of digits")
    total = 0
    # The digit next to the future check digit is the first one doubled.
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_is_valid(number: str) -> bool:
    """True when `number`'s last digit is the Luhn check digit of the rest."""
    if not _is_ascii_digits(number) or len(number) < 2:
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def make_reference(sequence: int, *, width: int = 11) -> str:
    """A coupon reference: `sequence` zero-padded to `width` digits plus its Luhn digit."""
    if sequence < 0:
        raise ValueError("sequence must not be negative")
    body = str(sequence).zfill(width)
    # Silently growing past `width` would make references of uneven length.
    if len(body) > width:
        raise ValueError(f"sequence {sequence} does not fit in {width} digits")
    return body + luhn_check_digit(body)


# 15 random digits (the first never 0, so no bank system drops a leading zero) plus the Luhn digit:
# 9 * 10^14 references per tenant, and 16 digits never collide with the older 12-digit sequential ones.
RANDOM_REFERENCE_DIGITS = 15


def random_reference() -> str:
    """An unguessable coupon reference: 15 random digits from `secrets` plus the Luhn check digit."""
    body = str(secrets.randbelow(9 * 10 ** (RANDOM_REFERENCE_DIGITS - 1)) + 10 ** (RANDOM_REFERENCE_DIGITS - 1))
    return body + luhn_check_digit(body)


def gln_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of a 12-digit GLN body (weights 3,1 from the right)."""
    if not _is_ascii_digits(body) or len(body) != 12:
        raise ValueError("GLN body must be 12 digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def gln_is_valid(gln: str) -> bool:
    """True when `gln` is 13 digits ending in its GS1 check digit."""
    return _is_ascii_digits(gln) and len(gln) == 13 and gln_check_digit(gln[:12]) == gln[12]


@dataclass(frozen=True)
class CouponBarcode:
    """The GS1-128 data of a coupon, as printed under the bars and as scanned."""

    human_readable: str
    element_string: str


def build_coupon_barcode(*, gln: str, reference: str, amount: Decimal, due_on: date) -> CouponBarcode:
    """Build the (415)(8020)(3900)(96) GS1-128 data; the amount is rounded half-up to whole units."""
    if not gln_is_valid(gln):
        raise ValueError(f"invalid GLN {gln!r}")
    if not luhn_is_valid(reference) or len(reference) > _AI_LENGTHS[AI_REFERENCE][1]:
        raise ValueError(f"invalid coupon reference {reference!r}")
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"invalid coupon amount {amount}")
    whole = str(int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)))
    if len(whole) > _AI_LENGTHS[AI_AMOUNT][1]:
        raise ValueError(f"coupon amount {amount} is too large")
    due = due_on.strftime(_DUE_DATE_FORMAT)
    fields = ((AI_GLN, gln), (AI_REFERENCE, reference), (AI_AMOUNT, whole), (AI_DUE_DATE, due))
    human = "".join(f"({ai}){data}" for ai, data in fields)
    # Variable-length fields need FNC1 to end them, except the last one of the symbol.
    element = ""
    for index, (ai, data) in enumerate(fields):
        element += ai + data
        if _AI_LENGTHS[ai][0] is None and index < len(fields) - 1:
            element += GS
    return CouponBarcode(human_readable=human, element_string=element)


def parse_element_string(s: str) -> dict[str, str]:
    """Decode a coupon element string (FNC1 as GS) into {AI: data}; raises ValueError."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(s):
        ai = next((a for a in _AI_LENGTHS if s.startswith(a, pos)), None)
        if ai is None:
            raise ValueError(f"unknown application identifier at position {pos}")
        if ai in fields:
            raise ValueError(f"application identifier ({ai}) repeated")
        pos += len(ai)
        fixed, maximum = _AI_LENGTHS[ai]
        if fixed is not None:
            end = pos + fixed
            if end > len(s):
                raise ValueError(f"({ai}) is truncated")
            data, next_pos = s[pos:end], end
            # A GS after a fixed-length field is allowed by GS1, and harmless.
            if s.startswith(GS, next_pos):
                next_pos += 1
        else:
            gs_at = s.find(GS, pos)
            end = len(s) if gs_at == -1 else gs_at
            data, next_pos = s[pos:end], end + (gs_at != -1)
        if not data or len(data) > maximum:
            raise ValueError(f"({ai}) has a bad length")
        fields[ai] = data
        pos = next_pos
    return fields


def coupon_fields(element_string: str) -> tuple[str, str, Decimal, date]:
    """Decode a coupon element string into (gln, reference, amount, due date)."""
    fields = parse_element_string(element_string)
    missing = {AI_GLN, AI_REFERENCE, AI_AMOUNT, AI_DUE_DATE} - fields.keys()
    if missing:
        raise ValueError(f"missing application identifiers {sorted(missing)}")
    due_on = datetime.strptime(fields[AI_DUE_DATE], _DUE_DATE_FORMAT).date()
    return fields[AI_GLN], fields[AI_REFERENCE], Decimal(fields[AI_AMOUNT]), due_on


def render_barcode_svg(barcode: CouponBarcode) -> bytes:
    """Render the coupon's GS1-128 symbol as SVG, with the human-readable line under the bars."""
    gs1_128 = python_barcode.get_barcode_class("gs1_128")
    # python-barcode adds the leading FNC1 itself and marks the others with "\xf1".
    data = barcode.element_string.replace(GS, gs1_128.FNC1_CHAR)
    symbol = gs1_128(data, writer=SVGWriter())
    buffer = io.BytesIO()
    symbol.write(buffer, text=barcode.human_readable)
    return buffer.getvalue()


def mask_name(full_name: str) -> str:
    """Mask a holder's name for public pages: "Juan Pérez" becomes "J*** P***"."""
    # NFC keeps a decomposed "É" (E + combining accent) as one visible initial.
    words = unicodedata.normalize("NFC", full_name).split()
    return " ".join(f"{word[0]}***" for word in words)

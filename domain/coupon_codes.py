"""Payment-coupon codes: Luhn references, the GS1-128 bank barcode and masked holder names."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from reportlab.graphics import renderSVG
from reportlab.graphics.barcode.code128 import Code128
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

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


INVOICE_REFERENCE_BODY = 13


def invoice_reference(number: str) -> str:
    """An invoice's own payment reference: the digits of its number (FAC-2026-000123) padded to 13, plus a Luhn digit.

    Fourteen digits, so it never meets a coupon reference (twelve); unique per tenant because the number is.
    """
    digits = "".join(char for char in number if char.isascii() and char.isdigit())
    if not digits or len(digits) > INVOICE_REFERENCE_BODY:
        raise ValueError(f"invoice number {number!r} has no room for a reference")
    body = digits.zfill(INVOICE_REFERENCE_BODY)
    return body + luhn_check_digit(body)


# Every reference length this app issues: sequential coupons (11 + 1), invoices (13 + 1), random coupons (15 + 1).
REFERENCE_LENGTHS = (12, INVOICE_REFERENCE_BODY + 1, RANDOM_REFERENCE_DIGITS + 1)


def reference_forms(digits: str) -> list[str]:
    """The references a bank may mean by `digits` when its fixed-width field dropped or added leading zeros."""
    bare = digits.lstrip("0")
    return sorted({bare.zfill(length) for length in REFERENCE_LENGTHS if len(bare) <= length})


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


# reportlab's Code128 takes FNC1 as the character U+00F1 in its input and encodes it as symbol value 102.
_FNC1 = "\xf1"
# GS1 asks for a quiet zone of at least 10 modules on each side of the bars.
QUIET_MODULES = 10
_TEXT_FONT = "Helvetica"
_TEXT_MAX_SIZE_MODULES = 6.0
# One SVG user unit is one CSS pixel: two pixels per module scan at 1x, and every zoom only widens them.
SVG_MODULE = 2.0
SVG_BAR_HEIGHT_MODULES = 40


def code128_input(element_string: str) -> str:
    """Turn a GS1 element string into reportlab Code128 input: leading FNC1, and FNC1 for every GS separator."""
    if not element_string:
        raise ValueError("empty GS1 element string")
    for char in element_string:
        if char != GS and not " " <= char <= "~":
            raise ValueError(f"character {char!r} cannot be carried in a GS1-128 element string")
    # A separator is only needed between fields; one at either end would add a stray FNC1.
    return _FNC1 + element_string.strip(GS).replace(GS, _FNC1)


def build_gs1_128(element_string: str, bar_width: float, bar_height: float) -> Code128:
    """The GS1-128 symbol (FNC1 first, FNC1 for each "\\x1d") with its 10-module quiet zones."""
    return Code128(
        code128_input(element_string),
        barWidth=bar_width,
        barHeight=bar_height,
        humanReadable=False,
        quiet=True,
        lquiet=QUIET_MODULES * bar_width,
        rquiet=QUIET_MODULES * bar_width,
    )


def barcode_drawing(barcode: CouponBarcode, *, module: float, bar_height: float) -> Drawing:
    """The one picture of a coupon barcode, for PDF and SVG: white ground, bars, quiet zones, human-readable line.

    The line is shrunk to the symbol's width, so it never leaves the drawing (or the SVG's viewBox).
    """
    symbol = build_gs1_128(barcode.element_string, module, bar_height)
    symbol.validate()
    symbol.encode()
    symbol.decompose()
    symbol.computeSize()
    width = symbol.width
    font_size = min(_TEXT_MAX_SIZE_MODULES * module, width / stringWidth(barcode.human_readable, _TEXT_FONT, 1))
    text_band = font_size * 1.6
    drawing = Drawing(width, bar_height + text_band)
    drawing.add(Rect(0, 0, width, bar_height + text_band, fillColor=colors.white, strokeColor=None))
    # Bars from the symbol's own run-length decomposition, so PDF and SVG share every width.
    # reportlab spells the runs as letters: "A".."D" a bar of 1-4 modules, "a".."d" a space.
    x = symbol.lquiet
    for run in symbol.decomposed:
        run_width = (ord(run.lower()) - ord("a") + 1) * module
        if run.isupper():
            drawing.add(Rect(x, text_band, run_width, bar_height, fillColor=colors.black, strokeColor=None, strokeWidth=0))
        x += run_width
    drawing.add(
        String(width / 2, font_size * 0.45, barcode.human_readable, fontName=_TEXT_FONT, fontSize=font_size,
               textAnchor="middle", fillColor=colors.black)
    )
    return drawing


def render_barcode_svg(barcode: CouponBarcode) -> bytes:
    """Render the coupon's GS1-128 symbol as SVG, quiet zones and human-readable line inside its viewBox."""
    drawing = barcode_drawing(barcode, module=SVG_MODULE, bar_height=SVG_BAR_HEIGHT_MODULES * SVG_MODULE)
    return renderSVG.drawToString(drawing).encode("utf-8")


def mask_name(full_name: str) -> str:
    """Mask a holder's name for public pages: "Juan Pérez" becomes "J*** P***"."""
    # NFC keeps a decomposed "É" (E + combining accent) as one visible initial.
    words = unicodedata.normalize("NFC", full_name).split()
    return " ".join(f"{word[0]}***" for word in words)

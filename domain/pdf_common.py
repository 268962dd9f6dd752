"""Shared look (colours, paragraph styles) and date formatting for the PDF documents."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

from babel.dates import format_date
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

from domain.country_packs import COUNTRY_PACKS
from domain.money_format import language

PRIMARY = colors.HexColor("#1F3A5F")
ACCENT = colors.HexColor("#2E6DB4")
LIGHT = colors.HexColor("#EEF3F9")
ZEBRA = colors.HexColor("#F6F7F9")
RULE = colors.HexColor("#B8C4D3")
MUTED = colors.HexColor("#5B6573")
WARNING = colors.HexColor("#B54708")

# platypus frames pad their content by 6 pt; margins subtract it so content edges sit exactly on the margin.
FRAME_PADDING = 6

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"

_NUMERIC_DATE = {"es": "dd/MM/yyyy", "pt": "dd/MM/yyyy", "en": "MMM d, yyyy"}


@dataclass(frozen=True)
class Styles:
    """Paragraph styles used by every document."""

    body: ParagraphStyle
    small: ParagraphStyle
    muted: ParagraphStyle
    bold: ParagraphStyle
    right: ParagraphStyle
    right_bold: ParagraphStyle
    center: ParagraphStyle
    title: ParagraphStyle
    heading: ParagraphStyle
    heading_right: ParagraphStyle
    warning: ParagraphStyle
    tenant: ParagraphStyle
    big: ParagraphStyle
    big_right: ParagraphStyle


def make_styles() -> Styles:
    """Build the paragraph styles (fresh objects, so renderers never share mutable state)."""
    body = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11, alignment=TA_LEFT)
    return Styles(
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5),
        muted=ParagraphStyle("muted", parent=body, fontSize=7.5, leading=9.5, textColor=MUTED),
        bold=ParagraphStyle("bold", parent=body, fontName=FONT_BOLD),
        right=ParagraphStyle("right", parent=body, alignment=TA_RIGHT),
        right_bold=ParagraphStyle("right_bold", parent=body, fontName=FONT_BOLD, alignment=TA_RIGHT),
        center=ParagraphStyle("center", parent=body, alignment=TA_CENTER),
        title=ParagraphStyle(
            "title", parent=body, fontName=FONT_BOLD, fontSize=13, leading=16, textColor=PRIMARY, alignment=TA_RIGHT
        ),
        heading=ParagraphStyle(
            "heading", parent=body, fontName=FONT_BOLD, fontSize=9, leading=11, textColor=colors.white
        ),
        heading_right=ParagraphStyle(
            "heading_right", parent=body, fontName=FONT_BOLD, fontSize=9, leading=11, textColor=colors.white,
            alignment=TA_RIGHT,
        ),
        warning=ParagraphStyle("warning", parent=body, fontName=FONT_BOLD, textColor=WARNING),
        tenant=ParagraphStyle("tenant", parent=body, fontName=FONT_BOLD, fontSize=16, leading=19, textColor=PRIMARY),
        big=ParagraphStyle("big", parent=body, fontName=FONT_BOLD, fontSize=16, leading=19, textColor=PRIMARY),
        big_right=ParagraphStyle(
            "big_right", parent=body, fontName=FONT_BOLD, fontSize=16, leading=19, textColor=PRIMARY, alignment=TA_RIGHT
        ),
    )


PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 15 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN


def a4_document(
    buffer: Any, *, title: str, author: str, subject: str = "", footer_space: float = 0.0
) -> SimpleDocTemplate:
    """Our A4 page: 15 mm margins around what is printed (frames pad themselves by FRAME_PADDING), plus
    `footer_space` at the bottom for a footer drawn on the canvas."""
    return SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN - FRAME_PADDING,
        rightMargin=MARGIN - FRAME_PADDING,
        topMargin=MARGIN - FRAME_PADDING,
        bottomMargin=MARGIN + footer_space - FRAME_PADDING,
        title=title,
        author=author,
        subject=subject,
    )


def banner(left: Any, right: Any, *, left_width: float, bottom_padding: float = 2.5 * mm) -> Table:
    """The top of every document: the tenant on the left, the title on the right, a rule below both."""
    return Table(
        [[left, right]],
        colWidths=[left_width, CONTENT_WIDTH - left_width],
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), bottom_padding),
                ("LINEBELOW", (0, 0), (-1, 0), 1.5, PRIMARY),
            ]
        ),
    )


def footer_line(left: str, right: str) -> Callable[[Canvas, SimpleDocTemplate], None]:
    """A page callback for `build(onFirstPage=…, onLaterPages=…)`: one muted line of small text under the
    content, `left` at the left margin and `right` at the right one (the coupon's and the booklet's)."""

    def footer(canvas: Canvas, _template: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, MARGIN / 2, left)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN / 2, right)
        canvas.restoreState()

    return footer


def tax_id_label(country: str, fallback: str) -> str:
    """The company tax id's name in its country (NIT, RUT, CNPJ), whatever the document's language."""
    pack = COUNTRY_PACKS.get(country.upper())
    return pack.tax_id_label if pack else fallback


def para(text: str, style: ParagraphStyle) -> Paragraph:
    """Wrap plain text (escaped, so names with "&" or "<" are safe) in a Paragraph."""
    return Paragraph(escape(text), style)


def format_short_date(value: date, locale: str) -> str:
    """Format a date as 05/11/2026 (es, pt) or Nov 5, 2026 (en)."""
    lang = language(locale)
    return format_date(value, _NUMERIC_DATE[lang], locale=lang)


def format_long_date(value: date, locale: str) -> str:
    """Format a date in words, e.g. "5 de noviembre de 2026"."""
    lang = language(locale)
    return format_date(value, "long", locale=lang)


def format_datetime_with_offset(value: datetime, locale: str) -> str:
    """Format an aware datetime in its own zone, e.g. "05/11/2026 23:59 (UTC-05:00)"."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    offset = value.strftime("%z")
    return f"{format_short_date(value.date(), locale)} {value:%H:%M} (UTC{offset[:3]}:{offset[3:5]})"


def period_month(period: str) -> date | None:
    """Parse a "YYYY-MM" billing period into the first day of that month, or None if malformed."""
    try:
        year, month = period.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        return None


def format_period(period: str, locale: str) -> str:
    """Format a "YYYY-MM" period as "Octubre 2026" / "October 2026"; malformed periods are shown as given."""
    month = period_month(period)
    if month is None:
        return period
    text = format_date(month, "LLLL yyyy", locale=language(locale))
    return text[:1].upper() + text[1:]


def format_period_short(period: str, locale: str) -> str:
    """Format a "YYYY-MM" period on two lines for chart axes, e.g. "oct" over "2026"."""
    month = period_month(period)
    if month is None:
        return period
    return f"{format_date(month, 'LLL', locale=language(locale)).rstrip('.')}\n{month.year}"

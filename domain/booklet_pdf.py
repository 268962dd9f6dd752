"""Renders a payment agreement's booklet (cuponera): a cover summary, then one tear-off coupon per instalment with its GS1-128 barcode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from io import BytesIO

from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Spacer, Table, TableStyle

from domain.coupon_pdf import LABELS as COUPON_LABELS
from domain.coupon_pdf import CutLine, fitted_barcode
from domain.money_format import format_money, language
from domain.pdf_common import (
    ACCENT,
    CONTENT_WIDTH,
    LIGHT,
    RULE,
    Styles,
    a4_document,
    banner,
    footer_line,
    format_long_date,
    make_styles,
    para,
)

# Three coupons fit an A4 page with their cut lines; each coupon is kept whole on one page.
_BAR_HEIGHT = 14 * mm


@dataclass(frozen=True)
class BookletCoupon:
    """One instalment's coupon: number 0 is the down payment."""

    number: int
    count: int
    reference: str
    amount: Decimal
    due_on: date
    status: str
    barcode_human_readable: str
    barcode_element_string: str


@dataclass(frozen=True)
class BookletDocument:
    """Everything the booklet shows, already resolved from the database."""

    tenant_name: str
    tenant_gln: str
    currency: str
    locale: str
    agreement_id: int
    contract_number: str
    holder_name: str
    debt: Decimal
    financing: Decimal
    total: Decimal
    invoice_numbers: tuple[str, ...]
    coupons: tuple[BookletCoupon, ...]


LABELS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Cuponera de acuerdo de pago",
        "agreement": "Acuerdo de pago",
        "contract": "Contrato",
        "debt": "Deuda",
        "financing": "Financiación",
        "total": "Total del acuerdo",
        "invoices": "Facturas incluidas",
        "down_payment": "Cuota inicial",
        "instalment": "Cuota {number} de {count}",
        "paid": "PAGADA",
        "cancelled": "ANULADA",
    },
    "en": {
        "title": "Payment agreement booklet",
        "agreement": "Payment agreement",
        "contract": "Contract",
        "debt": "Debt",
        "financing": "Financing",
        "total": "Agreement total",
        "invoices": "Invoices included",
        "down_payment": "Down payment",
        "instalment": "Instalment {number} of {count}",
        "paid": "PAID",
        "cancelled": "CANCELLED",
    },
    "pt": {
        "title": "Carnê do acordo de pagamento",
        "agreement": "Acordo de pagamento",
        "contract": "Contrato",
        "debt": "Dívida",
        "financing": "Financiamento",
        "total": "Total do acordo",
        "invoices": "Faturas incluídas",
        "down_payment": "Entrada",
        "instalment": "Parcela {number} de {count}",
        "paid": "PAGA",
        "cancelled": "CANCELADA",
    },
}


def render_booklet_pdf(doc: BookletDocument) -> bytes:
    """Render the booklet; each coupon carries its own barcode, drawn as vectors, and returns the PDF bytes."""
    lang = language(doc.locale)
    labels = LABELS[lang]
    styles = make_styles()
    buffer = BytesIO()
    template = a4_document(buffer, title=f"{labels['title']} {doc.agreement_id}", author=doc.tenant_name)
    story: list = [_cover(doc, lang, styles), Spacer(1, 6 * mm)]
    for coupon in doc.coupons:
        story.append(KeepTogether([CutLine(CONTENT_WIDTH, f"- {COUPON_LABELS[lang]['cut']} -"), Spacer(1, 3 * mm), *_coupon(doc, coupon, lang, styles)]))

    footer = footer_line(f"{doc.tenant_name} · GLN {doc.tenant_gln}", f"{labels['agreement']} {doc.agreement_id} · {labels['contract']} {doc.contract_number}")
    template.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _money(doc: BookletDocument, amount: Decimal) -> str:
    return format_money(amount, doc.currency, doc.locale)


def _cover(doc: BookletDocument, lang: str, styles: Styles) -> list:
    labels = LABELS[lang]
    coupon_labels = COUPON_LABELS[lang]
    left = [para(doc.tenant_name, styles.tenant), para(f"GLN {doc.tenant_gln}", styles.muted)]
    right = [para(labels["title"].upper(), styles.title), para(f"{labels['agreement']} {doc.agreement_id}", styles.right)]
    rows = [
        (coupon_labels["holder"], doc.holder_name),
        (labels["contract"], doc.contract_number),
        (labels["invoices"], ", ".join(doc.invoice_numbers)),
        (labels["debt"], _money(doc, doc.debt)),
        (labels["financing"], _money(doc, doc.financing)),
        (labels["total"], _money(doc, doc.total)),
    ]
    summary = Table(
        [[para(label, styles.muted), para(value, styles.bold)] for label, value in rows],
        colWidths=[45 * mm, CONTENT_WIDTH - 45 * mm],
        style=TableStyle([("LINEBELOW", (0, 0), (-1, -2), 0.25, RULE), ("BOX", (0, 0), (-1, -1), 0.5, RULE)]),
    )
    return KeepTogether([banner(left, right, left_width=CONTENT_WIDTH * 0.55), Spacer(1, 4 * mm), summary])


def _coupon(doc: BookletDocument, coupon: BookletCoupon, lang: str, styles: Styles) -> list:
    labels = LABELS[lang]
    coupon_labels = COUPON_LABELS[lang]
    title = labels["down_payment"] if coupon.number == 0 else labels["instalment"].format(number=coupon.number, count=coupon.count)
    if coupon.status in ("paid", "cancelled"):
        title = f"{title} · {labels[coupon.status]}"
    third = CONTENT_WIDTH / 3
    table = Table(
        [
            [para(title, styles.bold), para(coupon_labels["reference"], styles.muted), para(coupon_labels["due_on"], styles.muted)],
            [
                para(f"{labels['contract']} {doc.contract_number}", styles.body),
                para(coupon.reference, styles.bold),
                para(format_long_date(coupon.due_on, lang), styles.bold),
            ],
            [para(doc.holder_name, styles.body), para(coupon_labels["amount"], styles.muted), ""],
            ["", para(_money(doc, coupon.amount), styles.big), ""],
        ],
        colWidths=[third, third, third],
        style=TableStyle([
            ("BACKGROUND", (0, 0), (-1, -1), LIGHT),
            ("BOX", (0, 0), (-1, -1), 1, ACCENT),
            ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ]),
    )
    return [
        table,
        Spacer(1, 3 * mm),
        fitted_barcode(coupon.barcode_human_readable, coupon.barcode_element_string, CONTENT_WIDTH, bar_height=_BAR_HEIGHT),
        Spacer(1, 4 * mm),
    ]

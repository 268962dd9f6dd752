"""Renders the receipt of a cash payment taken at an office as a printable A4 PDF (es, en, pt)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from io import BytesIO

from reportlab.lib.units import mm
from reportlab.platypus import Spacer, Table, TableStyle

from domain.money_format import format_money, language
from domain.pdf_common import (
    ACCENT,
    CONTENT_WIDTH,
    LIGHT,
    PRIMARY,
    RULE,
    Styles,
    a4_document,
    banner,
    format_datetime_with_offset,
    format_period,
    make_styles,
    para,
    tax_id_label,
)


@dataclass(frozen=True)
class CashReceiptInvoice:
    """An invoice the payment settled, with the amount it took."""

    number: str
    contract_number: str
    period: str
    amount: Decimal


@dataclass(frozen=True)
class CashReceiptDocument:
    """Everything the receipt shows, already resolved from the database (amounts at the currency's minor unit)."""

    tenant_name: str
    tenant_tax_id: str
    tenant_country: str
    locale: str
    currency: str
    payment_id: int
    reference: str
    amount: Decimal
    office: str
    received_at: datetime
    customer_name: str
    cashier: str | None
    invoices: tuple[CashReceiptInvoice, ...]
    reversed_at: datetime | None = None


LABELS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Recibo de pago en efectivo",
        "receipt": "Recibo N.º",
        "tax_id": "Identificación tributaria",
        "reference": "Referencia de pago",
        "amount": "Valor recibido",
        "office": "Oficina",
        "received_at": "Fecha y hora",
        "customer": "Cliente",
        "cashier": "Atendido por",
        "invoices": "Facturas pagadas",
        "invoice": "Factura",
        "contract": "Contrato",
        "period": "Periodo",
        "total": "Total",
        "reversed": "PAGO ANULADO el {when}",
        "note": "Conserve este recibo como constancia de su pago.",
    },
    "en": {
        "title": "Cash payment receipt",
        "receipt": "Receipt no.",
        "tax_id": "Tax ID",
        "reference": "Payment reference",
        "amount": "Amount received",
        "office": "Office",
        "received_at": "Date and time",
        "customer": "Customer",
        "cashier": "Served by",
        "invoices": "Invoices paid",
        "invoice": "Invoice",
        "contract": "Contract",
        "period": "Period",
        "total": "Total",
        "reversed": "PAYMENT REVERSED on {when}",
        "note": "Keep this receipt as proof of your payment.",
    },
    "pt": {
        "title": "Recibo de pagamento em dinheiro",
        "receipt": "Recibo n.º",
        "tax_id": "Identificação fiscal",
        "reference": "Referência de pagamento",
        "amount": "Valor recebido",
        "office": "Escritório",
        "received_at": "Data e hora",
        "customer": "Cliente",
        "cashier": "Atendido por",
        "invoices": "Faturas pagas",
        "invoice": "Fatura",
        "contract": "Contrato",
        "period": "Período",
        "total": "Total",
        "reversed": "PAGAMENTO ESTORNADO em {when}",
        "note": "Guarde este recibo como comprovante do seu pagamento.",
    },
}



def render_cash_receipt_pdf(doc: CashReceiptDocument) -> bytes:
    """Render the receipt and return the PDF bytes."""
    lang = language(doc.locale)
    labels = LABELS[lang]
    styles = make_styles()
    buffer = BytesIO()
    template = a4_document(buffer, title=f"{labels['title']} {doc.payment_id}", author=doc.tenant_name)
    story = [_header(doc, labels, styles), Spacer(1, 4 * mm)]
    if doc.reversed_at is not None:
        story += [para(labels["reversed"].format(when=format_datetime_with_offset(doc.reversed_at, lang)), styles.warning), Spacer(1, 3 * mm)]
    story += [
        _summary(doc, labels, lang, styles),
        Spacer(1, 5 * mm),
        para(labels["invoices"], styles.bold),
        Spacer(1, 1.5 * mm),
        _invoice_table(doc, labels, lang, styles),
        Spacer(1, 4 * mm),
        para(labels["note"], styles.muted),
    ]
    template.build(story)
    return buffer.getvalue()


def _money(doc: CashReceiptDocument, amount: Decimal) -> str:
    return format_money(amount, doc.currency, doc.locale)


def _header(doc: CashReceiptDocument, labels: dict[str, str], styles: Styles) -> Table:
    left = [para(doc.tenant_name, styles.tenant)]
    if doc.tenant_tax_id:
        left.append(para(f"{tax_id_label(doc.tenant_country, labels['tax_id'])} {doc.tenant_tax_id}", styles.muted))
    right = [para(labels["title"].upper(), styles.title), para(f"{labels['receipt']} {doc.payment_id}", styles.right)]
    return banner(left, right, left_width=CONTENT_WIDTH * 0.55)


def _summary(doc: CashReceiptDocument, labels: dict[str, str], lang: str, styles: Styles) -> Table:
    half = CONTENT_WIDTH / 2
    rows = [
        [para(labels["reference"], styles.muted), para(labels["amount"], styles.muted)],
        [para(doc.reference, styles.big), para(_money(doc, doc.amount), styles.big)],
        [para(labels["office"], styles.muted), para(labels["received_at"], styles.muted)],
        [para(doc.office, styles.bold), para(format_datetime_with_offset(doc.received_at, lang), styles.bold)],
        [para(labels["customer"], styles.muted), para(labels["cashier"], styles.muted) if doc.cashier else ""],
        [para(doc.customer_name, styles.body), para(doc.cashier, styles.body) if doc.cashier else ""],
    ]
    return Table(
        rows,
        colWidths=[half, half],
        style=TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), LIGHT),
                ("BOX", (0, 0), (-1, -1), 1, ACCENT),
                ("LINEBELOW", (0, 1), (-1, 1), 0.25, RULE),
                ("LINEBELOW", (0, 3), (-1, 3), 0.25, RULE),
                ("LEFTPADDING", (0, 0), (-1, -1), 4 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ("TOPPADDING", (0, 0), (-1, 0), 2.5 * mm),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 2.5 * mm),
            ]
        ),
    )


def _invoice_table(doc: CashReceiptDocument, labels: dict[str, str], lang: str, styles: Styles) -> Table:
    rows = [
        [
            para(labels["invoice"], styles.heading),
            para(labels["contract"], styles.heading),
            para(labels["period"], styles.heading),
            para(labels["amount"], styles.heading_right),
        ]
    ]
    rows += [
        [
            para(invoice.number, styles.body),
            para(invoice.contract_number, styles.body),
            para(format_period(invoice.period, lang), styles.body),
            para(_money(doc, invoice.amount), styles.right),
        ]
        for invoice in doc.invoices
    ]
    rows.append(["", "", para(labels["total"], styles.bold), para(_money(doc, doc.amount), styles.right_bold)])
    return Table(
        rows,
        colWidths=[50 * mm, 45 * mm, 45 * mm, None],
        repeatRows=1,
        style=TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), PRIMARY),
                ("LINEBELOW", (0, 1), (-1, -2), 0.25, RULE),
                ("LINEABOVE", (2, -1), (-1, -1), 0.75, PRIMARY),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        ),
    )

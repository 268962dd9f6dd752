"""The printable credit or debit note: which invoice it corrects, by how much and why (es, en, pt)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from io import BytesIO
from typing import Any

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer, Table, TableStyle

from domain.money_format import format_money, language
from domain.pdf_common import (
    CONTENT_WIDTH,
    LIGHT,
    RULE,
    a4_document,
    banner,
    format_period,
    format_short_date,
    make_styles,
    para,
    tax_id_label,
)

LABELS: dict[str, dict[str, str]] = {
    "es": {
        "credit": "Nota crédito",
        "debit": "Nota débito",
        "number": "N.º",
        "tax_id": "Identificación tributaria",
        "issued_on": "Fecha de expedición",
        "customer": "Cliente",
        "contract": "Contrato",
        "invoice": "Factura que corrige",
        "period": "Periodo facturado",
        "reason": "Motivo",
        "pqr": "Radicado PQR",
        "amount": "Valor de la nota",
        "due_before": "Saldo de la factura antes",
        "due_after": "Saldo de la factura después",
        "to_credit_balance": "La factura ya estaba pagada: el valor queda como saldo a favor del contrato.",
        "rebill": "Refacturación: líneas de la factura antes y después de la corrección",
        "line": "Concepto",
        "before": "Antes",
        "after": "Después",
        "total": "Total",
    },
    "en": {
        "credit": "Credit note",
        "debit": "Debit note",
        "number": "No.",
        "tax_id": "Tax ID",
        "issued_on": "Issued on",
        "customer": "Customer",
        "contract": "Contract",
        "invoice": "Invoice corrected",
        "period": "Billing period",
        "reason": "Reason",
        "pqr": "PQR filing number",
        "amount": "Note amount",
        "due_before": "Invoice amount due before",
        "due_after": "Invoice amount due after",
        "to_credit_balance": "The invoice was already paid: the amount is held as a credit balance on the contract.",
        "rebill": "Re-billing: the invoice's lines before and after the correction",
        "line": "Item",
        "before": "Before",
        "after": "After",
        "total": "Total",
    },
    "pt": {
        "credit": "Nota de crédito",
        "debit": "Nota de débito",
        "number": "N.º",
        "tax_id": "Identificação fiscal",
        "issued_on": "Data de emissão",
        "customer": "Cliente",
        "contract": "Contrato",
        "invoice": "Fatura corrigida",
        "period": "Período de referência",
        "reason": "Motivo",
        "pqr": "Protocolo PQR",
        "amount": "Valor da nota",
        "due_before": "Saldo da fatura antes",
        "due_after": "Saldo da fatura depois",
        "to_credit_balance": "A fatura já estava paga: o valor fica como saldo a favor do contrato.",
        "rebill": "Refaturamento: linhas da fatura antes e depois da correção",
        "line": "Item",
        "before": "Antes",
        "after": "Depois",
        "total": "Total",
    },
}



@dataclass(frozen=True)
class NoteDocument:
    """Everything printed on a note; money in `currency`, the language from `locale`."""

    kind: str
    number: str
    issued_on: date
    locale: str
    tenant_name: str
    tenant_legal_id: str
    tenant_country: str
    customer_name: str
    contract_number: str
    invoice_number: str
    period: str
    currency: str
    amount: Decimal
    amount_due_before: Decimal
    amount_due_after: Decimal
    to_credit_balance: bool
    reason: str
    pqr_filing_number: str | None
    # A re-bill's note: the invoice's lines before and after ({"old": [...], "new": [...], "old_total",
    # "new_total"}, each line {kind, description, quantity, unit_price, amount} as strings); None otherwise.
    rebill_lines: Mapping[str, Any] | None = None


def side_by_side(old: Sequence[Mapping[str, str]], new: Sequence[Mapping[str, str]]) -> list[tuple[str, Decimal | None, Decimal | None]]:
    """Pair the lines before and after by (kind, description), in the order they first appear; a line only
    on one side has None on the other."""
    rows: dict[tuple[str, str], list[Decimal | None]] = {}
    for side, lines in enumerate((old, new)):
        for line in lines:
            key = (line["kind"], line["description"])
            rows.setdefault(key, [None, None])
            current = rows[key][side]
            rows[key][side] = Decimal(line["amount"]) + (current or Decimal(0))
    return [(description, before, after) for (_, description), (before, after) in rows.items()]


def _rebill_table(doc: NoteDocument, labels: Mapping[str, str], styles: Any, money: Any) -> Table:
    lines = doc.rebill_lines or {}
    data = [[para(labels["line"], styles.bold), para(labels["before"], styles.bold), para(labels["after"], styles.bold)]]
    for description, before, after in side_by_side(lines.get("old", []), lines.get("new", [])):
        data.append([
            para(description, styles.body),
            para("" if before is None else money(before), styles.right),
            para("" if after is None else money(after), styles.right),
        ])
    data.append([
        para(labels["total"], styles.bold),
        para(money(Decimal(lines.get("old_total", "0"))), styles.right),
        para(money(Decimal(lines.get("new_total", "0"))), styles.right),
    ])
    table = Table(data, colWidths=[CONTENT_WIDTH * 0.5, CONTENT_WIDTH * 0.25, CONTENT_WIDTH * 0.25], repeatRows=1)
    table.setStyle(
        TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.5, RULE),
            ("BACKGROUND", (0, 0), (-1, 0), LIGHT),
            ("BACKGROUND", (0, -1), (-1, -1), LIGHT),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ])
    )
    return table


def render_note_pdf(doc: NoteDocument) -> bytes:
    """Render the note as a one-page PDF and return its bytes."""
    lang = language(doc.locale)
    labels = LABELS[lang]
    styles = make_styles()

    def money(amount: Decimal) -> str:
        return format_money(amount, doc.currency, doc.locale)

    title = f"{labels[doc.kind]} {labels['number']} {doc.number}"
    header = banner(
        [para(doc.tenant_name, styles.tenant),
         para(f"{tax_id_label(doc.tenant_country, labels['tax_id'])} {doc.tenant_legal_id}", styles.muted)],
        [para(title, styles.title), para(f"{labels['issued_on']}: {format_short_date(doc.issued_on, lang)}", styles.right)],
        left_width=CONTENT_WIDTH * 0.5,
    )
    rows: list[tuple[str, str]] = [
        (labels["customer"], doc.customer_name),
        (labels["contract"], doc.contract_number),
        (labels["invoice"], doc.invoice_number),
        (labels["period"], format_period(doc.period, lang)),
        (labels["reason"], doc.reason),
    ]
    if doc.pqr_filing_number:
        rows.append((labels["pqr"], doc.pqr_filing_number))
    rows += [
        (labels["amount"], money(doc.amount)),
        (labels["due_before"], money(doc.amount_due_before)),
        (labels["due_after"], money(doc.amount_due_after)),
    ]
    facts = Table(
        [[para(label, styles.bold), para(value, styles.body)] for label, value in rows],
        colWidths=[CONTENT_WIDTH * 0.35, CONTENT_WIDTH * 0.65],
    )
    amount_row = len(rows) - 3
    facts.setStyle(
        TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.5, RULE),
            ("BACKGROUND", (0, amount_row), (-1, amount_row), LIGHT),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TEXTCOLOR", (0, 0), (0, -1), colors.black),
        ])
    )
    story: list[Flowable] = [header, Spacer(1, 6 * mm), facts]
    if doc.to_credit_balance:
        story += [Spacer(1, 4 * mm), para(labels["to_credit_balance"], styles.body)]
    if doc.rebill_lines:
        story += [Spacer(1, 6 * mm), para(labels["rebill"], styles.bold), Spacer(1, 2 * mm)]
        story.append(_rebill_table(doc, labels, styles, money))
    buffer = BytesIO()
    a4_document(buffer, title=title, author=doc.tenant_name).build(story)
    return buffer.getvalue()

"""Renders a customer invoice as a printable A4 PDF with readings, charges and a consumption chart."""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from io import BytesIO

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, SimpleDocTemplate, Spacer, Table, TableStyle

from domain.coupon_pdf import CutLine, fitted_barcode
from domain.money_format import format_money, format_number, format_unit_price, language
from domain.pdf_common import (
    ACCENT,
    CONTENT_WIDTH,
    FONT,
    LIGHT,
    MARGIN,
    MUTED,
    PAGE_WIDTH,
    PRIMARY,
    RULE,
    ZEBRA,
    Styles,
    a4_document,
    banner,
    format_long_date,
    format_period,
    format_period_short,
    format_short_date,
    make_styles,
    para,
    tax_id_label,
)


@dataclass(frozen=True)
class DocLine:
    """One charge line as printed on the invoice."""

    kind: str
    description: str
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal


@dataclass(frozen=True)
class PaymentRequest:
    """How an open invoice is paid at a bank: its own reference, the amount and the barcode carrying both."""

    reference: str
    amount: Decimal
    pay_by: date
    barcode_human_readable: str
    barcode_element_string: str


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything the invoice PDF shows, already resolved from the database."""

    tenant_name: str
    tenant_tax_id: str
    tenant_address: str
    currency: str
    locale: str
    invoice_number: str
    period: str
    issued_on: date
    due_on: date
    status: str
    customer_name: str
    customer_national_id_display: str
    billing_address: str
    contract_number: str
    service: str
    unit: str
    supply_address: str
    stratum: str
    meter_serial: str
    previous_reading: Decimal | None
    current_reading: Decimal
    reading_kind: str
    consumption: Decimal
    flags: tuple[str, ...]
    lines: tuple[DocLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    amount_due: Decimal
    history: tuple[tuple[str, Decimal], ...] = ()
    # ID labels follow the ID's type (a Colombian NIT is "NIT" in every language), never the locale.
    customer_national_id_type: str = ""
    tenant_country: str = ""
    payment: PaymentRequest | None = None
    paid_on: date | None = None
    paid_channel: str | None = None
    void_reason: str | None = None


LABELS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Factura de servicios públicos",
        "tax_id": "Identificación tributaria",
        "number": "Factura N.º",
        "period": "Periodo facturado",
        "issued_on": "Fecha de expedición",
        "due_on": "Fecha de vencimiento",
        "status": "Estado",
        "amount_due_banner": "Total a pagar",
        "pay_before": "Pague antes del",
        "customer": "Cliente",
        "name": "Nombre",
        "national_id": "Identificación",
        "billing_address": "Dirección de envío",
        "contract": "Contrato",
        "contract_number": "Contrato N.º",
        "service": "Servicio",
        "supply_address": "Dirección del suministro",
        "stratum": "Estrato / uso",
        "meter": "Medidor y consumo",
        "meter_serial": "Medidor N.º",
        "previous_reading": "Lectura anterior",
        "current_reading": "Lectura actual",
        "consumption": "Consumo del periodo",
        "remarks": "Observaciones",
        "no_remarks": "Sin observaciones",
        "history": "Historial de consumo",
        "no_history": "Sin historial de consumo",
        "charges": "Detalle de cobros",
        "description": "Concepto",
        "quantity": "Cantidad",
        "unit_price": "Valor unitario",
        "amount": "Valor",
        "subtotal": "Subtotal",
        "tax": "Impuestos",
        "total": "Total factura",
        "amount_due": "Total a pagar",
        "footer": "Pague oportunamente para evitar recargos por mora y la suspensión del servicio.",
        "paid_mark": "PAGADA",
        "paid_on": "Pagada el {date}",
        "paid_by": "Canal de pago: {channel}",
        "void_mark": "ANULADA",
        "void_reason": "Motivo: {reason}",
        "void_note": "Esta factura fue anulada y no debe pagarse.",
        "paid_note": "Esta factura está pagada; no tiene saldo pendiente.",
        "overdue_notice": (
            "Factura vencida: su pago no se ha registrado. Pague de inmediato para evitar recargos "
            "por mora y la suspensión del servicio."
        ),
        "payment_reference": "Referencia de pago",
        "bank_copy": "Desprendible para el banco",
        "cut": "corte aquí",
        "holder": "Titular",
        "stub_amount": "Valor a pagar",
        "stub_pay_by": "Fecha límite de pago",
        "stub_instructions": "Pague en cualquier banco o punto autorizado con este código de barras o la referencia.",
        "page": "Página",
    },
    "en": {
        "title": "Utility bill",
        "tax_id": "Tax ID",
        "number": "Invoice No.",
        "period": "Billing period",
        "issued_on": "Issue date",
        "due_on": "Due date",
        "status": "Status",
        "amount_due_banner": "Amount due",
        "pay_before": "Please pay by",
        "customer": "Customer",
        "name": "Name",
        "national_id": "ID number",
        "billing_address": "Billing address",
        "contract": "Contract",
        "contract_number": "Contract No.",
        "service": "Service",
        "supply_address": "Supply address",
        "stratum": "Stratum / use",
        "meter": "Meter and consumption",
        "meter_serial": "Meter No.",
        "previous_reading": "Previous reading",
        "current_reading": "Current reading",
        "consumption": "Consumption",
        "remarks": "Remarks",
        "no_remarks": "None",
        "history": "Consumption history",
        "no_history": "No consumption history yet",
        "charges": "Charges",
        "description": "Description",
        "quantity": "Quantity",
        "unit_price": "Unit price",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "tax": "Tax",
        "total": "Invoice total",
        "amount_due": "Amount due",
        "footer": "Please pay on time to avoid late fees and disconnection of the service.",
        "paid_mark": "PAID",
        "paid_on": "Paid on {date}",
        "paid_by": "Payment channel: {channel}",
        "void_mark": "VOID",
        "void_reason": "Reason: {reason}",
        "void_note": "This invoice was voided and must not be paid.",
        "paid_note": "This invoice is paid; nothing is owed on it.",
        "overdue_notice": (
            "Overdue: we have not received your payment. Please pay now to avoid late fees "
            "and disconnection of the service."
        ),
        "payment_reference": "Payment reference",
        "bank_copy": "Bank copy",
        "cut": "cut here",
        "holder": "Account holder",
        "stub_amount": "Amount to pay",
        "stub_pay_by": "Pay by",
        "stub_instructions": "Pay at any bank or authorised payment point with this barcode or the reference.",
        "page": "Page",
    },
    "pt": {
        "title": "Fatura de serviços públicos",
        "tax_id": "Identificação fiscal",
        "number": "Fatura n.º",
        "period": "Período de referência",
        "issued_on": "Data de emissão",
        "due_on": "Data de vencimento",
        "status": "Situação",
        "amount_due_banner": "Total a pagar",
        "pay_before": "Pague até",
        "customer": "Cliente",
        "name": "Nome",
        "national_id": "Documento",
        "billing_address": "Endereço de correspondência",
        "contract": "Contrato",
        "contract_number": "Contrato n.º",
        "service": "Serviço",
        "supply_address": "Endereço de fornecimento",
        "stratum": "Classe / uso",
        "meter": "Medidor e consumo",
        "meter_serial": "Medidor n.º",
        "previous_reading": "Leitura anterior",
        "current_reading": "Leitura atual",
        "consumption": "Consumo do período",
        "remarks": "Observações",
        "no_remarks": "Nenhuma",
        "history": "Histórico de consumo",
        "no_history": "Sem histórico de consumo",
        "charges": "Detalhamento da fatura",
        "description": "Descrição",
        "quantity": "Quantidade",
        "unit_price": "Valor unitário",
        "amount": "Valor",
        "subtotal": "Subtotal",
        "tax": "Impostos",
        "total": "Total da fatura",
        "amount_due": "Total a pagar",
        "footer": "Pague em dia para evitar multa, juros e a suspensão do fornecimento.",
        "paid_mark": "PAGA",
        "paid_on": "Paga em {date}",
        "paid_by": "Canal de pagamento: {channel}",
        "void_mark": "CANCELADA",
        "void_reason": "Motivo: {reason}",
        "void_note": "Esta fatura foi cancelada e não deve ser paga.",
        "paid_note": "Esta fatura está paga; não há saldo pendente.",
        "overdue_notice": (
            "Fatura vencida: seu pagamento não foi registrado. Pague imediatamente para evitar multa, "
            "juros e a suspensão do fornecimento."
        ),
        "payment_reference": "Referência de pagamento",
        "bank_copy": "Via do banco",
        "cut": "corte aqui",
        "holder": "Titular",
        "stub_amount": "Valor a pagar",
        "stub_pay_by": "Data limite de pagamento",
        "stub_instructions": "Pague em qualquer banco ou ponto autorizado com este código de barras ou a referência.",
        "page": "Página",
    },
}

_READING_KINDS = {
    "es": {"estimated": "(estimada)", "corrected": "(corregida)"},
    "en": {"estimated": "(estimated)", "corrected": "(corrected)"},
    "pt": {"estimated": "(estimada)", "corrected": "(corrigida)"},
}

_FLAGS = {
    "es": {
        "rollover": "Vuelta de registro del medidor",
        "high": "Consumo alto",
        "low": "Consumo bajo",
        "zero": "Consumo cero",
    },
    "en": {
        "rollover": "Meter rollover",
        "high": "High consumption",
        "low": "Low consumption",
        "zero": "Zero consumption",
    },
    "pt": {"rollover": "Virada do medidor", "high": "Consumo alto", "low": "Consumo baixo", "zero": "Consumo zero"},
}

_SERVICES = {
    "es": {"electricity": "Energía eléctrica", "water": "Acueducto", "gas": "Gas natural"},
    "en": {"electricity": "Electricity", "water": "Water", "gas": "Natural gas"},
    "pt": {"electricity": "Energia elétrica", "water": "Água", "gas": "Gás natural"},
}

_STATUSES = {
    "es": {
        "issued": "Emitida", "overdue": "Vencida", "paid": "Pagada", "void": "Anulada", "disputed": "En reclamo"
    },
    "en": {"issued": "Issued", "overdue": "Overdue", "paid": "Paid", "void": "Void", "disputed": "Disputed"},
    "pt": {
        "issued": "Emitida", "overdue": "Vencida", "paid": "Paga", "void": "Cancelada", "disputed": "Em contestação"
    },
}

_STRATA = {
    "es": {"residential": "Estrato {}", "commercial": "Comercial", "industrial": "Industrial", "official": "Oficial"},
    "en": {"residential": "Stratum {}", "commercial": "Commercial", "industrial": "Industrial", "official": "Official"},
    "pt": {
        "residential": "Estrato {}", "commercial": "Comercial", "industrial": "Industrial", "official": "Poder público"
    },
}

# Lower than the coupon's 18 mm so the stub fits under the charges on page one; scanners need far less.
_STUB_BAR_HEIGHT = 12 * mm
PAID = colors.HexColor("#1E7B34")
VOID = colors.HexColor("#9B1C1C")

_CHANNELS = {
    "es": {"card": "pago en línea", "bank": "banco", "cash": "efectivo en oficina"},
    "en": {"card": "online payment", "bank": "bank", "cash": "cash at an office"},
    "pt": {"card": "pagamento on-line", "bank": "banco", "cash": "dinheiro no escritório"},
}

_ID_TYPE_NAMES = {"rut": "RUT", "nit": "NIT", "cc": "CC", "ce": "CE", "cpf": "CPF", "cnpj": "CNPJ"}

# The bill run stores its lines' descriptions in Spanish (the calculator's words); the PDF says them in
# the reader's language. Names a tenant gave its own charges and taxes ("IVA 19 %") stay as written,
# except the common ones below.
_LINE_WORDS = {
    "en": {
        "Saldo anterior": "Previous balance",
        "Intereses de mora": "Late-payment interest",
        "Redondeo": "Rounding",
        "Cargo fijo": "Fixed charge",
        "Cargo fijo acueducto": "Fixed charge, water supply",
        "Cargo fijo alcantarillado": "Fixed charge, sewerage",
    },
    "pt": {
        "Saldo anterior": "Saldo anterior",
        "Intereses de mora": "Juros de mora",
        "Redondeo": "Arredondamento",
        "Cargo fijo": "Tarifa fixa",
        "Cargo fijo acueducto": "Tarifa fixa de água",
        "Cargo fijo alcantarillado": "Tarifa fixa de esgoto",
    },
}
_LINE_PATTERNS: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = (
    (re.compile(r"^Consumo (?P<a>\S+)-(?P<b>\S+) (?P<u>\S+)$"),
     {"es": "Consumo {a}-{b} {u}", "en": "Consumption {a}-{b} {u}", "pt": "Consumo {a}-{b} {u}"}),
    (re.compile(r"^Consumo > (?P<a>\S+) (?P<u>\S+)$"),
     {"es": "Consumo superior a {a} {u}", "en": "Consumption above {a} {u}", "pt": "Consumo acima de {a} {u}"}),
    (re.compile(r"^Consumo \((?P<u>[^)]+)\)$"),
     {"es": "Consumo ({u})", "en": "Consumption ({u})", "pt": "Consumo ({u})"}),
    (re.compile(r"^Subsidio estrato (?P<n>\S+) \((?P<p>[^)]+)\)$"),
     {"es": "Subsidio estrato {n} ({p})", "en": "Subsidy, stratum {n} ({p})", "pt": "Subsídio, estrato {n} ({p})"}),
    (re.compile(r"^Contribución estrato (?P<n>\S+) \((?P<p>[^)]+)\)$"),
     {"es": "Contribución estrato {n} ({p})", "en": "Contribution, stratum {n} ({p})",
      "pt": "Contribuição, estrato {n} ({p})"}),
)


def _localized_number(text: str, lang: str) -> str:
    """ "12.5" -> "12,5" in es/pt; "+20 %" keeps its sign; anything else (a unit) is returned as is."""
    sign, body = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
    number, percent = (body[:-2], " %") if body.endswith(" %") else (body, "")
    try:
        return sign + format_number(Decimal(number), lang) + percent
    except ArithmeticError:
        return text


def describe_line(description: str, lang: str) -> str:
    """A stored (Spanish) line description in the reader's language; unknown tenant names stay as given."""
    for pattern, texts in _LINE_PATTERNS:
        match = pattern.match(description)
        if match:
            return texts[lang].format(**{key: _localized_number(value, lang) for key, value in match.groupdict().items()})
    return _LINE_WORDS.get(lang, {}).get(description, description)




def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """Render the invoice as a PDF and return its bytes."""
    lang = language(doc.locale)
    labels = LABELS[lang]
    styles = make_styles()
    buffer = BytesIO()
    template = a4_document(
        buffer, title=f"{labels['number']} {doc.invoice_number}", author=doc.tenant_name,
        subject=format_period(doc.period, lang), footer_space=6 * mm,
    )
    gap = 3 * mm
    story: list[Flowable] = [
        _header(doc, lang, styles),
        Spacer(1, gap),
        *_status_banner(doc, lang, styles),
        Spacer(1, gap),
        _parties(doc, lang, styles),
        Spacer(1, gap),
        _consumption(doc, lang, styles),
        Spacer(1, gap),
        KeepTogether([_charges(doc, lang, styles), Spacer(1, 2 * mm), _totals(doc, lang, styles)]),
    ]
    if doc.payment is not None:
        story += [Spacer(1, 2 * mm), para(labels["footer"], styles.muted), Spacer(1, 2 * mm)]
        story.append(KeepTogether(_bank_stub(doc, doc.payment, lang, styles)))

    def footer(canvas: Canvas, _template: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, MARGIN + 3 * mm, PAGE_WIDTH - MARGIN, MARGIN + 3 * mm)
        canvas.setFont(FONT, 7)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, MARGIN, f"{doc.tenant_name} · {labels['number']} {doc.invoice_number}")
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN, f"{labels['page']} {canvas.getPageNumber()}")
        canvas.restoreState()

    template.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _money(doc: InvoiceDocument, amount: Decimal) -> str:
    return format_money(amount, doc.currency, doc.locale)


def _header(doc: InvoiceDocument, lang: str, styles: Styles) -> Table:
    labels = LABELS[lang]
    tenant = [
        para(doc.tenant_name, styles.tenant),
        para(f"{tax_id_label(doc.tenant_country, labels['tax_id'])} {doc.tenant_tax_id}", styles.body),
        para(doc.tenant_address, styles.muted),
    ]
    facts = Table(
        [
            [para(labels["number"], styles.body), para(doc.invoice_number, styles.right_bold)],
            [para(labels["period"], styles.body), para(format_period(doc.period, lang), styles.right)],
            [para(labels["issued_on"], styles.body), para(format_short_date(doc.issued_on, lang), styles.right)],
            [para(labels["due_on"], styles.bold), para(format_short_date(doc.due_on, lang), styles.right_bold)],
            [para(labels["status"], styles.body), para(_STATUSES[lang].get(doc.status, doc.status), styles.right)],
        ],
        colWidths=[38 * mm, 42 * mm],
        style=TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, -2), 0.25, RULE),
                ("BACKGROUND", (0, 3), (-1, 3), LIGHT),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        ),
    )
    right = [para(labels["title"].upper(), styles.title), Spacer(1, 2 * mm), facts]
    return banner(tenant, right, left_width=CONTENT_WIDTH - 82 * mm, bottom_padding=3 * mm)


def _status_banner(doc: InvoiceDocument, lang: str, styles: Styles) -> list[Flowable]:
    """What the reader must do: pay (and how late it is), or nothing, with the paid or void mark saying why."""
    labels = LABELS[lang]
    if doc.status == "paid":
        lines = [labels["paid_note"]]
        if doc.paid_on is not None:
            lines.insert(0, labels["paid_on"].format(date=format_long_date(doc.paid_on, lang)))
        if doc.paid_channel:
            lines.append(labels["paid_by"].format(channel=_CHANNELS[lang].get(doc.paid_channel, doc.paid_channel)))
        return [_mark(labels["paid_mark"], lines, PAID, styles)]
    if doc.status == "void":
        lines = [labels["void_note"]]
        if doc.void_reason:
            lines.append(labels["void_reason"].format(reason=doc.void_reason))
        return [_mark(labels["void_mark"], lines, VOID, styles)]
    banner = Table(
        [
            [para(labels["amount_due_banner"], styles.bold), para(labels["pay_before"], styles.right_bold)],
            [
                para(_money(doc, doc.amount_due), styles.big),
                para(format_long_date(doc.due_on, lang), styles.big_right),
            ],
        ],
        colWidths=[CONTENT_WIDTH / 2] * 2,
        style=TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), LIGHT),
                ("BOX", (0, 0), (-1, -1), 1, ACCENT),
                ("LEFTPADDING", (0, 0), (-1, -1), 4 * mm),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4 * mm),
                ("TOPPADDING", (0, 0), (-1, 0), 2.5 * mm),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 2.5 * mm),
            ]
        ),
    )
    if doc.status != "overdue":
        return [banner]
    return [banner, Spacer(1, 2 * mm), para(labels["overdue_notice"], styles.warning)]


def _mark(title: str, lines: list[str], color: colors.Color, styles: Styles) -> Table:
    """A coloured box with a big word (PAGADA, ANULADA) and the facts behind it."""
    word = styles.big.clone("mark", textColor=color, fontSize=20, leading=24)
    return Table(
        [[para(title, word), [para(line, styles.bold) for line in lines]]],
        colWidths=[60 * mm, CONTENT_WIDTH - 60 * mm],
        style=TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.5, color),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 4 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5 * mm),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5 * mm),
            ]
        ),
    )


def _bank_stub(doc: InvoiceDocument, payment: PaymentRequest, lang: str, styles: Styles) -> list[Flowable]:
    """The tear-off part a bank keeps: who, which reference, how much, by when, and the barcode."""
    labels = LABELS[lang]
    third = CONTENT_WIDTH / 3
    details = Table(
        [
            [
                para(labels["holder"], styles.muted),
                para(labels["payment_reference"], styles.muted),
                para(labels["stub_amount"], styles.muted),
            ],
            [para(doc.customer_name, styles.bold), para(payment.reference, styles.bold), para(_money(doc, payment.amount), styles.big)],
            [para(labels["number"], styles.muted), para(labels["stub_pay_by"], styles.muted), ""],
            [para(doc.invoice_number, styles.body), para(format_short_date(payment.pay_by, lang), styles.bold), ""],
        ],
        colWidths=[third, third, third],
        style=TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                ("SPAN", (2, 1), (2, 3)),
                ("BACKGROUND", (2, 0), (2, -1), LIGHT),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 0.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5),
            ]
        ),
    )
    return [
        CutLine(CONTENT_WIDTH, f"- {labels['cut']} -"),
        para(f"{doc.tenant_name} · {labels['bank_copy']}", styles.bold),
        Spacer(1, 1 * mm),
        details,
        Spacer(1, 2 * mm),
        fitted_barcode(payment.barcode_human_readable, payment.barcode_element_string, CONTENT_WIDTH, _STUB_BAR_HEIGHT),
        Spacer(1, 1 * mm),
        para(labels["stub_instructions"], styles.muted),
    ]


def _boxed(title: str, rows: list[tuple[str, str, ParagraphStyle | None]], width: float, styles: Styles) -> Table:
    """A titled box of label/value rows; a row may carry its own value style."""
    data = [[para(title, styles.heading), ""]]
    data += [[para(label, styles.muted), para(value, style or styles.body)] for label, value, style in rows]
    return Table(
        data,
        colWidths=[30 * mm, width - 30 * mm],
        style=TableStyle(
            [
                ("SPAN", (0, 0), (-1, 0)),
                ("BACKGROUND", (0, 0), (-1, 0), PRIMARY),
                ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        ),
    )


def _stratum(stratum: str, lang: str) -> str:
    names = _STRATA[lang]
    return names["residential"].format(stratum) if stratum.isdigit() else names.get(stratum, stratum)


def _parties(doc: InvoiceDocument, lang: str, styles: Styles) -> Table:
    labels = LABELS[lang]
    column = (CONTENT_WIDTH - 4 * mm) / 2
    customer = _boxed(
        labels["customer"],
        [
            (labels["name"], doc.customer_name, None),
            (_ID_TYPE_NAMES.get(doc.customer_national_id_type, labels["national_id"]), doc.customer_national_id_display, None),
            (labels["billing_address"], doc.billing_address, None),
        ],
        column,
        styles,
    )
    contract = _boxed(
        labels["contract"],
        [
            (labels["contract_number"], doc.contract_number, None),
            (labels["service"], _SERVICES[lang].get(doc.service, doc.service), None),
            (labels["supply_address"], doc.supply_address, None),
            (labels["stratum"], _stratum(doc.stratum, lang), None),
        ],
        column,
        styles,
    )
    return _side_by_side(customer, contract, column)


def _side_by_side(left: Table, right: Table | Drawing, left_width: float) -> Table:
    return Table(
        [[left, "", right]],
        colWidths=[left_width, 4 * mm, CONTENT_WIDTH - left_width - 4 * mm],
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
            ]
        ),
    )


def _consumption(doc: InvoiceDocument, lang: str, styles: Styles) -> Table:
    labels = LABELS[lang]
    column = (CONTENT_WIDTH - 4 * mm) / 2
    previous = "—" if doc.previous_reading is None else format_number(doc.previous_reading, lang)
    current = format_number(doc.current_reading, lang)
    kind_mark = _READING_KINDS[lang].get(doc.reading_kind)
    if kind_mark:
        current = f"{current} {kind_mark}"
    flags = [_FLAGS[lang].get(flag, flag) for flag in doc.flags]
    readings = _boxed(
        labels["meter"],
        [
            (labels["meter_serial"], doc.meter_serial, None),
            (labels["previous_reading"], previous, None),
            (labels["current_reading"], current, styles.warning if kind_mark else None),
            (labels["consumption"], f"{format_number(doc.consumption, lang)} {doc.unit}", styles.bold),
            (labels["remarks"], "; ".join(flags) if flags else labels["no_remarks"], styles.warning if flags else None),
        ],
        column,
        styles,
    )
    readings.setStyle(TableStyle([("BACKGROUND", (0, 4), (-1, 4), LIGHT)]))
    chart_box = Table(
        [[para(f"{labels['history']} ({doc.unit})", styles.heading)], [_history_chart(doc, lang, column - 6)]],
        colWidths=[CONTENT_WIDTH - column - 4 * mm],
        style=TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), PRIMARY),
                ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        ),
    )
    return _side_by_side(readings, chart_box, column)


def _history_chart(doc: InvoiceDocument, lang: str, width: float) -> Drawing:
    height = 34 * mm
    drawing = Drawing(width, height)
    history = doc.history[-12:]
    if not history:
        drawing.add(
            String(width / 2, height / 2, LABELS[lang]["no_history"], fontName=FONT, fontSize=8,
                   fillColor=MUTED, textAnchor="middle")
        )
        return drawing
    values = [float(consumption) for _, consumption in history]
    chart = VerticalBarChart()
    chart.x, chart.y = 30, 22
    chart.width, chart.height = width - 36, height - 30
    chart.data = [values]
    chart.barSpacing = 1
    chart.groupSpacing = 4
    chart.bars[0].fillColor = colors.HexColor("#9DB7D5")
    chart.bars[0].strokeColor = None
    chart.bars[(0, len(values) - 1)].fillColor = PRIMARY
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(values) * 1.15 if max(values) > 0 else 1
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 6
    chart.valueAxis.labelTextFormat = lambda value: format_number(Decimal(str(value)), lang, 0)
    chart.valueAxis.strokeColor = RULE
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = colors.HexColor("#E3E8EF")
    chart.valueAxis.gridStrokeWidth = 0.4
    chart.categoryAxis.categoryNames = [format_period_short(period, lang) for period, _ in history]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 5.5
    chart.categoryAxis.labels.leading = 6.5
    chart.categoryAxis.labels.dy = -2
    chart.categoryAxis.strokeColor = RULE
    chart.categoryAxis.tickDown = 0
    drawing.add(chart)
    return drawing


def _charges(doc: InvoiceDocument, lang: str, styles: Styles) -> Table:
    labels = LABELS[lang]
    header = [
        para(labels["description"], styles.heading),
        para(labels["quantity"], styles.heading_right),
        para(labels["unit_price"], styles.heading_right),
        para(labels["amount"], styles.heading_right),
    ]
    rows = [header]
    for line in doc.lines:
        quantity = ""
        if line.quantity is not None:
            quantity = format_number(line.quantity, lang)
            if line.kind == "consumption":
                quantity = f"{quantity} {doc.unit}"
        unit_price = "" if line.unit_price is None else format_unit_price(line.unit_price, doc.currency, lang)
        rows.append(
            [
                para(describe_line(line.description, lang), styles.body),
                para(quantity, styles.right),
                para(unit_price, styles.right),
                para(_money(doc, line.amount), styles.right),
            ]
        )
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), PRIMARY),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    style += [("BACKGROUND", (0, row), (-1, row), ZEBRA) for row in range(2, len(rows), 2)]
    table = Table(rows, colWidths=[None, 30 * mm, 32 * mm, 32 * mm], repeatRows=1, style=TableStyle(style))
    return Table(
        [[para(labels["charges"], styles.bold)], [table]],
        colWidths=[CONTENT_WIDTH],
        style=TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]),
    )


def _totals(doc: InvoiceDocument, lang: str, styles: Styles) -> Table:
    labels = LABELS[lang]
    rows = [
        [para(labels["subtotal"], styles.bold), para(_money(doc, doc.subtotal), styles.right_bold)],
        [para(labels["tax"], styles.bold), para(_money(doc, doc.tax), styles.right_bold)],
        [para(labels["total"], styles.bold), para(_money(doc, doc.total), styles.right_bold)],
    ]
    # Paid and void invoices ask for nothing: no amount-to-pay line.
    if doc.status not in ("paid", "void"):
        rows.append([para(labels["amount_due"], styles.big), para(_money(doc, doc.amount_due), styles.big_right)])
    style = [
        ("LINEBELOW", (0, 0), (-1, 1), 0.25, RULE),
        ("LINEABOVE", (0, 2), (-1, 2), 0.75, PRIMARY),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    if len(rows) == 4:
        style += [
            ("BACKGROUND", (0, 3), (-1, 3), LIGHT),
            ("BOX", (0, 3), (-1, 3), 1, ACCENT),
            ("TOPPADDING", (0, 3), (-1, 3), 2 * mm),
            ("BOTTOMPADDING", (0, 3), (-1, 3), 2 * mm),
        ]
    totals = Table(rows, colWidths=[45 * mm, 45 * mm], style=TableStyle(style))
    totals.hAlign = "RIGHT"
    return totals

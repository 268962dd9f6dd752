"""Tests for the invoice PDF renderer: text content, locales and edge cases."""

from dataclasses import replace
from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader

from domain.invoice_pdf import DocLine, InvoiceDocument, render_invoice_pdf


def sample_invoice(**overrides: object) -> InvoiceDocument:
    """A CLP electricity invoice matching the calculator cross-check (total 20870)."""
    doc = InvoiceDocument(
        tenant_name="Energía del Sur S.A.",
        tenant_tax_id="96.505.760-9",
        tenant_address="Av. Libertador Bernardo O'Higgins 1449, Santiago",
        currency="CLP",
        locale="es",
        invoice_number="FAC-2026-000123",
        period="2026-10",
        issued_on=date(2026, 11, 1),
        due_on=date(2026, 11, 16),
        status="issued",
        customer_name="José Pérez Ñuñez",
        customer_national_id_display="12.345.678-5",
        billing_address="Los Aromos 245, Depto. 3B, Ñuñoa",
        contract_number="CT-0042-7781",
        service="electricity",
        unit="kWh",
        supply_address="Los Aromos 245, Depto. 3B, Ñuñoa",
        stratum="3",
        meter_serial="MTR-99812",
        previous_reading=Decimal(12400),
        current_reading=Decimal(12500),
        reading_kind="estimated",
        consumption=Decimal(100),
        flags=("high",),
        lines=(
            DocLine("fixed", "Cargo fijo", None, None, Decimal(1033)),
            DocLine("consumption", "Energía consumida", Decimal(100), Decimal("160.55"), Decimal(16055)),
            DocLine("fixed", "Cargo por servicio público", None, None, Decimal(450)),
            DocLine("tax", "IVA 19 %", None, None, Decimal(3332)),
        ),
        subtotal=Decimal(17538),
        tax=Decimal(3332),
        total=Decimal(20870),
        amount_due=Decimal(20870),
        history=tuple(
            (f"{2025 + (month // 12)}-{month % 12 + 1:02d}", Decimal(value))
            for month, value in zip(range(10, 22), (31, 28, 35, 40, 38, 36, 33, 30, 29, 34, 37, 100))
        ),
    )
    return replace(doc, **overrides)


def pdf_text(data: bytes) -> str:
    """Extract the text of every page with pypdf."""
    reader = PdfReader(BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_renders_a_pdf() -> None:
    data = render_invoice_pdf(sample_invoice())
    assert data.startswith(b"%PDF")
    assert len(PdfReader(BytesIO(data)).pages) == 1


def test_spanish_invoice_shows_the_key_facts() -> None:
    text = pdf_text(render_invoice_pdf(sample_invoice()))
    for expected in (
        "FAC-2026-000123",
        "José Pérez Ñuñez",
        "CT-0042-7781",
        "$20.870",
        "16/11/2026",
        "16 de noviembre de 2026",
        "(estimada)",
        "Consumo alto",
        "Octubre 2026",
        "Fecha de vencimiento",
        "Total a pagar",
        "$160,55",
        "100 kWh",
        "Energía del Sur S.A.",
        "Estrato 3",
    ):
        assert expected in text, expected


def test_english_labels_and_money() -> None:
    doc = sample_invoice(locale="en", currency="USD", total=Decimal("1520.50"), amount_due=Decimal("1520.50"))
    text = pdf_text(render_invoice_pdf(doc))
    for expected in ("Invoice No.", "Due date", "Amount due", "(estimated)", "High consumption", "$1,520.50",
                     "Nov 16, 2026", "October 2026"):
        assert expected in text, expected
    assert "Fecha de vencimiento" not in text


def test_portuguese_labels_and_money() -> None:
    doc = sample_invoice(
        locale="pt", currency="BRL", total=Decimal("1520.50"), amount_due=Decimal("1520.50"),
        flags=("rollover", "zero"), service="water", unit="m3",
    )
    text = pdf_text(render_invoice_pdf(doc))
    for expected in ("Fatura n.º", "Data de vencimento", "R$ 1.520,50", "(estimada)", "Virada do medidor",
                     "Consumo zero", "Água", "Outubro 2026"):
        assert expected in text, expected


def test_actual_reading_has_no_mark_and_no_flags_says_so() -> None:
    text = pdf_text(render_invoice_pdf(sample_invoice(reading_kind="actual", flags=())))
    assert "(estimada)" not in text
    assert "Sin observaciones" in text


def test_empty_history_and_first_reading_still_render() -> None:
    data = render_invoice_pdf(sample_invoice(history=(), previous_reading=None))
    assert data.startswith(b"%PDF")
    assert "Sin historial de consumo" in pdf_text(data)


def test_all_zero_history_renders() -> None:
    history = (("2026-09", Decimal(0)), ("2026-10", Decimal(0)))
    assert render_invoice_pdf(sample_invoice(history=history, consumption=Decimal(0))).startswith(b"%PDF")


def test_markup_characters_in_names_are_escaped() -> None:
    text = pdf_text(render_invoice_pdf(sample_invoice(customer_name="Pérez & Hijos <Ltda>")))
    assert "Pérez & Hijos <Ltda>" in text


@pytest.mark.parametrize("count", [0, 40])
def test_any_number_of_lines_renders(count: int) -> None:
    lines = tuple(DocLine("adjustment", f"Ajuste {i}", None, None, Decimal(-10)) for i in range(count))
    data = render_invoice_pdf(sample_invoice(lines=lines))
    assert data.startswith(b"%PDF")
    if count:
        assert "Ajuste 39" in pdf_text(data)


def test_paid_invoice_shows_the_mark_and_asks_for_nothing() -> None:
    text = pdf_text(render_invoice_pdf(sample_invoice(
        status="paid", amount_due=Decimal(0), paid_on=date(2026, 11, 10), paid_channel="card"
    )))
    for expected in ("PAGADA", "Pagada el 10 de noviembre de 2026", "Canal de pago: pago en línea", "Total factura"):
        assert expected in text, expected
    for absent in ("Total a pagar", "Pague antes del", "suspensión", "Desprendible para el banco"):
        assert absent not in text, absent


def test_void_invoice_shows_the_reason() -> None:
    text = pdf_text(render_invoice_pdf(sample_invoice(status="void", amount_due=Decimal(0), void_reason="Lectura errada")))
    assert "ANULADA" in text and "Motivo: Lectura errada" in text and "no debe pagarse" in text
    assert "Total a pagar" not in text and "Pague antes del" not in text


@pytest.mark.parametrize(
    ("locale", "notice", "absent"),
    [
        ("es", "Factura vencida: su pago no se ha registrado.", "Overdue"),
        ("en", "Overdue: we have not received your payment.", "Factura vencida"),
        ("pt", "Fatura vencida: seu pagamento não foi registrado.", "Overdue"),
    ],
)
def test_overdue_invoice_carries_the_arrears_notice(locale: str, notice: str, absent: str) -> None:
    text = pdf_text(render_invoice_pdf(sample_invoice(status="overdue", locale=locale)))
    assert notice in text and absent not in text


def test_issued_invoice_has_no_overdue_notice() -> None:
    assert "Factura vencida" not in pdf_text(render_invoice_pdf(sample_invoice()))


@pytest.mark.parametrize("locale", ["es", "en", "pt"])
@pytest.mark.parametrize(("id_type", "display"), [("nit", "900.123.456-7"), ("cc", "1.020.304.050"), ("cpf", "123.456.789-09")])
def test_id_labels_follow_the_id_type_not_the_locale(locale: str, id_type: str, display: str) -> None:
    doc = sample_invoice(locale=locale, customer_national_id_type=id_type, customer_national_id_display=display,
                         tenant_country="CO", tenant_tax_id="900.555.111-2")
    text = pdf_text(render_invoice_pdf(doc))
    assert f"{id_type.upper()} {display}" in text.replace("\n", " ") or f"{id_type.upper()}{display}" in text
    assert "NIT 900.555.111-2" in text
    if id_type != "cpf":
        assert "CPF" not in text and "CNPJ" not in text


EVERY_KIND = (
    DocLine("fixed", "Cargo fijo", None, None, Decimal(3580)),
    DocLine("consumption", "Consumo 0-173 kWh", Decimal(173), Decimal("160.55"), Decimal(27775)),
    DocLine("consumption", "Consumo > 173 kWh", Decimal("26839.533"), Decimal("160.55"), Decimal(4309091)),
    DocLine("subsidy", "Subsidio estrato 1 (-60 %)", None, None, Decimal(-16665)),
    DocLine("adjustment", "Saldo anterior", None, None, Decimal(629790)),
    DocLine("late_fee", "Intereses de mora", None, None, Decimal(12596)),
    DocLine("tax", "IVA 19 %", None, None, Decimal(3332)),
    DocLine("rounding", "Redondeo", None, None, Decimal(-2)),
)


@pytest.mark.parametrize(
    ("locale", "expected", "absent"),
    [
        ("es", ["Cargo fijo", "Consumo 0-173 kWh", "Consumo superior a 173 kWh", "Subsidio estrato 1 (-60 %)",
                "Saldo anterior", "Intereses de mora", "Redondeo", "26.839,533 kWh", "$629.790", "$160,55",
                "Total a pagar", "Pague antes del", "16 de noviembre de 2026", "CC 12.345.678"],
         ["Consumption", "COP"]),
        ("en", ["Fixed charge", "Consumption 0-173 kWh", "Consumption above 173 kWh", "Subsidy, stratum 1 (-60 %)",
                "Previous balance", "Late-payment interest", "Rounding", "26,839.533 kWh", "COP 629,790",
                "COP 160.55", "Amount due", "Please pay by", "November 16, 2026", "CC 12.345.678"],
         ["Cargo fijo", "Saldo anterior", "Redondeo", "$629"]),
        ("pt", ["Tarifa fixa", "Consumo 0-173 kWh", "Consumo acima de 173 kWh", "Subsídio, estrato 1 (-60 %)",
                "Saldo anterior", "Juros de mora", "Arredondamento", "26.839,533 kWh", "COP 629.790",
                "COP 160,55", "Total a pagar", "Pague até", "16 de novembro de 2026", "CC 12.345.678"],
         ["Cargo fijo", "Intereses", "CPF", "CNPJ"]),
    ],
)
def test_every_line_kind_in_every_locale(locale: str, expected: list[str], absent: list[str]) -> None:
    doc = sample_invoice(locale=locale, currency="COP", lines=EVERY_KIND, customer_national_id_type="cc",
                         customer_national_id_display="12.345.678", tenant_country="CO")
    # Table cells come out on their own lines; one space between words compares what a reader sees.
    text = " ".join(pdf_text(render_invoice_pdf(doc)).split())
    for fact in expected:
        assert fact in text, fact
    for fact in absent:
        assert fact not in text, fact

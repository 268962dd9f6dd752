"""Tests for the coupon PDF renderer and its GS1-128 barcode."""

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader

from domain.coupon_codes import build_gs1_128, code128_input
from domain.coupon_pdf import CouponDocument, CouponInvoiceRow, render_coupon_pdf

START_A, START_B, START_C, FNC1, STOP = 103, 104, 105, 102, 106
GS = "\x1d"
BOGOTA = timezone(timedelta(hours=-5))


def element_string(gln: str, reference: str, amount: str, due: str) -> str:
    """Build the GS1 element string the way the coupon module does: GS after each variable-length field."""
    return f"415{gln}8020{reference}{GS}3900{amount}{GS}96{due}"


def sample_coupon(**overrides: object) -> CouponDocument:
    """A COP coupon paying two invoices from two contracts of the same customer."""
    gln, reference, amount, due = "7709998001234", "100000123", "152050", "20261116"
    doc = CouponDocument(
        tenant_name="Aguas de la Sabana E.S.P.",
        tenant_gln=gln,
        currency="COP",
        locale="es",
        reference=reference,
        amount=Decimal(amount),
        expires_at=datetime(2026, 11, 16, 23, 59, tzinfo=BOGOTA),
        due_on=date(2026, 11, 16),
        holder_name="María Fernanda Gómez Ñáñez",
        invoices=(
            CouponInvoiceRow("FAC-2026-000123", "CT-0042-7781", "2026-10", Decimal(98050)),
            CouponInvoiceRow("FAC-2026-000456", "CT-0042-9910", "2026-10", Decimal(54000)),
        ),
        barcode_human_readable=f"(415){gln}(8020){reference}(3900){amount}(96){due}",
        barcode_element_string=element_string(gln, reference, amount, due),
    )
    return replace(doc, **overrides)


def pdf_text(data: bytes) -> str:
    """Extract the text of every page with pypdf."""
    reader = PdfReader(BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def decode_code128(symbols: list[int]) -> str:
    """Independent Code 128 decoder: checks start, checksum and stop, returns data with FNC1 as GS."""
    assert symbols[-1] == STOP
    *body, checksum = symbols[:-1]
    assert checksum == (body[0] + sum(i * value for i, value in enumerate(body[1:], start=1))) % 103
    code_set = {START_A: "A", START_B: "B", START_C: "C"}[body[0]]
    out = []
    for value in body[1:]:
        if value == FNC1:
            out.append(GS)
        elif code_set == "C" and value < 100:
            out.append(f"{value:02d}")
        elif code_set != "C" and value < 96:
            out.append(chr(value + 32) if code_set == "B" or value < 64 else chr(value - 64))
        elif value == 99:
            code_set = "C"
        elif value == 100 and code_set != "B":
            code_set = "B"
        elif value == 101 and code_set != "A":
            code_set = "A"
        else:
            raise AssertionError(f"unexpected symbol {value} in set {code_set}")
    return "".join(out)


def symbols_for(element: str) -> list[int]:
    """Return the Code 128 symbol values reportlab encodes for an element string."""
    barcode = build_gs1_128(element, bar_width=1, bar_height=10)
    barcode.validate()
    return barcode.encode()


def test_symbol_starts_with_start_c_then_fnc1() -> None:
    symbols = symbols_for(sample_coupon().barcode_element_string)
    assert symbols[:2] == [START_C, FNC1]
    assert symbols[2:4] == [41, 57]  # "41" "57": AI 415 begins in double-density digits
    assert symbols[-1] == STOP


def test_symbol_decodes_back_to_the_element_string() -> None:
    element = sample_coupon().barcode_element_string
    assert decode_code128(symbols_for(element)) == GS + element


@pytest.mark.parametrize("reference_length", range(1, 21))
@pytest.mark.parametrize("amount", ["5", "87", "20870", "152051", "123456789012"])
def test_every_field_length_round_trips(reference_length: int, amount: str) -> None:
    reference = "1234567890" * 2
    element = element_string("7709998001234", reference[:reference_length], amount, "20261116")
    symbols = symbols_for(element)
    assert symbols[:2] == [START_C, FNC1]
    assert decode_code128(symbols) == GS + element


def test_code128_input_maps_separators_to_fnc1() -> None:
    assert code128_input(f"8020123{GS}390050") == "\xf18020123\xf1390050"
    assert code128_input(f"{GS}8020123{GS}") == "\xf18020123"


@pytest.mark.parametrize("bad", ["", "8020ñ", "8020\n12"])
def test_code128_input_rejects_what_gs1_cannot_carry(bad: str) -> None:
    with pytest.raises(ValueError):
        code128_input(bad)


def test_renders_a_pdf_with_the_payment_facts() -> None:
    doc = sample_coupon()
    data = render_coupon_pdf(doc)
    assert data.startswith(b"%PDF")
    assert len(PdfReader(BytesIO(data)).pages) == 1
    text = pdf_text(data)
    for expected in (
        doc.reference,
        "$152.050",
        doc.barcode_human_readable,
        "FAC-2026-000123",
        "FAC-2026-000456",
        "CT-0042-9910",
        "María Fernanda Gómez Ñáñez",
        "16 de noviembre de 2026",
        "16/11/2026 23:59 (UTC-05:00)",
        "Cupón de pago".upper(),
    ):
        assert expected in text, expected


def test_english_and_portuguese_labels() -> None:
    english = pdf_text(render_coupon_pdf(sample_coupon(locale="en", currency="USD", amount=Decimal("1520.5"))))
    assert "Payment reference" in english and "$1,520.50" in english
    portuguese = pdf_text(render_coupon_pdf(sample_coupon(locale="pt", currency="BRL", amount=Decimal("1520.5"))))
    assert "Referência de pagamento" in portuguese and "R$ 1.520,50" in portuguese


def test_many_invoices_still_render() -> None:
    rows = tuple(CouponInvoiceRow(f"FAC-2026-{i:06d}", "CT-1", "2026-10", Decimal(1000)) for i in range(30))
    text = pdf_text(render_coupon_pdf(sample_coupon(invoices=rows)))
    assert "FAC-2026-000029" in text


def test_naive_expiry_is_refused() -> None:
    with pytest.raises(ValueError):
        render_coupon_pdf(sample_coupon(expires_at=datetime(2026, 11, 16, 23, 59)))


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("es", ["CUPÓN DE PAGO", "Referencia de pago", "Valor a pagar", "$152.050", "$98.050", "16 de noviembre de 2026",
                "Desprendible para el banco", "Octubre 2026"]),
        ("en", ["PAYMENT SLIP", "Payment reference", "Amount to pay", "COP 152,050", "COP 98,050", "November 16, 2026",
                "Bank copy", "October 2026"]),
        ("pt", ["GUIA DE PAGAMENTO", "Referência de pagamento", "Valor a pagar", "COP 152.050", "COP 98.050",
                "16 de novembro de 2026", "Via do banco", "Outubro 2026"]),
    ],
)
def test_coupon_in_every_locale(locale: str, expected: list[str]) -> None:
    text = " ".join(pdf_text(render_coupon_pdf(sample_coupon(locale=locale))).split())
    for fact in expected:
        assert fact in text, fact

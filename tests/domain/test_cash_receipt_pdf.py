"""The cash receipt speaks the tenant's language and formats money for the currency."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from domain.cash_receipt_pdf import CashReceiptDocument, CashReceiptInvoice, render_cash_receipt_pdf


def _text(pdf: bytes) -> str:
    return " ".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())


def _document(**overrides: object) -> CashReceiptDocument:
    values: dict[str, object] = {
        "tenant_name": "Energia do Vale S.A.", "tenant_tax_id": "11.222.333/0001-81", "tenant_country": "BR", "locale": "pt",
        "currency": "BRL", "payment_id": 77, "reference": "4818305526094617", "amount": Decimal("1520.50"),
        "office": "Agência Centro", "received_at": datetime(2026, 12, 6, 9, 30, tzinfo=ZoneInfo("America/Sao_Paulo")),
        "customer_name": "João Silva", "cashier": None,
        "invoices": (CashReceiptInvoice("FAT-2026-000001", "500100", "2026-11", Decimal("1520.50")),),
    }
    values.update(overrides)
    return CashReceiptDocument(**values)  # type: ignore[arg-type]


def test_portuguese_receipt_with_reais_and_the_cnpj() -> None:
    text = _text(render_cash_receipt_pdf(_document()))
    assert "RECIBO DE PAGAMENTO EM DINHEIRO" in text and "Recibo n.º 77" in text
    assert "CNPJ 11.222.333/0001-81" in text and "Agência Centro" in text and "Escritório" in text
    assert "R$1.520,50" in text.replace(" ", "") and "Novembro 2026" in text
    assert "06/12/2026 09:30 (UTC-03:00)" in text and "Atendido por" not in text


def test_english_receipt_marks_a_reversal() -> None:
    reversed_at = datetime(2026, 12, 7, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    text = _text(render_cash_receipt_pdf(_document(locale="en", cashier="Carla", reversed_at=reversed_at)))
    assert "CASH PAYMENT RECEIPT" in text and "Amount received" in text
    assert "Served by" in text and "Carla" in text
    assert "PAYMENT REVERSED on Dec 7, 2026 10:00 (UTC-03:00)" in text
    assert "BRL" in text and "1,520.50" in text

"""The printed invoice is a payment document: its barcode, scanned off the PDF, pays exactly that invoice at a bank."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import BytesIO
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import collection_controller
from controllers.billing_run_controller import run_period
from controllers.coupon_controller import invoice_payable_amount
from domain.coupon_codes import coupon_fields, invoice_reference, luhn_is_valid
from models.billing_model import Invoice
from models.payment_model import Payment
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import ApiClient
from tests.domain.test_barcode_scan import decode, pdf_page_png
from tests.payment_builders import fresh, make_debtor

DUE = date(2099, 1, 15)


def pdf_text(data: bytes) -> str:
    """Every page's text, as pypdf extracts it."""
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


async def invoice_pdf(client: ApiClient, invoice_id: int) -> bytes:
    """The invoice's PDF as staff download it."""
    response = await client.get(f"/api/v1/invoices/{invoice_id}/pdf")
    assert response.status_code == 200
    return await response.get_data()


async def test_scanned_invoice_barcode_pays_that_invoice_once(
    admin_client: ApiClient, session: AsyncSession, tenant: Tenant, tmp_path: Path
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)
    first, second = debtor.invoices
    assert first.payment_reference == invoice_reference(first.number) and luhn_is_valid(first.payment_reference)
    assert len(first.payment_reference) == 14 and first.payment_reference != second.payment_reference

    pdf = await invoice_pdf(admin_client, first.id)
    scans = [result for page in range(1, len(PdfReader(BytesIO(pdf)).pages) + 1)
             for result in decode(pdf_page_png(pdf, tmp_path / str(page), page=page))]
    assert len(scans) == 1
    gln, reference, amount, due_on = coupon_fields(scans[0].bytes.decode("ascii"))
    expected_amount = invoice_payable_amount(tenant, first)
    assert (gln, reference, amount, due_on) == (tenant.gln, first.payment_reference, expected_amount, DUE)
    assert scans[0].text == f"(415){tenant.gln}(8020){reference}(3900){expected_amount}(96)20990115"
    text = pdf_text(pdf)
    assert reference in text and "Desprendible para el banco" in text and "Total a pagar" in text

    _key, raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco de Bogotá")
    auth = {"Authorization": f"Bearer {raw}"}
    payload = {"reference": reference, "amount": str(amount), "paid_at": "2026-11-10T10:30:00-05:00"}
    wrong = await admin_client.post("/api/v1/collections", json=dict(payload, amount=str(amount + 1)), headers=auth)
    assert wrong.status_code == 422 and (await wrong.get_json())["code"] == "amount_mismatch"
    created = await admin_client.post("/api/v1/collections", json=payload, headers=auth)
    assert created.status_code == 201, await created.get_data(as_text=True)
    receipt = await created.get_json()
    assert (receipt["reference"], receipt["amount"]) == (reference, str(amount))
    repeat = await admin_client.post("/api/v1/collections", json=payload, headers=auth)
    assert repeat.status_code == 200 and await repeat.get_json() == receipt

    paid = await fresh(session, Invoice, first.id)
    untouched = await fresh(session, Invoice, second.id)
    assert (paid.status, paid.amount_due) == ("paid", Decimal(0))
    assert (untouched.status, untouched.amount_due) == ("issued", Decimal(12000))
    payments = await session.scalar(select(func.count()).select_from(Payment).where(Payment.customer_id == debtor.customer.id))
    assert payments == 1

    # The same invoice's reference again, as a new report after it is paid: refused, nothing paid twice.
    again = await admin_client.post("/api/v1/collections", json=dict(payload, paid_at="2026-11-11T10:30:00-05:00"), headers=auth)
    assert again.status_code == 200 and await again.get_json() == receipt

    paid_pdf = await invoice_pdf(admin_client, first.id)
    text = pdf_text(paid_pdf)
    assert "PAGADA" in text and "Pagada el 10 de noviembre de 2026" in text and "Canal de pago: banco" in text
    assert "Total a pagar" not in text and "Pague antes del" not in text and reference not in text
    assert decode(pdf_page_png(paid_pdf, tmp_path / "paid")) == []


async def test_unknown_reference_is_still_a_404(admin_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    _key, raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco")
    response = await admin_client.post(
        "/api/v1/collections",
        json={"reference": "00000000000000", "amount": "1000", "paid_at": "2026-11-10T10:30:00-05:00"},
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 404 and (await response.get_json())["code"] == "coupon_not_found"


async def test_the_bill_run_gives_each_invoice_its_reference(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    await make_metered_contract(session, tenant, readings={"2026-10": (100, 100)}, name="Ana Gómez")
    await make_metered_contract(session, tenant, readings={"2026-10": (100, 120)}, name="Luis Díaz")
    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    rows = (await session.execute(select(Invoice.number, Invoice.payment_reference).where(Invoice.tenant_id == tenant.id))).all()
    assert len(rows) == 2
    assert all(reference == invoice_reference(number) for number, reference in rows)

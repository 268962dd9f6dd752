"""A Chilean and a Brazilian utility each run the whole flow: customer, tariff, readings, bill run,
invoice PDF in the tenant's language, quick-pay coupon and card payment, with the country's ID and money."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import billing_run_controller, tenant_controller
from models.billing_model import Invoice
from tests.billing_builders import tariff_fields
from tests.conftest import ApiClient, make_user


@dataclass(frozen=True)
class Country:
    code: str
    tenant_code: str
    gln: str
    legal_id: str
    id_type: str
    national_id: str
    national_id_display: str
    invoice_title: str
    tax_label: str
    # The invoice total as the PDF prints it: the locale's symbol, grouping and decimals.
    money_pattern: str


CHILE = Country(
    code="CL", tenant_code="aguas-sur", gln="7800000000009", legal_id="76086428-5",
    id_type="rut", national_id="12345678-5", national_id_display="12.345.678-5",
    invoice_title="FACTURA DE SERVICIOS PÚBLICOS", tax_label="RUT", money_pattern="$",
)
BRAZIL = Country(
    code="BR", tenant_code="energia-sul", gln="7890000000000", legal_id="11.222.333/0001-81",
    id_type="cpf", national_id="529.982.247-25", national_id_display="529.982.247-25",
    invoice_title="FATURA DE SERVIÇOS PÚBLICOS", tax_label="CNPJ", money_pattern="R$",
)


async def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data(as_text=True)
    return await response.get_json()


@pytest.mark.parametrize("country", [CHILE, BRAZIL], ids=["CL", "BR"])
async def test_a_tenant_of_the_country_bills_and_collects(app: Quart, session: AsyncSession, country: Country) -> None:
    tenant = await tenant_controller.create_tenant(
        session=session, code=country.tenant_code, name=f"Utility {country.code}", country=country.code,
        gln=country.gln, legal_id=country.legal_id,
    )
    headers = {"X-Tenant-ID": country.tenant_code}
    admin_user = await make_user(app, role="admin", tenant_code=country.tenant_code)
    admin = ApiClient(app)
    await _ok(await admin.login(admin_user.email, headers=headers), 200)

    tariff = tariff_fields("electricity", currency=tenant.currency, name=f"Tarifa {country.code}")
    await _ok(await admin.post("/api/v1/tariffs", json=tariff))
    customer = await _ok(await admin.post("/api/v1/customers", json={
        "name": "Joana Silva", "national_id_type": country.id_type, "national_id": country.national_id,
    }))
    assert customer["national_id"] == "".join(c for c in country.national_id_display if c.isdigit())
    contract = await _ok(await admin.post("/api/v1/contracts", json={
        "contract_number": f"{country.code}-1001", "customer_id": customer["id"], "service": "electricity",
        "supply_address": "Rua das Flores 10", "stratum": "3",
    }))
    meter = await _ok(await admin.post("/api/v1/meters", json={
        "serial": f"{country.code}-M1", "contract_id": contract["id"], "installed_on": "2026-01-01",
    }))
    for period, value in (("2026-10", 1000), ("2026-11", 1180)):
        await _ok(await admin.post(f"/api/v1/meters/{meter['id']}/readings", json={"period": period, "value": value}))

    async with app.extensions["cuponera"].sql.session_scope(write=True) as writer:
        run = await billing_run_controller.run_period(
            session=writer, tenant=await tenant_controller.get_tenant_by_code(session=writer, code=country.tenant_code),
            period="2026-11", today=date(2026, 12, 1),
        )
    assert (run.billed, run.failed) == (1, 0)
    invoice = await session.scalar(select(Invoice).where(Invoice.tenant_id == tenant.id, Invoice.period == "2026-11"))
    assert invoice is not None and invoice.currency == tenant.currency
    if tenant.currency == "CLP":
        assert invoice.total == invoice.total.to_integral_value()  # pesos have no cents

    pdf = await admin.get(f"/api/v1/invoices/{invoice.id}/pdf")
    assert pdf.status_code == 200
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(await pdf.get_data())).pages)
    assert country.invoice_title in text
    assert f"{country.tax_label} {tenant.legal_id}" in text
    assert country.national_id_display in text
    assert country.money_pattern in text

    anonymous = ApiClient(app)
    coupon = await _ok(await anonymous.post(
        "/api/v1/coupons", json={"contract_number": f"{country.code}-1001"}, headers=headers
    ))
    assert (coupon["currency"], Decimal(coupon["amount"])) == (tenant.currency, invoice.total)
    assert coupon["barcode"]["human_readable"].startswith(f"(415){country.gln}")
    payment = await _ok(await anonymous.post(
        "/api/v1/payments", json={"coupon_reference": coupon["reference"], "card_token": "tok_approved"},
        headers={**headers, "Idempotency-Key": f"pay-{country.code}"},
    ))
    assert (payment["status"], Decimal(payment["amount"]), payment["currency"]) == (
        "approved", invoice.total, tenant.currency
    )
    paid = await _ok(await admin.get(f"/api/v1/invoices/{invoice.id}"), 200)
    assert (paid["status"], paid["payment_id"]) == ("paid", payment["id"]), paid

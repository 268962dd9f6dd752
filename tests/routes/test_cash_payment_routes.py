"""Office cash payments: recorded once per Idempotency-Key, settled like a bank collection, printed, reversed, reported."""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.money_format import format_money
from models.billing_model import Invoice
from models.payment_model import Coupon, Payment, PaymentAllocation
from models.tenant_model import Tenant
from tests.conftest import TEST_PASSWORD, ApiClient, logged_in_client, make_user
from tests.factories import make_customer_user
from tests.payment_builders import Debtor, coupon_status, fresh, make_coupon, make_debtor

# Due dates far ahead, so coupons made "now" in these tests are valid until then.
DUE = date(2099, 1, 15)
OTHER = "aguas-sur"


@pytest.fixture
async def debtor(session: AsyncSession, tenant: Tenant) -> Debtor:
    return await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)


@pytest.fixture
async def operator(app: Quart) -> ApiClient:
    return await logged_in_client(app, "operator", full_name="Carla Cajera")


async def coupon_reference(session: AsyncSession, tenant: Tenant, debtor: Debtor) -> str:
    view = await make_coupon(session, tenant, debtor, now=datetime.now(ZoneInfo("UTC")))
    return view.coupon.reference


async def pay_cash(client: ApiClient, key: str | None = "cash-1", **body: Any) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post("/api/v1/cash-payments", json={"office": "Sede Centro", **body}, headers=headers)


async def pdf_text(response: Any) -> str:
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert response.content_type == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(await response.get_data())).pages)
    return " ".join(text.split())  # lines wrap where the layout says; words stay


async def settlements(session: AsyncSession, coupon_id: int) -> int:
    await session.rollback()  # a fresh read snapshot
    count = await session.scalar(
        select(func.count()).select_from(PaymentAllocation).join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(Payment.coupon_id == coupon_id, PaymentAllocation.kind == "invoice")
    )
    return int(count or 0)


async def test_cash_for_a_coupon_settles_its_invoices_once(
    operator: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    first = await pay_cash(operator, coupon_reference=reference, amount="97000")
    assert first.status_code == 201, await first.get_data(as_text=True)
    assert first.headers["Idempotent-Replayed"] == "false"
    payment = await first.get_json()
    assert (payment["channel"], payment["status"], payment["amount"], payment["currency"]) == ("cash", "approved", "97000", "COP")
    assert (payment["coupon_reference"], payment["office"]) == (reference, "Sede Centro")
    assert payment["receipt_url"] == f"/api/v1/cash-payments/{payment['id']}/receipt.pdf"
    stored = await fresh(session, Payment, payment["id"])
    assert (stored.channel, stored.office, stored.status) == ("cash", "Sede Centro", "approved")  # type: ignore[attr-defined]
    for invoice in debtor.invoices:
        assert (await fresh(session, Invoice, invoice.id)).status == "paid"  # type: ignore[attr-defined]
    assert await coupon_status(session, reference) == "paid"

    replay = await pay_cash(operator, coupon_reference=reference, amount="97000")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.get_json() == payment
    coupon_id = stored.coupon_id  # type: ignore[attr-defined]
    assert await settlements(session, coupon_id) == 2  # one allocation per invoice, not four
    assert await session.scalar(select(func.count()).select_from(Payment).where(Payment.coupon_id == coupon_id)) == 1

    reused = await pay_cash(operator, coupon_reference=reference, amount="97000", office="Sede Norte")
    assert reused.status_code == 422 and (await reused.get_json())["code"] == "idempotency_key_reused"
    again = await pay_cash(operator, key="cash-2", coupon_reference=reference, amount="97000")
    assert again.status_code == 409 and (await again.get_json())["code"] == "already_paid"
    missing_key = await pay_cash(operator, key=None, coupon_reference=reference, amount="97000")
    assert missing_key.status_code == 400 and (await missing_key.get_json())["code"] == "idempotency_key_required"


async def test_cash_for_an_invoice_id(operator: ApiClient, session: AsyncSession, debtor: Debtor) -> None:
    first, second = debtor.invoices
    response = await pay_cash(operator, invoice_id=first.id, amount="85000.00")
    assert response.status_code == 201, await response.get_data(as_text=True)
    payment = await response.get_json()
    assert (payment["channel"], payment["status"], payment["amount"]) == ("cash", "approved", "85000")
    assert (await fresh(session, Invoice, first.id)).status == "paid"  # type: ignore[attr-defined]
    assert (await fresh(session, Invoice, second.id)).status == "issued"  # type: ignore[attr-defined]
    coupon = await session.scalar(select(Coupon).where(Coupon.reference == payment["coupon_reference"]))
    assert coupon is not None and (coupon.creator_kind, coupon.status) == ("staff", "paid")
    again = await pay_cash(operator, key="cash-2", invoice_id=first.id, amount="85000")
    assert again.status_code == 409 and (await again.get_json())["code"] == "already_paid"
    replay = await pay_cash(operator, invoice_id=first.id, amount="85000")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert (await replay.get_json())["id"] == payment["id"]


async def test_cash_for_an_invoice_reference_like_a_bank(operator: ApiClient, session: AsyncSession, debtor: Debtor) -> None:
    invoice = debtor.invoices[1]
    assert invoice.payment_reference
    response = await pay_cash(operator, coupon_reference=invoice.payment_reference, amount="12000")
    assert response.status_code == 201, await response.get_data(as_text=True)
    assert (await fresh(session, Invoice, invoice.id)).status == "paid"  # type: ignore[attr-defined]


async def test_the_amount_received_must_be_what_is_asked(
    operator: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    short = await pay_cash(operator, coupon_reference=reference, amount="90000")
    problem = await short.get_json()
    assert short.status_code == 422 and problem["code"] == "amount_mismatch"
    assert problem["errors"] == [{"field": "amount", "message": "must be 97000", "code": "amount_mismatch"}]
    by_invoice = await pay_cash(operator, key="cash-2", invoice_id=debtor.invoices[0].id, amount="97000")
    assert by_invoice.status_code == 422 and (await by_invoice.get_json())["code"] == "amount_mismatch"
    assert await coupon_status(session, reference) == "active"
    # Refusals are not remembered: the same key with the right amount goes through.
    right = await pay_cash(operator, coupon_reference=reference, amount="97000")
    assert right.status_code == 201 and right.headers["Idempotent-Replayed"] == "false"


async def test_the_body_names_exactly_one_thing_to_pay(operator: ApiClient, debtor: Debtor) -> None:
    both = await pay_cash(operator, coupon_reference="123", invoice_id=debtor.invoices[0].id, amount="85000")
    neither = await pay_cash(operator, amount="85000")
    no_office = await operator.post(
        "/api/v1/cash-payments", json={"invoice_id": debtor.invoices[0].id, "amount": "85000"}, headers={"Idempotency-Key": "k"}
    )
    assert both.status_code == neither.status_code == no_office.status_code == 422


async def test_customers_and_anonymous_callers_cannot_record_cash(
    app: Quart, client: ApiClient, operator: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    user = await make_customer_user(session, debtor.customer)
    await session.commit()
    customer = ApiClient(app)
    assert (await customer.login(user.email, TEST_PASSWORD)).status_code == 200
    assert (await pay_cash(customer, coupon_reference=reference, amount="97000")).status_code == 403
    assert (await pay_cash(client, coupon_reference=reference, amount="97000")).status_code == 401
    assert await coupon_status(session, reference) == "active"
    paid = await (await pay_cash(operator, coupon_reference=reference, amount="97000")).get_json()
    receipt = f"/api/v1/cash-payments/{paid['id']}/receipt.pdf"
    assert (await customer.get(receipt)).status_code == 403
    assert (await client.get(receipt)).status_code == 401


async def test_another_tenants_coupons_invoices_and_receipts_are_404(
    app: Quart, operator: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    session.add(
        Tenant(code=OTHER, name="Aguas del Sur S.A.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000001")
    )
    await session.commit()
    user = await make_user(app, role="operator", tenant_code=OTHER)
    other = ApiClient(app)
    assert (await other.login(user.email, headers={"X-Tenant-ID": OTHER})).status_code == 200
    by_reference = await pay_cash(other, coupon_reference=reference, amount="97000")
    assert by_reference.status_code == 404 and (await by_reference.get_json())["code"] == "coupon_not_found"
    by_invoice = await pay_cash(other, invoice_id=debtor.invoices[0].id, amount="85000")
    assert by_invoice.status_code == 404 and (await by_invoice.get_json())["code"] == "invoice_not_found"
    assert await coupon_status(session, reference) == "active"
    paid = await (await pay_cash(operator, coupon_reference=reference, amount="97000")).get_json()
    assert (await other.get(f"/api/v1/cash-payments/{paid['id']}/receipt.pdf")).status_code == 404


async def test_the_receipt_shows_reference_amount_office_and_tenant(
    operator: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    paid = await (await pay_cash(operator, coupon_reference=reference, amount="97000", office="Sede Chapinero")).get_json()
    text = await pdf_text(await operator.get(paid["receipt_url"]))
    assert "Recibo de pago en efectivo".upper() in text
    assert reference in text and "Sede Chapinero" in text and tenant.name in text
    # The currency's own format for the tenant's language ("$ 97.000"); the PDF's text drops the no-break space.
    assert "".join(format_money(Decimal(97000), "COP", "es").split()) == "$97.000"
    assert "Total $97.000" in text and "$85.000" in text and "$12.000" in text
    assert debtor.invoices[0].number in text and debtor.invoices[1].number in text
    assert "Carla Cajera" in text and debtor.customer.name in text
    invoice = await pdf_text(await operator.get(f"/api/v1/invoices/{debtor.invoices[0].id}/pdf"))
    assert "PAGADA" in invoice and "Canal de pago: efectivo en oficina" in invoice


async def test_the_receipt_is_only_for_cash_payments(operator: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    card = await operator.post(
        "/api/v1/payments", json={"coupon_reference": reference, "card_token": "tok_approved"}, headers={"Idempotency-Key": "card-1"}
    )
    assert card.status_code == 201
    missing = await operator.get(f"/api/v1/cash-payments/{(await card.get_json())['id']}/receipt.pdf")
    assert missing.status_code == 404 and (await missing.get_json())["code"] == "payment_not_found"
    assert (await operator.get("/api/v1/cash-payments/424242/receipt.pdf")).status_code == 404


async def test_an_admin_reverses_a_cash_payment(
    operator: ApiClient, admin_client: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    paid = await (await pay_cash(operator, coupon_reference=reference, amount="97000")).get_json()
    refused = await operator.post(f"/api/v1/payments/{paid['id']}/reversal", json={"reason": "billete falso"})
    assert refused.status_code == 403
    reversed_ = await admin_client.post(f"/api/v1/payments/{paid['id']}/reversal", json={"reason": "billete falso"})
    assert reversed_.status_code == 200, await reversed_.get_data(as_text=True)
    body = await reversed_.get_json()
    assert (body["status"], body["channel"], body["reversal_reason"]) == ("reversed", "cash", "billete falso")
    invoice_ids = [invoice.id for invoice in debtor.invoices]
    await session.rollback()
    first, second = [await fresh(session, Invoice, invoice_id) for invoice_id in invoice_ids]
    assert (first.status, first.amount_due, second.status, second.amount_due) == ("issued", 85000, "issued", 12000)  # type: ignore[attr-defined]
    assert await coupon_status(session, reference) == "cancelled"
    text = await pdf_text(await operator.get(paid["receipt_url"]))
    assert "PAGO ANULADO" in text
    # The key's replay is the answer it first gave, as for card payments.
    replay = await pay_cash(operator, coupon_reference=reference, amount="97000")
    assert replay.headers["Idempotent-Replayed"] == "true" and (await replay.get_json())["status"] == "approved"


async def test_cash_payments_are_listed_and_reported_as_cash(
    operator: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    paid = await (await pay_cash(operator, coupon_reference=reference, amount="97000")).get_json()
    listed = await (await operator.get("/api/v1/payments?channel=cash")).get_json()
    assert [(item["id"], item["office"]) for item in listed["items"]] == [(paid["id"], "Sede Centro")]
    detail = await (await operator.get(f"/api/v1/payments/{paid['id']}")).get_json()
    assert (detail["channel"], detail["office"], detail["coupon"]["status"]) == ("cash", "Sede Centro", "paid")
    today = datetime.now(ZoneInfo(tenant.timezone)).date().isoformat()
    report = await operator.get(f"/api/v1/reports/collections?from={today}&to={today}")
    assert report.status_code == 200
    assert (await report.get_json())["rows"] == [{"day": today, "channel": "cash", "currency": "COP", "payments": 1, "amount": "97000"}]


async def test_openapi_documents_the_cash_routes(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    created = spec["paths"]["/api/v1/cash-payments"]["post"]
    assert created["operationId"] == "record_cash_payment" and created["tags"] == ["Cash payments"]
    assert {"201", "400", "401", "403", "404", "409", "410", "422"} <= set(created["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in created["parameters"])
    receipt = spec["paths"]["/api/v1/cash-payments/{payment_id}/receipt.pdf"]["get"]
    assert "application/pdf" in receipt["responses"]["200"]["content"]
    assert {"401", "403", "404"} <= set(receipt["responses"])


async def test_simultaneous_requests_with_one_key_make_one_payment(
    operator: ApiClient, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    reference = await coupon_reference(session, tenant, debtor)
    responses = await asyncio.gather(*(pay_cash(operator, key="same", coupon_reference=reference, amount="97000") for _ in range(5)))
    answers = [(response.status_code, await response.get_json()) for response in responses]
    paid = [body for status, body in answers if status == 201]
    assert paid and {body["id"] for body in paid} == {paid[0]["id"]}
    # A loser still inside the winner's transaction hears 409 payment_in_progress; a retry then replays.
    assert all(body["code"] == "payment_in_progress" for status, body in answers if status != 201)
    assert [r.headers["Idempotent-Replayed"] for r in responses if r.status_code == 201].count("false") == 1
    await session.rollback()
    assert await session.scalar(select(func.count()).select_from(Payment).where(Payment.channel == "cash")) == 1

"""Invoice routes: operator search, read, PDF and void; customers see and print only their own."""

from __future__ import annotations

from datetime import date
from io import BytesIO

import pytest
from pypdf import PdfReader
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.billing_run_controller import run_period
from models.billing_model import Invoice
from models.tenant_model import Tenant
from tests.billing_builders import Metered, make_metered_contract, make_tariff
from tests.conftest import TEST_PASSWORD, ApiClient
from tests.factories import make_customer_user, make_invoice


async def _billed(session: AsyncSession, tenant: Tenant) -> tuple[Metered, Metered]:
    """Two customers billed for October 2026 (84760 and 169530 COP)."""
    await make_tariff(session, tenant, "electricity")
    ana = await make_metered_contract(session, tenant, readings={"2026-10": (100, 100)}, name="Ana Gómez")
    luis = await make_metered_contract(session, tenant, readings={"2026-10": (200, 200)}, name="Luis Pérez")
    await session.commit()
    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    return ana, luis


async def _customer_client(app: Quart, session: AsyncSession, metered: Metered) -> ApiClient:
    user = await make_customer_user(session, metered.customer)
    await session.commit()
    api = ApiClient(app)
    assert (await api.login(user.email, TEST_PASSWORD)).status_code == 200
    return api


def pdf_text(data: bytes) -> str:
    """The text of every page of a PDF."""
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


async def test_an_operator_searches_reads_and_prints_invoices(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    ana, luis = await _billed(session, tenant)

    listed = await operator_client.get(f"/api/v1/invoices?contract_number={ana.contract.contract_number}")
    assert listed.status_code == 200
    items = (await listed.get_json())["items"]
    assert len(items) == 1
    invoice = items[0]
    assert {k: invoice[k] for k in ("number", "contract_number", "period", "issued_on", "due_on", "status")} == {
        "number": "FAC-2026-000001",
        "contract_number": ana.contract.contract_number,
        "period": "2026-10",
        "issued_on": "2026-11-05",
        "due_on": "2026-11-20",
        "status": "issued",
    }
    # Money is a decimal string at the currency's precision: COP has no decimals.
    assert {k: invoice[k] for k in ("subtotal", "tax", "total", "amount_due", "currency", "consumption")} == {
        "subtotal": "84763", "tax": "0", "total": "84760", "amount_due": "84760", "currency": "COP", "consumption": "100",
    }
    assert invoice["lines"] == [
        {"kind": "consumption", "description": "Consumo 0-130 kWh", "quantity": "100", "unit_price": "847.63", "amount": "84763"},
        {"kind": "rounding", "description": "Redondeo", "quantity": "1", "unit_price": "-3", "amount": "-3"},
    ]
    assert (invoice["reading_kind"], invoice["reading_flags"], invoice["disputed"]) == ("actual", [], False)

    by_id = await (await operator_client.get(f"/api/v1/invoices?national_id={luis.customer.national_id}")).get_json()
    assert [i["total"] for i in by_id["items"]] == ["169530"]
    everything = await (await operator_client.get("/api/v1/invoices?period=2026-10&status=issued")).get_json()
    assert [i["number"] for i in everything["items"]] == ["FAC-2026-000002", "FAC-2026-000001"]

    one = await operator_client.get(f"/api/v1/invoices/{invoice['id']}")
    assert one.status_code == 200 and (await one.get_json())["number"] == "FAC-2026-000001"

    pdf = await operator_client.get(f"/api/v1/invoices/{invoice['id']}/pdf")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    assert 'filename="FAC-2026-000001.pdf"' in pdf.headers["Content-Disposition"]
    text = pdf_text(await pdf.get_data())
    assert "FAC-2026-000001" in text and "$84.760" in text and "Ana Gómez" in text


async def test_an_operator_voids_an_invoice_once(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    await _billed(session, tenant)
    invoice_id = (await (await operator_client.get("/api/v1/invoices?limit=1")).get_json())["items"][0]["id"]

    voided = await operator_client.post(f"/api/v1/invoices/{invoice_id}/void", json={"reason": "Lectura mal tomada"})
    assert voided.status_code == 200
    body = await voided.get_json()
    assert (body["status"], body["void_reason"], body["amount_due"]) == ("void", "Lectura mal tomada", "0")

    again = await operator_client.post(f"/api/v1/invoices/{invoice_id}/void", json={"reason": "Otra vez"})
    assert again.status_code == 409 and (await again.get_json())["code"] == "invalid_transition"
    missing = await operator_client.post("/api/v1/invoices/999999/void", json={"reason": "No existe"})
    assert missing.status_code == 404
    no_reason = await operator_client.post(f"/api/v1/invoices/{invoice_id}/void", json={})
    assert no_reason.status_code == 422


async def test_a_customer_sees_and_prints_only_its_own_invoices(
    app: Quart, session: AsyncSession, tenant: Tenant
) -> None:
    ana, luis = await _billed(session, tenant)
    older = await make_invoice(session, ana.contract, period="2026-09", number="OLD-1", status="paid")
    older_id = older.id
    api = await _customer_client(app, session, ana)

    mine = await api.get("/api/v1/me/invoices")
    assert mine.status_code == 200
    items = (await mine.get_json())["items"]
    assert [(i["number"], i["period"]) for i in items] == [("FAC-2026-000001", "2026-10"), ("OLD-1", "2026-09")]
    unpaid = await (await api.get("/api/v1/me/invoices?status=issued")).get_json()
    assert [i["number"] for i in unpaid["items"]] == ["FAC-2026-000001"]
    own_id = items[0]["id"]
    assert (await api.get(f"/api/v1/me/invoices/{own_id}")).status_code == 200
    assert (await api.get(f"/api/v1/me/invoices/{older_id}")).status_code == 200

    pdf = await api.get(f"/api/v1/me/invoices/{own_id}/pdf")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    text = pdf_text(await pdf.get_data())
    assert "FAC-2026-000001" in text and "$84.760" in text

    luis_invoice = await session.scalar(select(Invoice.id).where(Invoice.contract_id == luis.contract.id))
    for path in (f"/api/v1/me/invoices/{luis_invoice}", f"/api/v1/me/invoices/{luis_invoice}/pdf"):
        response = await api.get(path)
        assert response.status_code == 404 and (await response.get_json())["code"] == "not_found"


async def test_a_customer_login_without_a_customer_record_owns_nothing(
    customer_user_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    await _billed(session, tenant)
    listed = await customer_user_client.get("/api/v1/me/invoices")
    assert listed.status_code == 200 and (await listed.get_json()) == {"items": [], "next_cursor": None}
    assert (await customer_user_client.get("/api/v1/me/invoices/1")).status_code == 404
    assert (await customer_user_client.get("/api/v1/me/invoices/1/pdf")).status_code == 404


@pytest.mark.parametrize(
    "path", ["/api/v1/invoices", "/api/v1/invoices/1", "/api/v1/invoices/1/pdf"]
)
async def test_customers_cannot_use_the_operator_routes(customer_user_client: ApiClient, client: ApiClient, path: str) -> None:
    assert (await customer_user_client.get(path)).status_code == 403
    assert (await client.get(path)).status_code == 401


async def test_operators_use_the_operator_routes_not_the_customer_ones(operator_client: ApiClient, client: ApiClient) -> None:
    assert (await operator_client.get("/api/v1/me/invoices")).status_code == 403
    assert (await client.get("/api/v1/me/invoices")).status_code == 401


async def test_bad_filters_are_422_and_bad_cursors_400(operator_client: ApiClient) -> None:
    assert (await operator_client.get("/api/v1/invoices?period=october")).status_code == 422
    assert (await operator_client.get("/api/v1/invoices?status=lost")).status_code == 422
    bad_cursor = await operator_client.get("/api/v1/invoices?cursor=nonsense")
    assert bad_cursor.status_code == 400 and (await bad_cursor.get_json())["code"] == "invalid_cursor"


async def test_the_openapi_document_describes_the_pdf_routes(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    responses = spec["paths"]["/api/v1/me/invoices/{invoice_id}/pdf"]["get"]["responses"]
    assert responses["200"]["content"] == {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
    assert {"401", "403", "404"} <= set(responses)


async def test_a_carried_invoice_names_the_invoice_that_carries_its_balance(
    app: Quart, session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    ana = await make_metered_contract(
        session, tenant, readings={"2026-09": (100, 100), "2026-10": (200, 100)}, name="Ana Gómez"
    )
    september = await make_invoice(
        session, ana.contract, period="2026-09", number="FAC-2026-000900", status="overdue", due_on=date(2026, 10, 20)
    )
    september_id = september.id
    await session.commit()
    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    october_id = await session.scalar(
        select(Invoice.id).where(Invoice.contract_id == ana.contract.id, Invoice.period == "2026-10")
    )
    api = await _customer_client(app, session, ana)

    items = (await (await api.get("/api/v1/me/invoices")).get_json())["items"]

    by_id = {item["id"]: item for item in items}
    assert by_id[september_id]["carried_into_invoice_id"] == october_id
    assert by_id[october_id]["carried_into_invoice_id"] is None
    assert by_id[october_id]["arrears"] == "85000"


async def test_invoice_pages_are_exactly_the_documented_model_in_json(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    """The list pages dump plain JSON values built once; they must read as `InvoiceList` dumps itself."""
    from datetime import UTC, datetime

    from routes.invoice_routes import InvoiceList

    ana, _luis = await _billed(session, tenant)
    await make_invoice(
        session, ana.contract, period="2026-09", number="OLD-2", status="paid", total="1520.5",
        paid_at=datetime(2026, 10, 3, 14, 5, 9, 120000, tzinfo=UTC),
    )
    await make_invoice(
        session, ana.contract, period="2026-08", number="OLD-3", status="void", voided_at=datetime(2026, 9, 1, tzinfo=UTC),
        void_reason="Lectura errónea",
    )
    api = await _customer_client(app, session, ana)
    body = await (await api.get("/api/v1/me/invoices?limit=2")).get_json()
    assert [i["number"] for i in body["items"]] == ["FAC-2026-000001", "OLD-2"] and body["next_cursor"]
    rest = await (await api.get(f"/api/v1/me/invoices?cursor={body['next_cursor']}")).get_json()
    assert [i["number"] for i in rest["items"]] == ["OLD-3"] and rest["next_cursor"] is None
    for page in (body, rest):
        assert InvoiceList.model_validate(page).model_dump(mode="json") == page
    paid = body["items"][1]
    assert paid["paid_at"] == "2026-10-03T14:05:09.120000Z" and paid["total"] == "1521" and paid["lines"]
    assert rest["items"][0]["voided_at"] == "2026-09-01T00:00:00Z" and rest["items"][0]["void_reason"] == "Lectura errónea"
    assert body["items"][0]["total"] == "84760" and body["items"][0]["issued_on"] == "2026-11-05"

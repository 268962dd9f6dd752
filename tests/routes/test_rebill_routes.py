"""Re-billing after a corrected reading: one note for exactly the difference, the period keeps one invoice,
a repeat issues nothing, and the note's PDF shows the lines before and after."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.billing_run_controller import run_period
from models.billing_model import Invoice
from models.note_model import InvoiceNote
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import ApiClient
from tests.controllers.test_billing_run_controller import PERIOD, RUN_DAY
from tests.routes.test_note_routes import pdf_text


async def invoice_for(session: AsyncSession, contract_id: int) -> SimpleNamespace:
    """The contract's invoice for the period as plain values (they outlive the session's next rollback)."""
    await session.rollback()
    row = (
        await session.execute(
            select(Invoice.__table__).where(Invoice.contract_id == contract_id, Invoice.period == PERIOD)
        )
    ).mappings().one()
    return SimpleNamespace(**row)


async def test_a_corrected_reading_is_rebilled_once_as_a_note_for_the_difference(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    misread = await make_metered_contract(session, tenant, readings={"2026-09": (100, 100), PERIOD: (250, 150)})
    # What the misread contract should have been billed: the same tariff and stratum for 100 kWh.
    right = await make_metered_contract(session, tenant, readings={"2026-09": (100, 100), PERIOD: (200, 100)})
    await session.commit()
    misread_id, right_id = misread.contract.id, right.contract.id
    await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    wrong = await invoice_for(session, misread_id)
    expected = (await invoice_for(session, right_id)).total
    assert wrong.total > expected

    # Nothing was corrected yet: nothing to re-bill.
    early = await operator_client.post(f"/api/v1/invoices/{wrong.id}/rebill")
    assert early.status_code == 409 and (await early.get_json())["code"] == "nothing_to_rebill"

    corrected = await operator_client.patch(f"/api/v1/readings/{wrong.reading_id}", json={"value": "200", "reason": "Lectura mal digitada"})
    assert corrected.status_code == 200, await corrected.get_data(as_text=True)
    response = await operator_client.post(f"/api/v1/invoices/{wrong.id}/rebill")
    assert response.status_code == 201, await response.get_data(as_text=True)
    note = await response.get_json()
    assert (note["kind"], Decimal(note["amount"]), note["rebill_seq"]) == ("credit", wrong.total - expected, 1)
    assert (Decimal(note["amount_due_before"]), Decimal(note["amount_due_after"])) == (wrong.total, expected)

    again = await operator_client.post(f"/api/v1/invoices/{wrong.id}/rebill")
    assert again.status_code == 409 and (await again.get_json())["code"] == "nothing_to_rebill"
    await session.rollback()
    invoices = await session.scalar(
        select(func.count()).select_from(Invoice).where(Invoice.contract_id == misread_id, Invoice.period == PERIOD)
    )
    assert invoices == 1
    assert await session.scalar(select(func.count()).select_from(InvoiceNote)) == 1
    current = await invoice_for(session, misread_id)
    assert (current.amount_due, current.total) == (expected, wrong.total)

    pdf = await operator_client.get(f"/api/v1/notes/{note['id']}/pdf")
    text = pdf_text(await pdf.get_data())
    assert "Refacturación" in text and "Antes" in text and "Después" in text
    assert f"${wrong.total:,.0f}".replace(",", ".") in text and f"${expected:,.0f}".replace(",", ".") in text

    # Corrected back: the second re-bill debits exactly what the first credited.
    back = await operator_client.patch(f"/api/v1/readings/{wrong.reading_id}", json={"value": "250", "reason": "Era correcta"})
    assert back.status_code == 200
    debit = await operator_client.post(f"/api/v1/invoices/{wrong.id}/rebill")
    assert debit.status_code == 201, await debit.get_data(as_text=True)
    assert {k: (await debit.get_json())[k] for k in ("kind", "amount", "rebill_seq")} == {
        "kind": "debit", "amount": note["amount"], "rebill_seq": 2,
    }
    assert (await invoice_for(session, misread_id)).amount_due == wrong.total


async def test_void_and_foreign_invoices_are_not_rebilled(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    metered = await make_metered_contract(session, tenant, readings={"2026-09": (100, 100), PERIOD: (250, 150)})
    await session.commit()
    contract_id = metered.contract.id
    await run_period(session=session, tenant=tenant, period=PERIOD, today=RUN_DAY)
    invoice = await invoice_for(session, contract_id)
    voided = await operator_client.post(f"/api/v1/invoices/{invoice.id}/void", json={"reason": "Lectura imposible"})
    assert voided.status_code == 200, await voided.get_data(as_text=True)
    refused = await operator_client.post(f"/api/v1/invoices/{invoice.id}/rebill")
    assert refused.status_code == 409 and (await refused.get_json())["code"] == "invalid_transition"
    missing = await operator_client.post("/api/v1/invoices/999999/rebill")
    assert missing.status_code == 404

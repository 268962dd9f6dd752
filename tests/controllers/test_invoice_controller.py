"""Invoices after the run: the overdue sweep, voiding, search and the PDF's content."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import invoice_controller
from controllers.billing_run_controller import run_period
from controllers.errors import Conflict, NotFound
from models.billing_model import Invoice
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.factories import make_contract, make_customer, make_invoice


def pdf_text(data: bytes) -> str:
    """The text of every page, as pypdf extracts it."""
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


async def _status(session: AsyncSession, invoice: Invoice) -> str:
    await session.refresh(invoice)
    return invoice.status


async def test_mark_overdue_moves_only_issued_invoices_past_their_due_date(
    session: AsyncSession, tenant: Tenant
) -> None:
    contract = await make_contract(session, await make_customer(session, tenant))
    late = await make_invoice(session, contract, period="2026-07", due_on=date(2026, 11, 22), number="A-1")
    due_today = await make_invoice(session, contract, period="2026-08", due_on=date(2026, 11, 23), number="A-2")
    paid = await make_invoice(session, contract, period="2026-09", due_on=date(2026, 10, 1), status="paid", number="A-3")
    void = await make_invoice(session, contract, period="2026-10", due_on=date(2026, 10, 1), status="void", number="A-4")
    await session.commit()

    assert await invoice_controller.mark_overdue(session=session, today=date(2026, 11, 23)) == 1
    assert await invoice_controller.mark_overdue(session=session, today=date(2026, 11, 23)) == 0

    assert [await _status(session, i) for i in (late, due_today, paid, void)] == ["overdue", "issued", "paid", "void"]


async def test_mark_overdue_uses_each_tenants_own_date_by_default(session: AsyncSession, tenant: Tenant) -> None:
    contract = await make_contract(session, await make_customer(session, tenant))
    long_past = await make_invoice(session, contract, period="2026-01", due_on=date(2026, 2, 1), number="B-1")
    far_future = await make_invoice(session, contract, period="2026-02", due_on=date(2099, 1, 1), number="B-2")
    await session.commit()

    assert await invoice_controller.mark_overdue(session=session) == 1
    assert [await _status(session, i) for i in (long_past, far_future)] == ["overdue", "issued"]


async def test_an_operator_voids_an_issued_or_overdue_invoice_with_a_reason(session: AsyncSession, tenant: Tenant) -> None:
    contract = await make_contract(session, await make_customer(session, tenant))
    issued = await make_invoice(session, contract, period="2026-09", number="C-1")
    overdue = await make_invoice(session, contract, period="2026-10", status="overdue", number="C-2")
    await session.commit()

    view = await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=issued.id, reason="Lectura errada")
    await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=overdue.id, reason="Duplicada")

    assert (view.invoice.status, view.invoice.void_reason, view.invoice.amount_due) == ("void", "Lectura errada", Decimal(0))
    assert view.invoice.voided_at is not None and view.invoice.total == Decimal(85000)
    assert await _status(session, overdue) == "void"


@pytest.mark.parametrize("status", ["paid", "void"])
async def test_voiding_a_paid_or_void_invoice_is_an_invalid_transition(
    session: AsyncSession, tenant: Tenant, status: str
) -> None:
    contract = await make_contract(session, await make_customer(session, tenant))
    invoice = await make_invoice(session, contract, status=status, number="D-1")
    invoice_id = invoice.id
    await session.commit()

    with pytest.raises(Conflict) as raised:
        await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=invoice_id, reason="Otra vez")
    assert raised.value.code == "invalid_transition"
    with pytest.raises(NotFound):
        await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=invoice_id + 99, reason="Nada")


async def test_voiding_an_invoice_that_carried_a_balance_lets_the_next_run_carry_it_again(
    session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    metered = await make_metered_contract(session, tenant, readings={"2026-10": (100, 100)})
    september = await make_invoice(session, metered.contract, period="2026-09", total="50000", status="overdue",
                                   due_on=date(2026, 10, 20), number="E-1")
    await session.commit()
    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    october = await session.scalar(select(Invoice).where(Invoice.period == "2026-10"))
    assert october is not None
    await session.refresh(september)
    assert september.carried_into_invoice_id == october.id

    await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=october.id, reason="Mal facturada")

    await session.refresh(september)
    assert (september.status, september.carried_into_invoice_id) == ("overdue", None)


async def test_search_filters_and_orders_newest_period_first(session: AsyncSession, tenant: Tenant) -> None:
    ana = await make_customer(session, tenant, national_id_type="rut", national_id="12.345.678-5")
    luis = await make_customer(session, tenant)
    ana_contract = await make_contract(session, ana, contract_number="CT-ANA")
    luis_contract = await make_contract(session, luis, contract_number="CT-LUIS")
    a1 = await make_invoice(session, ana_contract, period="2026-08", number="F-1")
    a2 = await make_invoice(session, ana_contract, period="2026-10", number="F-2", status="overdue")
    a3 = await make_invoice(session, ana_contract, period="2026-09", number="F-3")
    l1 = await make_invoice(session, luis_contract, period="2026-10", number="F-4")
    await session.commit()

    async def numbers(**filters: object) -> list[str]:
        page = await invoice_controller.search_invoices(session=session, tenant=tenant, **filters)  # type: ignore[arg-type]
        return [view.invoice.number for view in page.items]

    assert await numbers() == ["F-4", "F-2", "F-3", "F-1"]
    assert await numbers(contract_number="CT-ANA") == ["F-2", "F-3", "F-1"]
    assert await numbers(national_id="12.345.678-5") == ["F-2", "F-3", "F-1"]
    assert await numbers(national_id="123456785", status="overdue") == ["F-2"]
    assert await numbers(period="2026-10") == ["F-4", "F-2"]
    assert await numbers(customer_id=luis.id) == ["F-4"]
    # One customer's pages (and one period of them) run statements built once (pagination.PageQuery).
    assert await numbers(national_id="12.345.678-5", period="2026-10") == ["F-2"]
    assert await numbers(national_id="12.345.678-5", period="2026-08") == ["F-1"]
    assert await numbers(national_id="12.345.678-5", period="2026-07") == []
    ana_first = await invoice_controller.search_invoices(session=session, tenant=tenant, national_id="123456785", limit=2)
    ana_rest = await invoice_controller.search_invoices(
        session=session, tenant=tenant, national_id="123456785", limit=2, cursor=ana_first.next_cursor
    )
    assert [v.invoice.id for v in ana_first.items] == [a2.id, a3.id] and ana_first.next_cursor
    assert [v.invoice.id for v in ana_rest.items] == [a1.id] and ana_rest.next_cursor is None
    first = await invoice_controller.search_invoices(session=session, tenant=tenant, limit=3)
    rest = await invoice_controller.search_invoices(session=session, tenant=tenant, limit=3, cursor=first.next_cursor)
    assert [v.invoice.id for v in first.items + rest.items] == [l1.id, a2.id, a3.id, a1.id]
    assert rest.next_cursor is None
    assert first.items[0].contract_number == "CT-LUIS" and len(first.items[0].lines) == 1


async def test_the_pdf_shows_the_invoice_number_readings_and_total(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    metered = await make_metered_contract(
        session, tenant, readings={"2026-08": (1000, 93), "2026-09": (1090, 90)}, name="Beatriz Núñez"
    )
    await session.commit()
    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    invoice = await session.scalar(select(Invoice))
    assert invoice is not None

    filename, data = await invoice_controller.invoice_pdf(session=session, tenant=tenant, invoice_id=invoice.id)

    assert filename == "FAC-2026-000001.pdf" and data.startswith(b"%PDF")
    text = pdf_text(data)
    # 93 estimated kWh x 847.63 = 78830 (already a multiple of 10).
    assert invoice.total == Decimal(78830)
    for expected in ("FAC-2026-000001", "$78.830", "Beatriz Núñez", metered.contract.contract_number,
                     metered.meter.serial, "1.090", "1.183", "(estimada)", "Consumo 0-130 kWh"):
        assert expected in text, expected


async def test_a_customer_gets_only_its_own_pdf(session: AsyncSession, tenant: Tenant) -> None:
    contract = await make_contract(session, await make_customer(session, tenant))
    invoice = await make_invoice(session, contract, number="G-1")
    stranger = await make_customer(session, tenant)
    await session.commit()

    filename, _ = await invoice_controller.invoice_pdf(
        session=session, tenant=tenant, invoice_id=invoice.id, customer_id=contract.customer_id
    )
    assert filename == "G-1.pdf"
    with pytest.raises(NotFound):
        await invoice_controller.invoice_pdf(session=session, tenant=tenant, invoice_id=invoice.id, customer_id=stranger.id)

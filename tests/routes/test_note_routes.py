"""Credit and debit notes: amount due or credit balance, coupons cancelled, own numbers, PDF, email, roles."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader
from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clients.smtp_client import SmtpClient
from controllers.notification_controller import DeliveryPolicy, dispatch_due
from models.billing_model import Invoice
from models.notification_model import Notification
from models.payment_model import Coupon, CreditBalance
from models.pqr_model import Pqr
from models.tenant_model import Tenant
from tests.conftest import ApiClient, MailServer, make_user
from tests.factories import make_customer
from tests.payment_builders import Debtor, fresh, make_coupon, make_debtor

OTHER = "aguas-notas"


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


async def credit(api: ApiClient, invoice_id: int, amount: str, **fields: str) -> object:
    return await api.post(
        f"/api/v1/invoices/{invoice_id}/credit-notes", json={"amount": amount, "reason": "Lectura mal tomada", **fields}
    )


async def amount_due(session: AsyncSession, invoice_id: int) -> Decimal:
    await session.rollback()  # end the test session's read snapshot, so the request's commits show
    invoice = await fresh(session, Invoice, invoice_id)
    assert isinstance(invoice, Invoice)
    return invoice.amount_due


async def queued_emails(session: AsyncSession, event: str) -> list[Notification]:
    return list(
        (await session.scalars(select(Notification).where(Notification.event == event).order_by(Notification.id))).all()
    )


async def add_pqr(session: AsyncSession, tenant: Tenant, debtor: Debtor, filing_number: str) -> None:
    from datetime import date

    from tests.factories import make_customer_user

    user = await make_customer_user(session, debtor.customer)
    session.add(
        Pqr(
            tenant_id=tenant.id, filing_number=filing_number, customer_id=debtor.customer.id, user_id=user.id,
            invoice_id=debtor.invoices[0].id, type="claim", subject="Cobro alto", description="La lectura está mal.",
            status="filed", due_on=date(2026, 12, 28),
        )
    )
    await session.commit()


async def test_a_partial_credit_lowers_what_is_due_and_the_next_coupon(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",))
    invoice_id = debtor.invoices[0].id
    old = await make_coupon(session, tenant, debtor)
    await add_pqr(session, tenant, debtor, "PQR-20261201-00001")

    response = await credit(operator_client, invoice_id, "20000", pqr_filing_number="PQR-20261201-00001")

    assert response.status_code == 201, await response.get_data(as_text=True)
    note = await response.get_json()
    assert {k: note[k] for k in ("kind", "number", "invoice_number", "amount", "amount_due_before", "amount_due_after",
                                   "pqr_filing_number", "credit_balance_id", "currency")} == {
        "kind": "credit", "number": "NC-2026-000001", "invoice_number": debtor.invoices[0].number, "amount": "20000",
        "amount_due_before": "85000", "amount_due_after": "65000", "pqr_filing_number": "PQR-20261201-00001",
        "credit_balance_id": None, "currency": "COP",
    }
    assert await amount_due(session, invoice_id) == Decimal(65000)
    cancelled = await fresh(session, Coupon, old.coupon.id)
    assert isinstance(cancelled, Coupon)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "invoice_changed")
    new = await make_coupon(session, tenant, debtor)
    assert new.coupon.amount == Decimal(65000)

    emails = await queued_emails(session, "credit_note_issued")
    assert len(emails) == 1
    assert emails[0].dedupe_key == f"credit_note_issued:{note['id']}"
    assert {k: emails[0].payload[k] for k in ("note_number", "amount", "amount_due", "to_credit_balance")} == {
        "note_number": "NC-2026-000001", "amount": "20000", "amount_due": "65000", "to_credit_balance": False,
    }

    listed = await operator_client.get(f"/api/v1/invoices/{invoice_id}/notes")
    assert [n["number"] for n in (await listed.get_json())["items"]] == ["NC-2026-000001"]
    one = await operator_client.get(f"/api/v1/notes/{note['id']}")
    assert (await one.get_json()) == note

    pdf = await operator_client.get(f"/api/v1/notes/{note['id']}/pdf")
    assert pdf.status_code == 200
    assert pdf.content_type == "application/pdf"
    text = pdf_text(await pdf.get_data())
    assert "Nota crédito N.º NC-2026-000001" in text
    assert debtor.invoices[0].number in text
    assert "$20.000" in text and "$65.000" in text
    assert "PQR-20261201-00001" in text


async def test_a_credit_on_a_paid_invoice_becomes_a_credit_balance(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",), status="paid")
    invoice_id = debtor.invoices[0].id

    response = await credit(operator_client, invoice_id, "30000")

    assert response.status_code == 201, await response.get_data(as_text=True)
    note = await response.get_json()
    assert (note["amount_due_before"], note["amount_due_after"]) == ("0", "0")
    balance = await session.scalar(select(CreditBalance).where(CreditBalance.id == note["credit_balance_id"]))
    assert balance is not None
    assert (balance.reason, balance.status, balance.amount, balance.payment_id, balance.note_id, balance.contract_id) == (
        "credit_note", "open", Decimal(30000), None, note["id"], debtor.contract.id,
    )
    invoice = await fresh(session, Invoice, invoice_id)
    assert isinstance(invoice, Invoice)
    assert (invoice.status, invoice.amount_due, invoice.total) == ("paid", Decimal(0), Decimal(85000))

    listed = await operator_client.get("/api/v1/payments/exceptions")
    assert listed.status_code == 200
    items = (await listed.get_json())["items"]
    assert [(i["reason"], i["amount"], i["payment_id"], i["coupon_reference"], i["note_number"]) for i in items] == [
        ("credit_note", "30000", None, None, "NC-2026-000001")
    ]
    emails = await queued_emails(session, "credit_note_issued")
    assert [e.payload["to_credit_balance"] for e in emails] == [True]

    # Credits of a paid invoice never exceed its total: 55000 remain.
    over = await credit(operator_client, invoice_id, "55001")
    assert over.status_code == 422
    assert (await over.get_json())["code"] == "over_credit"
    assert (await credit(operator_client, invoice_id, "55000")).status_code == 201

    pdf = await operator_client.get(f"/api/v1/notes/{note['id']}/pdf")
    assert "saldo a favor" in pdf_text(await pdf.get_data())


async def test_over_credit_is_refused_and_uses_no_number(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",))
    invoice_id = debtor.invoices[0].id

    over = await credit(operator_client, invoice_id, "85001")

    assert over.status_code == 422
    body = await over.get_json()
    assert (body["code"], body["errors"][0]["field"]) == ("over_credit", "amount")
    assert await amount_due(session, invoice_id) == Decimal(85000)
    full = await credit(operator_client, invoice_id, "85000")
    assert (await full.get_json())["number"] == "NC-2026-000001"
    assert await amount_due(session, invoice_id) == Decimal(0)
    assert (await credit(operator_client, invoice_id, "1")).status_code == 422
    assert len(await queued_emails(session, "credit_note_issued")) == 1


async def test_debit_notes_raise_what_is_due_and_are_refused_on_paid_invoices(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",))
    paid = await make_debtor(session, tenant, amounts=("40000",), status="paid")
    invoice_id = debtor.invoices[0].id
    old = await make_coupon(session, tenant, debtor)

    debit = await operator_client.post(
        f"/api/v1/invoices/{invoice_id}/debit-notes", json={"amount": "5000", "reason": "Cargo de reconexión omitido"}
    )

    assert debit.status_code == 201
    note = await debit.get_json()
    assert (note["kind"], note["number"], note["amount_due_after"]) == ("debit", "ND-2026-000001", "90000")
    assert await amount_due(session, invoice_id) == Decimal(90000)
    cancelled = await fresh(session, Coupon, old.coupon.id)
    assert isinstance(cancelled, Coupon) and cancelled.status == "cancelled"
    assert (await make_coupon(session, tenant, debtor)).coupon.amount == Decimal(90000)

    refused = await operator_client.post(
        f"/api/v1/invoices/{paid.invoices[0].id}/debit-notes", json={"amount": "5000", "reason": "Cargo omitido"}
    )
    assert refused.status_code == 409
    assert (await refused.get_json())["code"] == "invoice_paid"
    pdf = await operator_client.get(f"/api/v1/notes/{note['id']}/pdf")
    assert "Nota débito N.º ND-2026-000001" in pdf_text(await pdf.get_data())


async def test_void_invoices_and_foreign_pqrs_are_refused(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",))
    void = await make_debtor(session, tenant, amounts=("85000",), status="void")
    stranger = await make_debtor(session, tenant, amounts=("1000",), customer=await make_customer(session, tenant))
    await add_pqr(session, tenant, stranger, "PQR-20261201-00009")

    foreign = await credit(operator_client, debtor.invoices[0].id, "1000", pqr_filing_number="PQR-20261201-00009")
    assert foreign.status_code == 422
    assert (await foreign.get_json())["errors"][0]["field"] == "pqr_filing_number"
    voided = await credit(operator_client, void.invoices[0].id, "1000")
    assert voided.status_code == 409
    assert (await voided.get_json())["code"] == "invalid_transition"
    assert (await credit(operator_client, 999999, "1000")).status_code == 404
    assert await amount_due(session, debtor.invoices[0].id) == Decimal(85000)


async def test_large_notes_need_an_admin(
    app: Quart, operator_client: ApiClient, admin_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("3000000",))
    invoice_id = debtor.invoices[0].id

    refused = await credit(operator_client, invoice_id, "1000001")
    assert refused.status_code == 403
    assert (await refused.get_json())["code"] == "admin_required"
    assert (await credit(operator_client, invoice_id, "1000000")).status_code == 201
    allowed = await credit(admin_client, invoice_id, "1500000")
    assert allowed.status_code == 201
    assert await amount_due(session, invoice_id) == Decimal(500000)


@pytest.fixture
async def operator_b(app: Quart, session: AsyncSession) -> ApiClient:
    session.add(
        Tenant(code=OTHER, name="Aguas del Sur S.A.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000002")
    )
    await session.commit()
    user = await make_user(app, role="operator", tenant_code=OTHER)
    api = ApiClient(app)
    assert (await api.login(user.email, headers={"X-Tenant-ID": OTHER})).status_code == 200
    return api


async def test_customers_are_forbidden_and_other_tenants_see_nothing(
    customer_client: ApiClient, operator_b: ApiClient, operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",))
    invoice_id = debtor.invoices[0].id
    note = await (await credit(operator_client, invoice_id, "1000")).get_json()

    assert (await credit(customer_client, invoice_id, "1000")).status_code == 403
    assert (await customer_client.get(f"/api/v1/notes/{note['id']}")).status_code == 403
    for path in (f"/api/v1/invoices/{invoice_id}/notes", f"/api/v1/notes/{note['id']}", f"/api/v1/notes/{note['id']}/pdf"):
        assert (await operator_b.get(path)).status_code == 404, path
    assert (await credit(operator_b, invoice_id, "1000")).status_code == 404
    assert (await operator_b.post(
        f"/api/v1/invoices/{invoice_id}/debit-notes", json={"amount": "1000", "reason": "Cargo omitido"}
    )).status_code == 404
    assert await amount_due(session, invoice_id) == Decimal(84000)
    count = await session.scalar(select(func.count()).select_from(Notification).where(Notification.event == "credit_note_issued"))
    assert count == 1


async def test_the_credit_note_email_carries_the_note_pdf(
    app: Quart, operator_client: ApiClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",))
    note = await (await credit(operator_client, debtor.invoices[0].id, "20000")).get_json()

    report = await dispatch_due(
        sql=app.extensions["cuponera"].sql, smtp=SmtpClient(mail_server.smtp_settings()), policy=DeliveryPolicy()
    )

    assert report.sent == 1
    [email] = mail_server.catcher.messages
    assert email["Subject"] == f"Nota crédito {note['number']} a su factura {debtor.invoices[0].number}"
    [attachment] = list(email.iter_attachments())
    assert attachment.get_filename() == f"{note['number']}.pdf"
    assert "$20.000" in pdf_text(attachment.get_content())


async def test_a_carried_invoice_is_credited_through_the_invoice_that_carried_it(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("50000", "35000"))
    newer, older = debtor.invoices
    older.carried_into_invoice_id = newer.id
    await session.commit()

    refused = await credit(operator_client, older.id, "1000")

    assert refused.status_code == 409
    assert (await refused.get_json())["code"] == "invoice_carried"
    assert await amount_due(session, older.id) == Decimal(35000)
    assert (await credit(operator_client, newer.id, "1000")).status_code == 201

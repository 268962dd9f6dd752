"""An invoice that turns overdue and one that is voided each produce exactly one email, over real SMTP."""

from __future__ import annotations

from datetime import date

from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients.smtp_client import SmtpClient
from controllers import invoice_controller
from controllers.notification_controller import DeliveryPolicy, dispatch_due
from models.notification_model import Notification
from models.tenant_model import Tenant
from tests.conftest import ApiClient, MailServer
from tests.factories import make_contract, make_customer, make_invoice


async def test_overdue_and_voided_invoices_each_email_once(
    app: Quart, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    late_customer = await make_customer(session, tenant, email="late@example.com", locale="es")
    void_customer = await make_customer(session, tenant, email="void@example.com", locale="en")
    late = await make_invoice(session, await make_contract(session, late_customer), period="2026-10", number="FAC-OVER-1", due_on=date(2026, 11, 16))
    to_void = await make_invoice(session, await make_contract(session, void_customer), period="2026-10", number="FAC-VOID-1", due_on=date(2099, 1, 1))
    await session.commit()
    late_id, void_id = late.id, to_void.id

    # Twice: the second sweep finds nothing to move, so nothing more is queued.
    assert await invoice_controller.mark_overdue(session=session, today=date(2026, 11, 20)) == 1
    assert await invoice_controller.mark_overdue(session=session, today=date(2026, 11, 21)) == 0
    await invoice_controller.void_invoice(session=session, tenant=tenant, invoice_id=void_id, reason="Lectura mal tomada")

    sql, smtp = app.extensions["cuponera"].sql, SmtpClient(mail_server.smtp_settings())
    assert (await dispatch_due(sql=sql, smtp=smtp, policy=DeliveryPolicy())).sent == 2
    assert (await dispatch_due(sql=sql, smtp=smtp, policy=DeliveryPolicy())).sent == 0

    by_event = {str(m["X-Cuponera-Event"]): m for m in mail_server.catcher.messages}
    assert sorted(by_event) == ["invoice_overdue", "invoice_voided"] and len(mail_server.catcher.messages) == 2
    overdue, voided = by_event["invoice_overdue"], by_event["invoice_voided"]
    assert overdue["To"] == "late@example.com" and str(overdue["Subject"]) == "Su factura FAC-OVER-1 está vencida"
    assert "Le invitamos a pagarla" in overdue.get_body(("plain",)).get_content()
    assert voided["To"] == "void@example.com" and str(voided["Subject"]) == "Your bill FAC-VOID-1 was cancelled"
    assert "Lectura mal tomada" in voided.get_body(("plain",)).get_content()
    await session.rollback()
    keys = sorted((await session.scalars(select(Notification.dedupe_key).where(Notification.event != "invoice_issued"))).all())
    assert keys == [f"invoice_overdue:{late_id}", f"invoice_voided:{void_id}"]


async def test_an_operator_resends_an_invoice_email_a_few_times_a_day(
    app: Quart, session: AsyncSession, tenant: Tenant, mail_server: MailServer, operator_client: ApiClient, customer_client: ApiClient
) -> None:
    tenant_id = tenant.id
    await session.rollback()  # fixtures wrote since the `tenant` fixture read
    customer = await make_customer(session, tenant_id, email="again@example.com")
    invoice = await make_invoice(session, await make_contract(session, customer), period="2026-10", number="FAC-AGAIN-1", due_on=date(2099, 1, 1))
    voided = await make_invoice(session, await make_contract(session, customer), period="2026-10", number="FAC-VOID-2", status="void")
    await session.commit()
    path = f"/api/v1/invoices/{invoice.id}/resend"

    assert (await customer_client.post(path)).status_code == 403
    answers = [await operator_client.post(path) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert [(await a.get_json()).get("resend") for a in answers[:3]] == [1, 2, 3]
    assert (await answers[3].get_json())["code"] == "resend_limit"
    assert (await operator_client.post(f"/api/v1/invoices/{voided.id}/resend")).status_code == 409
    assert (await operator_client.post("/api/v1/invoices/999999/resend")).status_code == 404

    sql, smtp = app.extensions["cuponera"].sql, SmtpClient(mail_server.smtp_settings())
    assert (await dispatch_due(sql=sql, smtp=smtp, policy=DeliveryPolicy())).sent == 3
    assert [str(m["Subject"]).count("FAC-AGAIN-1") for m in mail_server.catcher.messages] == [1, 1, 1]
    assert all(m["X-Cuponera-Event"] == "invoice_issued" for m in mail_server.catcher.messages)

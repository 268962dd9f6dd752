"""End to end: the bill run's "invoice issued" email arrives over real SMTP with the invoice PDF attached."""

from __future__ import annotations

import io
from datetime import date

from pypdf import PdfReader
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients.smtp_client import SmtpClient
from controllers.billing_run_controller import run_period
from controllers.notification_controller import DeliveryPolicy, dispatch_due
from models.billing_model import Invoice
from models.notification_model import Notification
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import MailServer


async def test_bill_run_email_carries_the_invoice_pdf(
    app: Quart, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    await make_tariff(session, tenant, "electricity")
    metered = await make_metered_contract(
        session, tenant, readings={"2026-09": (1000, 150), "2026-10": (1150, 150)}, name="José Pérez Ñuñez"
    )
    await session.commit()
    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    invoice = await session.scalar(select(Invoice).where(Invoice.contract_id == metered.contract.id))
    assert invoice is not None
    number, invoice_id, recipient = invoice.number, invoice.id, metered.customer.email

    report = await dispatch_due(
        sql=app.extensions["cuponera"].sql, smtp=SmtpClient(mail_server.smtp_settings()), policy=DeliveryPolicy()
    )

    assert report.sent == 1
    [email] = mail_server.catcher.messages
    assert email["To"] == recipient
    assert email["X-Cuponera-Event"] == "invoice_issued"
    assert number in str(email["Subject"])
    [attachment] = [part for part in email.iter_attachments()]
    assert attachment.get_content_type() == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(attachment.get_content())).pages)
    assert number in text
    assert "José Pérez Ñuñez" in text
    await session.rollback()
    row = await session.scalar(select(Notification).where(Notification.event == "invoice_issued"))
    assert row is not None and row.status == "sent" and row.payload["invoice_id"] == invoice_id

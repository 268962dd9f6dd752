"""The dispatcher sends a batch over several SMTP connections at once (NOTIFY_SEND_CONCURRENCY), each
message exactly once, and a refused or unrenderable message fails alone."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients.smtp_client import SmtpClient
from controllers.notification_controller import DeliveryPolicy, dispatch_due
from controllers.outbox_controller import OutboxMessage, enqueue_many
from models.base_model import utcnow
from models.notification_model import Notification
from models.tenant_model import Tenant
from tests.conftest import MailCatcher, MailServer, free_port

PAID = {
    "customer_name": "María Núñez", "tenant_name": "Energía del Valle S.A. E.S.P.", "invoice_number": "FAC-2026-000123",
    "contract_number": "100200300", "period": "2026-10", "amount_paid": "20870", "paid_at": "2026-11-01T03:00:00+00:00",
}


class OverlapCatcher(MailCatcher):
    """Keeps messages and the most DATA commands it ever held open at once. The first message waits
    (up to 20 s) for a second to arrive, so one-at-a-time sending shows up as a peak of 1, not as luck."""

    def __init__(self) -> None:
        super().__init__()
        self.open = 0
        self.peak = 0
        self.second: asyncio.Event | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Hold the message while others arrive, then accept it."""
        self.second = self.second or asyncio.Event()
        self.open += 1
        self.peak = max(self.peak, self.open)
        if self.open >= 2:
            self.second.set()
        try:
            await asyncio.wait_for(self.second.wait(), timeout=20)
        except TimeoutError:
            pass
        self.open -= 1
        return await super().handle_DATA(server, session, envelope)


async def test_a_batch_goes_out_over_several_connections_each_message_once(
    app: Quart, session: AsyncSession, tenant: Tenant
) -> None:
    catcher = OverlapCatcher()
    server = MailServer(port=free_port(), catcher=catcher)
    server.start()
    try:
        good = [f"cliente{i}@example.co" for i in range(7)]
        messages = [
            OutboxMessage(tenant_id=tenant.id, event="invoice_paid", dedupe_key=f"pool:{i}", payload=PAID, recipient=address)
            for i, address in enumerate(good)
        ]
        messages += [
            OutboxMessage(tenant_id=tenant.id, event="invoice_paid", dedupe_key="pool:refused", payload=PAID,
                          recipient="nadie@refused.example"),
            OutboxMessage(tenant_id=tenant.id, event="invoice_paid", dedupe_key="pool:broken", payload={"invoice_number": "X"},
                          recipient="roto@example.co"),
        ]
        await enqueue_many(session=session, messages=messages)
        await session.commit()

        report = await dispatch_due(
            sql=app.extensions["cuponera"].sql, smtp=SmtpClient(server.smtp_settings()),
            policy=DeliveryPolicy(batch_size=50, send_concurrency=4), now=utcnow() + timedelta(minutes=1),
        )
    finally:
        server.stop()

    assert (report.claimed, report.sent, report.failed, report.retried) == (9, 7, 2, 0)
    assert 2 <= catcher.peak <= 4
    assert sorted(str(m["To"]) for m in catcher.messages) == sorted(good)
    rows = dict(
        (await session.execute(select(Notification.dedupe_key, Notification.status).where(Notification.dedupe_key.like("pool:%")))).all()
    )
    assert rows == {**{f"pool:{i}": "sent" for i in range(7)}, "pool:refused": "failed", "pool:broken": "failed"}


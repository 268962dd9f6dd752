"""The worker: the periodic jobs, the dispatch loop, and the in-process task of `make run`."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from controllers import worker_controller
from controllers.notification_controller import DeliveryPolicy
from controllers.outbox_controller import OutboxMessage, enqueue
from controllers.worker_controller import PeriodicJob, WorkerConfig, run_cycle, run_jobs
from domain.caller import Caller
from models.notification_model import Notification
from models.tenant_model import Tenant
from tests.conftest import MailServer, TestDatabase, app_config

CALLS: list[tuple[str, Any]] = []
PAYLOAD = {
    "customer_name": "María", "tenant_name": "EPM", "coupon_reference": "4500012345674", "amount": "20870",
    "expires_at": "2026-11-01T03:00:00Z",
}


async def record_now(*, session: AsyncSession, now: datetime) -> None:
    """A job taking `now`."""
    CALLS.append(("now", now))


async def crash(*, session: AsyncSession, now: datetime) -> None:
    """A job that fails."""
    raise RuntimeError("job bug")


async def queue_reminder(*, session: AsyncSession, now: datetime) -> None:
    """A job that queues a message in its transaction, as the coupon reminders do."""
    tenant_id = await session.scalar(select(Tenant.id).where(Tenant.is_default == true()))
    await enqueue(
        session=session,
        message=OutboxMessage(tenant_id=tenant_id, event="coupon_expiring", dedupe_key=f"coupon_expiring:{now.isoformat()}",
                              payload=PAYLOAD, recipient="maria@example.co"),
    )
    await session.commit()


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    CALLS.clear()


@pytest.fixture
def sql(app: Quart) -> SqlClient:
    return app.extensions["cuponera"].sql


async def test_jobs_run_in_order_and_a_failing_one_does_not_stop_the_rest(sql: SqlClient) -> None:
    now = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    jobs = [PeriodicJob("crashes", crash), PeriodicJob("takes-now", record_now)]

    report = await run_jobs(sql=sql, jobs=jobs, now=now)

    assert report.jobs_failed == ["crashes"]
    assert report.jobs_run == ["takes-now"]
    assert CALLS == [("now", now)]


async def fresh_view(session: AsyncSession) -> None:
    """End the session's read snapshot and forget loaded rows, to see what other sessions committed."""
    await session.rollback()
    session.expire_all()


async def test_the_default_jobs_expire_coupons_mark_overdue_and_remind(sql: SqlClient, session: AsyncSession) -> None:
    from controllers import coupon_controller
    from models.billing_model import Invoice
    from models.payment_model import Coupon
    from tests.factories import make_contract, make_customer, make_invoice

    tenant = await session.scalar(select(Tenant).where(Tenant.is_default == true()))
    customer = await make_customer(session, tenant)
    contract = await make_contract(session, customer)
    late = await make_invoice(session, contract, period="2026-09", due_on=date(2026, 10, 15))
    soon = await make_invoice(session, contract, period="2026-10", due_on=date(2026, 11, 20))
    await session.commit()
    late_id, soon_id = late.id, soon.id
    created = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    view = await coupon_controller.create_coupon(
        session=session, tenant=tenant, caller=Caller(role="operator"), invoice_ids=[soon_id], now=created
    )
    reference = view.coupon.reference
    report = await run_jobs(sql=sql, now=datetime(2026, 11, 20, 20, 0, tzinfo=UTC))

    assert report.jobs_run == ["expire-coupons", "mark-overdue", "coupon-reminders", "agreements", "suspensions"]
    await fresh_view(session)
    assert (await session.get_one(Invoice, late_id)).status == "overdue"
    assert (await session.get_one(Invoice, soon_id)).status == "issued"
    reminded = await session.scalar(
        select(Notification).where(Notification.event == "coupon_expiring")
    )
    assert reminded is not None and reminded.payload["coupon_reference"] == reference
    second = await run_jobs(sql=sql, now=datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    assert second.jobs_failed == []
    await fresh_view(session)
    assert (await session.scalar(select(Coupon.status).where(Coupon.reference == reference))) == "expired"
    assert (await session.scalar(select(Invoice.status).where(Invoice.id == soon_id))) == "overdue"


async def test_a_cycle_runs_the_jobs_then_sends_what_they_queued(sql: SqlClient, mail_server: MailServer) -> None:
    smtp = SmtpClient(mail_server.smtp_settings())
    jobs = [PeriodicJob("reminders", queue_reminder)]

    report = await run_cycle(sql=sql, smtp=smtp, config=WorkerConfig(), jobs=jobs)

    assert report.jobs_run == ["reminders"]
    assert report.dispatch is not None and report.dispatch.sent == 1
    [email] = mail_server.catcher.messages
    assert email["X-Cuponera-Event"] == "coupon_expiring"


async def wait_until_sent(sql: SqlClient, count: int) -> None:
    """Poll the outbox until `count` rows are sent (bounded, so a broken worker fails the test)."""
    for _ in range(400):
        async with sql.session() as fresh:
            sent = (await fresh.scalars(select(Notification.id).where(Notification.status == "sent"))).all()
        if len(sent) >= count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the worker did not send the message")


async def test_the_loop_keeps_polling_until_stopped(sql: SqlClient, mail_server: MailServer) -> None:
    smtp = SmtpClient(mail_server.smtp_settings())
    config = WorkerConfig(poll_seconds=0.02, jobs_seconds=3600, policy=DeliveryPolicy())
    stop = asyncio.Event()
    task = asyncio.create_task(worker_controller.run_worker(sql=sql, smtp=smtp, config=config, stop=stop, jobs=[]))

    async with sql.session(write=True) as session:
        await queue_reminder(session=session, now=datetime(2026, 1, 1, tzinfo=UTC))
    await wait_until_sent(sql, 1)
    stop.set()
    await asyncio.wait_for(task, timeout=5)

    assert task.exception() is None
    assert len(mail_server.catcher.messages) == 1


async def test_the_app_runs_the_worker_in_process_when_asked_and_stops_it_at_shutdown(
    database_url: str, test_database: TestDatabase, tmp_path: Path, mail_server: MailServer
) -> None:
    config = app_config(
        database_url, test_database, tmp_path,
        WORKER_IN_PROCESS=True, NOTIFY_POLL_SECONDS=0.02,
        SMTP_HOST="127.0.0.1", SMTP_PORT=mail_server.port, SMTP_STARTTLS=False,
    )
    application = create_app(config)
    async with application.test_app():
        services = application.extensions["cuponera"]
        worker = services.worker
        assert worker is not None
        async with services.sql.session(write=True) as session:
            await queue_reminder(session=session, now=datetime(2026, 1, 1, tzinfo=UTC))
        await wait_until_sent(services.sql, 1)

    assert worker.task.done() and not worker.task.cancelled()
    assert worker.task.exception() is None
    assert services.worker is None
    assert len(mail_server.catcher.messages) == 1


async def test_tests_never_start_the_in_process_worker(app: Quart) -> None:
    services = app.extensions["cuponera"]

    assert services.worker is None
    assert services.smtp is not None and services.smtp.settings.host is None

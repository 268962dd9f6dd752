"""The worker: periodic jobs found at run time, the dispatch loop, and the in-process task of `make run`."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from controllers import worker_controller
from controllers.notification_controller import DeliveryPolicy
from controllers.outbox_controller import OutboxMessage, enqueue
from controllers.worker_controller import PeriodicJob, WorkerConfig, run_cycle, run_jobs
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


async def record_today(*, session: AsyncSession, today: date) -> None:
    """A job taking `today`."""
    CALLS.append(("today", today))


async def crash(*, session: AsyncSession, now: datetime) -> None:
    """A job that fails."""
    raise RuntimeError("job bug")


async def queue_reminder(*, session: AsyncSession, now: datetime) -> None:
    """A job that queues a message in its transaction, as the coupon reminders do."""
    tenant_id = await session.scalar(select(Tenant.id).where(Tenant.is_default.is_(True)))
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


async def test_jobs_run_in_order_and_missing_or_failing_ones_do_not_stop_the_rest(sql: SqlClient) -> None:
    now = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    jobs = [
        PeriodicJob("not-built-yet", "controllers.no_such_controller", "expire"),
        PeriodicJob("no-function", __name__, "no_such_function"),
        PeriodicJob("crashes", __name__, "crash"),
        PeriodicJob("takes-now", __name__, "record_now"),
        PeriodicJob("takes-today", __name__, "record_today", clock_argument="today"),
    ]

    report = await run_jobs(sql=sql, jobs=jobs, now=now)

    assert report.jobs_skipped == ["not-built-yet", "no-function"]
    assert report.jobs_failed == ["crashes"]
    assert report.jobs_run == ["takes-now", "takes-today"]
    # 03:00 UTC is still 1 November in Bogotá, the default tenant's zone.
    assert CALLS == [("now", now), ("today", date(2026, 11, 1))]


def test_a_module_with_a_broken_import_is_a_bug_not_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_jobs_module.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(ModuleNotFoundError):
        worker_controller._resolve(PeriodicJob("broken", "broken_jobs_module", "run"))


async def test_today_is_the_date_of_the_tenant_furthest_behind(sql: SqlClient, session: AsyncSession) -> None:
    session.add(Tenant(code="cl", name="Chile", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000005"))
    await session.commit()
    just_after_midnight_in_santiago = datetime(2026, 11, 2, 3, 30, tzinfo=UTC)

    today = await worker_controller.earliest_local_date(sql=sql, now=just_after_midnight_in_santiago)

    assert today == date(2026, 11, 1)  # Bogotá is still on the 1st


async def test_a_cycle_runs_the_jobs_then_sends_what_they_queued(sql: SqlClient, mail_server: MailServer) -> None:
    smtp = SmtpClient(mail_server.smtp_settings())
    jobs = [PeriodicJob("reminders", __name__, "queue_reminder")]

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

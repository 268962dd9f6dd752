"""The `worker` CLI run as an operator would: once (cron, tests) and as a long-running process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select, true

from clients.sql_client import SqlClient
from config import ROOT
from controllers import billing_run_controller
from controllers.outbox_controller import OutboxMessage, enqueue
from models.billing_model import BillingRun
from models.notification_model import Notification
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import TEST_SECRET, TestDatabase
from tests.test_cli import run_cli

PAYLOAD = {
    "customer_name": "María Núñez", "tenant_name": "EPM", "invoice_number": "FAC-2026-000123",
    "contract_number": "100200300", "period": "2026-10", "amount_paid": "20870", "paid_at": "2026-11-01T03:00:00Z",
}


@pytest.fixture(autouse=True)
def no_smtp_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI inherits the environment; these tests want the .eml drop."""
    monkeypatch.delenv("SMTP_HOST", raising=False)


async def queue_paid(database_url: str, schema: str | None, count: int) -> None:
    client = SqlClient(database_url, schema=schema)
    try:
        async with client.session_scope(write=True) as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.is_default == true()))
            assert tenant_id is not None
            for n in range(count):
                await enqueue(
                    session=session,
                    message=OutboxMessage(tenant_id=tenant_id, event="invoice_paid", dedupe_key=f"invoice_paid:{n}",
                                          payload=PAYLOAD, recipient=f"cliente{n}@example.co"),
                )
            await session.commit()
    finally:
        await client.dispose()


async def statuses(database_url: str, schema: str | None) -> list[str]:
    client = SqlClient(database_url, schema=schema)
    try:
        async with client.session_scope() as session:
            return list((await session.scalars(select(Notification.status).order_by(Notification.id))).all())
    finally:
        await client.dispose()


async def test_worker_once_writes_eml_files_when_no_smtp_host(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    await queue_paid(database_url, test_database.schema, 3)

    code, out, err = await run_cli(["worker", "--once"], database_url=database_url, schema=test_database.schema, var_dir=tmp_path)

    assert code == 0, err
    assert "sent=3" in out
    emls = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(emls) == 3
    recipients = {str(message_from_bytes(p.read_bytes(), policy=policy.default)["To"]) for p in emls}
    assert recipients == {"cliente0@example.co", "cliente1@example.co", "cliente2@example.co"}
    assert await statuses(database_url, test_database.schema) == ["sent"] * 3
    code, out, _ = await run_cli(["worker", "--once"], database_url=database_url, schema=test_database.schema, var_dir=tmp_path)
    assert code == 0 and "claimed=0" in out
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 3


async def test_worker_runs_until_sigterm(database_url: str, test_database: TestDatabase, tmp_path: Path) -> None:
    await queue_paid(database_url, test_database.schema, 1)
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET, "VAR_DIR": str(tmp_path),
           "LOG_LEVEL": "WARNING", "NOTIFY_POLL_SECONDS": "0.05"}
    env.pop("DATABASE_SCHEMA", None)
    if test_database.schema:
        env["DATABASE_SCHEMA"] = test_database.schema
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "quart", "--app", "app", "worker", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(400):
            if list((tmp_path / "mail").glob("*.eml")):
                break
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, err.decode()
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    assert await statuses(database_url, test_database.schema) == ["sent"]


async def test_worker_once_runs_the_queued_bill_run_then_sends_its_invoices(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    schema = test_database.schema
    client = SqlClient(database_url, schema=schema)
    try:
        async with client.session_scope(write=True) as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.is_default == true()))
            assert tenant is not None
            await make_tariff(session, tenant, "electricity")
            for value in (10, 20):
                await make_metered_contract(session, tenant, readings={"2026-10": (value, value)})
            await session.commit()
            run_id = (await billing_run_controller.queue_run(
                session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5)
            )).id
    finally:
        await client.dispose()

    code, out, err = await run_cli(["worker", "--once"], database_url=database_url, schema=schema, var_dir=tmp_path)

    assert code == 0, err
    assert f"bill runs: {run_id}" in out
    client = SqlClient(database_url, schema=schema)
    try:
        async with client.session_scope() as session:
            run = await session.get(BillingRun, run_id)
            assert run is not None and (run.status, run.billed, run.claims) == ("completed", 2, 1)
            issued = (await session.scalars(
                select(Notification.status).where(Notification.event == "invoice_issued")
            )).all()
            assert issued == ["sent", "sent"]  # the same round dispatched what the run queued
    finally:
        await client.dispose()

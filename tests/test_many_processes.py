"""Two hypercorn app processes and two worker processes on one database and one SMTP sink: nothing lost or doubled."""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid
from collections import Counter
from datetime import date
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from clients.sql_client import SqlClient
from controllers import auth_controller, coupon_controller, tenant_controller
from controllers.coupon_controller import Caller
from models.billing_model import BillingRun, Invoice
from models.notification_model import Notification
from models.payment_model import Payment
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import TEST_PASSWORD, TestDatabase, free_port
from tests.payment_builders import make_debtor
from tests.served_app import app_process, worker_process

PAYMENTS = 50
CONTRACTS = 16
WORKER_FROM = {"a": "worker-a@cuponera.test", "b": "worker-b@cuponera.test"}


def last_month() -> str:
    """The most recent period that can be billed today."""
    today = date.today()
    return f"{today.year - 1}-12" if today.month == 1 else f"{today.year}-{today.month - 1:02d}"


class KillSink:
    """An SMTP sink that holds the first RCPT until the test opens the gate (so a worker can die mid-batch).

    A message counts as delivered only when its DATA is accepted; the held one never gets that far.
    """

    def __init__(self) -> None:
        self.held_from: str | None = None
        self.arrived = threading.Event()
        self.gate = threading.Event()
        self.delivered: list[tuple[str, str]] = []  # (envelope sender, Message-ID)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        """Hold the very first recipient of the run, accept the rest at once."""
        if self.held_from is None:
            self.held_from = envelope.mail_from
            self.arrived.set()
            await asyncio.to_thread(self.gate.wait, 120)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept and remember who sent which message."""
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.delivered.append((envelope.mail_from, str(message["Message-ID"])))
        return "250 Message accepted"


async def arrange(database_url: str, schema: str | None, period: str) -> tuple[str, str, list[int]]:
    """A tariff, metered contracts with a reading for `period`, an operator login and one coupon.

    Returns the operator's email, the coupon reference and the metered contracts' ids.
    """
    sql = SqlClient(database_url, schema=schema)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            await make_tariff(session, tenant, "electricity")
            metered = [
                await make_metered_contract(session, tenant, readings={period: (100 + n, 100 + n)}) for n in range(CONTRACTS)
            ]
            contract_ids = [m.contract.id for m in metered]
            await session.commit()
            operator = await auth_controller.create_user(
                session=session, tenant=tenant, email=f"op-{uuid.uuid4().hex[:8]}@example.com",
                password=TEST_PASSWORD, role="operator", full_name="Operadora", rounds=4,
            )
            debtor = await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=date(2099, 1, 15))
            view = await coupon_controller.create_coupon(
                session=session, tenant=tenant, caller=Caller(role="operator"), contract_number=debtor.contract.contract_number
            )
            return operator.email, view.coupon.reference, contract_ids
    finally:
        await sql.dispose()


async def pay(client: httpx.AsyncClient, base_url: str, reference: str) -> httpx.Response:
    """Pay the coupon by card; a dropped connection is retried with the same Idempotency-Key, as a real client would."""
    key = str(uuid.uuid4())
    for attempt in range(3):
        try:
            return await client.post(
                f"{base_url}/api/v1/payments",
                json={"coupon_reference": reference, "card_token": "tok_approved"},
                headers={"Idempotency-Key": key},
            )
        except httpx.TransportError:
            # On a loaded machine hypercorn may drop a fresh connection it could not read in time.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def outbox(database_url: str, schema: str | None) -> list[Any]:
    sql = SqlClient(database_url, schema=schema)
    try:
        async with sql.session_scope() as session:
            return list((await session.execute(
                select(Notification.event, Notification.status, Notification.attempts, Notification.dedupe_key)
            )).all())
    finally:
        await sql.dispose()


async def test_two_apps_and_two_workers_lose_and_double_nothing(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    schema = test_database.schema
    period = last_month()
    operator_email, reference, contract_ids = await arrange(database_url, schema, period)
    sink = KillSink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    common = {"RATE_LIMIT_ENABLED": "false", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
              "SMTP_STARTTLS": "false", "NOTIFY_POLL_SECONDS": "0.1", "NOTIFY_BATCH_SIZE": "4",
              "NOTIFY_LEASE_SECONDS": "3", "NOTIFY_RETRY_BASE_SECONDS": "0.1", "LOG_LEVEL": "INFO",
              "BILLING_RUN_STALE_SECONDS": "3",
              # One message in flight per worker, so the one the sink holds is the only one the victim has
              # not recorded when it dies: with several in flight, a message accepted in the instant before
              # the SIGKILL is legitimately sent again (at least once), which this test could not tell apart.
              "NOTIFY_SEND_CONCURRENCY": "1"}

    def where(name: str) -> dict[str, Any]:
        return {"database_url": database_url, "schema": schema, "var_dir": tmp_path / name}

    try:
        async with (
            app_process(**where("app1"), env=common) as app1,
            app_process(**where("app2"), env=common) as app2,
            worker_process(**where("worker_a"), env={**common, "MAIL_FROM": WORKER_FROM["a"]}) as worker_a,
            worker_process(**where("worker_b"), env={**common, "MAIL_FROM": WORKER_FROM["b"]}) as worker_b,
            httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=PAYMENTS * 2)) as anonymous,
            httpx.AsyncClient(timeout=120) as operator,
        ):
            apps = (app1.base_url, app2.base_url)
            # 50 payments on one coupon, alternating between the two app processes.
            payments = await asyncio.gather(*(pay(anonymous, apps[n % 2], reference) for n in range(PAYMENTS)))
            statuses = Counter(r.status_code for r in payments)
            assert set(statuses) == {201, 409}, [r.text for r in payments if r.status_code not in {201, 409}]
            fresh = [r for r in payments if r.status_code == 201 and r.headers["Idempotent-Replayed"] == "false"]
            assert len(fresh) == 1 and {r.json()["id"] for r in payments if r.status_code == 201} == {fresh[0].json()["id"]}
            assert {r.json()["code"] for r in payments if r.status_code == 409} <= {"already_paid", "payment_in_progress"}

            # The same bill run started on both app processes at once (one session works on both: same secret).
            login = await operator.post(f"{app1.base_url}/api/v1/auth/login", json={"email": operator_email, "password": TEST_PASSWORD})
            assert login.status_code == 200, login.text
            csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
            runs = await asyncio.gather(*(
                operator.post(f"{base}/api/v1/billing-runs", json={"period": period}, headers=csrf) for base in apps
            ))
            # Queued once: the other request joins the same run, which one of the workers runs.
            assert [r.status_code for r in runs] == [202, 202], [r.text for r in runs]
            assert len({r.json()["id"] for r in runs}) == 1

            # Both workers dispatch; the one holding the first message dies with SIGKILL mid-batch.
            assert await asyncio.to_thread(sink.arrived.wait, 60)
            victim, survivor = (worker_a, worker_b) if sink.held_from == WORKER_FROM["a"] else (worker_b, worker_a)
            victim.process.send_signal(signal.SIGKILL)
            await victim.process.wait()
            sink.gate.set()

            expected = CONTRACTS + 3  # every invoice_issued, the coupon_created and the two invoice_paid
            for _ in range(1200):
                rows = await outbox(database_url, schema)
                if len(rows) >= expected and all(row.status == "sent" for row in rows):
                    break
                assert survivor.process.returncode is None, survivor.log_path.read_text()
                await asyncio.sleep(0.1)
    finally:
        sink.gate.set()
        smtp.stop()

    # Exactly one approved payment.
    sql = SqlClient(database_url, schema=schema)
    try:
        async with sql.session_scope() as session:
            assert await session.scalar(select(func.count()).select_from(Payment).where(Payment.status == "approved")) == 1
            per_contract = (await session.execute(
                select(Invoice.contract_id, func.count())
                .where(Invoice.period == period, Invoice.contract_id.in_(contract_ids))
                .group_by(Invoice.contract_id)
            )).all()
            assert sorted(contract for contract, _ in per_contract) == sorted(contract_ids)
            assert {count for _, count in per_contract} == {1}
            billed = (await session.scalars(select(Invoice.total).where(Invoice.contract_id.in_(contract_ids)))).all()
            assert len(billed) == CONTRACTS and all(total > Decimal(0) for total in billed)
            # However many runs started, together they billed each contract once.
            runs_billed = await session.scalar(select(func.sum(BillingRun.billed)).where(BillingRun.period == period))
            assert runs_billed == CONTRACTS
    finally:
        await sql.dispose()

    rows = await outbox(database_url, schema)
    events = Counter(row.event for row in rows)
    assert events == {"invoice_issued": CONTRACTS, "coupon_created": 1, "invoice_paid": 2}
    assert {row.status for row in rows} == {"sent"}
    # Every message arrived exactly once, none twice, none lost.
    ids = Counter(message_id for _, message_id in sink.delivered)
    assert len(ids) == expected and set(ids.values()) == {1}
    # The victim's leased batch was taken over (one more attempt) and sent by the survivor.
    survivor_from = WORKER_FROM["b"] if victim is worker_a else WORKER_FROM["a"]
    taken_over = [row for row in rows if row.attempts == 1]
    assert taken_over
    assert Counter(sender for sender, _ in sink.delivered)[survivor_from] >= len(taken_over)

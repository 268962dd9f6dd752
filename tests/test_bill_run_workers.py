"""Bill runs out of the request: a served app queues them (202), worker processes run them.

- A worker killed with SIGKILL in the middle of a run: another worker resumes it from its last
  committed batch and every contract gets exactly one invoice, numbered without gaps.
- A bill run of 20 000 contracts while logins, coupons and payments go on against the served app:
  no 5xx (a 503 `database_busy` with Retry-After is retried, as a client would) and every payment
  settled exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from clients.sql_client import SqlClient
from controllers import auth_controller, tenant_controller
from models.billing_model import BillingRun, Invoice
from models.payment_model import Coupon, Payment
from models.sequence_model import TenantSequence
from tests.billing_builders import make_tariff
from tests.bulk_accounts import load_accounts
from tests.conftest import TEST_PASSWORD, TestDatabase
from tests.payment_builders import make_debtor
from tests.served_app import app_process, worker_process
from tests.test_many_processes import last_month

COMMON = {"RATE_LIMIT_ENABLED": "false", "NOTIFY_POLL_SECONDS": "0.2", "LOG_LEVEL": "INFO"}


async def arrange(database_url: str, schema: str | None, period: str, contracts: int, debtors: int = 0) -> tuple[str, list[str]]:
    """A tariff, `contracts` metered contracts with a reading for `period`, an operator and `debtors` debtors.

    Returns the operator's email and the debtors' contract numbers.
    """
    sql = SqlClient(database_url, schema=schema)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            await make_tariff(session, tenant, "electricity")
            await session.commit()
            await load_accounts(session, tenant.id, contracts, period)
            numbers, debtor_ids = [], []
            for n in range(debtors):
                debtor = await make_debtor(session, tenant, amounts=("85000",), due_on=date(2099, 1, 15), name=f"Deudora {n}")
                numbers.append(debtor.contract.contract_number)
                debtor_ids.append(debtor.contract.id)
            # The factories number the debtors' invoices from a counter of their own: keep those
            # numbers out of the run's way.
            for invoice in (await session.scalars(select(Invoice).where(Invoice.contract_id.in_(debtor_ids)))).all():
                invoice.number = f"DEBT-{invoice.id}"
            await session.commit()
            operator = await auth_controller.create_user(
                session=session, tenant=tenant, email=f"op-{uuid.uuid4().hex[:8]}@example.com",
                password=TEST_PASSWORD, role="operator", full_name="Operadora", rounds=4,
            )
            return operator.email, numbers
    finally:
        await sql.dispose()


async def operator_session(client: httpx.AsyncClient, base_url: str, email: str) -> dict[str, str]:
    """Log the operator in; returns the CSRF header for unsafe requests."""
    login = await client.post(f"{base_url}/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert login.status_code == 200, login.text
    return {"X-CSRF-Token": login.json()["csrf_token"]}


async def run_state(sql: SqlClient, run_id: int) -> BillingRun:
    async with sql.session_scope() as session:
        run = await session.get(BillingRun, run_id)
        assert run is not None
        return run


async def assert_one_invoice_each(sql: SqlClient, period: str, contracts: int) -> None:
    """Every metered contract billed once for the period, numbered from the tenant's counter without gaps."""
    async with sql.session_scope() as session:
        billed = select(Invoice.contract_id, Invoice.number).where(Invoice.period == period)
        rows = (await session.execute(billed)).all()
        per_contract = Counter(contract_id for contract_id, _ in rows)
        assert len(per_contract) == contracts and set(per_contract.values()) == {1}
        numbers = sorted(int(number.rsplit("-", 1)[1]) for _, number in rows)
        assert numbers == list(range(1, contracts + 1))
        last = await session.scalar(select(TenantSequence.last_value).where(TenantSequence.name == "invoice"))
        assert last == contracts


async def test_a_run_whose_worker_is_killed_is_resumed_by_another_worker(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    schema = test_database.schema
    period = last_month()
    # Hundreds of small batches, so that the test sees the run half-way whatever the machine's speed.
    contracts = 3_000
    email, _ = await arrange(database_url, schema, period, contracts)
    env = {**COMMON, "BILLING_RUN_BATCH_SIZE": "5", "BILLING_RUN_STALE_SECONDS": "1"}
    where = {"database_url": database_url, "schema": schema}
    sql = SqlClient(database_url, schema=schema)
    try:
        async with (
            app_process(**where, var_dir=tmp_path / "app", env=env) as app,
            httpx.AsyncClient(timeout=60) as operator,
        ):
            csrf = await operator_session(operator, app.base_url, email)
            async with worker_process(**where, var_dir=tmp_path / "worker_a", env=env, name="worker-a") as victim:
                queued = await operator.post(f"{app.base_url}/api/v1/billing-runs", json={"period": period}, headers=csrf)
                assert queued.status_code == 202, queued.text
                run_id = queued.json()["id"]
                location = f"{app.base_url}{queued.headers['Location']}"
                # Wait for worker A's first committed batches, then hold the run's row (on SQLite: the
                # database) so that its next batch cannot commit, and kill it there.
                for _ in range(1200):
                    progress = (await operator.get(location)).json()
                    if progress["contracts_done"] > 0:
                        break
                    assert victim.process.returncode is None, victim.log_path.read_text()
                    await asyncio.sleep(0.02)
                async with sql.session_scope(write=True) as hold:
                    held = await hold.execute(
                        update(BillingRun).where(BillingRun.id == run_id, BillingRun.status == "running").values(error=None)
                    )
                    assert held.rowcount == 1, "the run finished before the worker could be killed"
                    done = await hold.scalar(select(BillingRun.contracts_done).where(BillingRun.id == run_id))
                    assert 0 < done < contracts
                    victim.process.send_signal(signal.SIGKILL)
                    await victim.process.wait()
                    await hold.rollback()
            killed = await run_state(sql, run_id)
            assert (killed.status, killed.claims) == ("running", 1)

            # The survivor works in bigger batches: the run goes on from the cursor, whatever the batch size.
            survivor_env = {**env, "BILLING_RUN_BATCH_SIZE": "500"}
            async with worker_process(**where, var_dir=tmp_path / "worker_b", env=survivor_env, name="worker-b") as survivor:
                for _ in range(1200):
                    progress = (await operator.get(location)).json()
                    if progress["status"] != "running":
                        break
                    assert survivor.process.returncode is None, survivor.log_path.read_text()
                    await asyncio.sleep(0.05)
            assert progress["status"] == "completed", progress
            assert (progress["contracts_done"], progress["contracts_total"], progress["billed"]) == (contracts,) * 3
            assert (progress["skipped"], progress["failed"]) == (0, 0)
        resumed = await run_state(sql, run_id)
        # The same run, claimed a second time, went on from its cursor.
        assert resumed.claims == 2 and resumed.last_contract_id >= done
        await assert_one_invoice_each(sql, period, contracts)
    finally:
        await sql.dispose()


class Load:
    """Requests made against the served app while the run goes on; 503 busy is retried, anything else 5xx fails."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url
        self.statuses: Counter[int] = Counter()
        self.busy = 0

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _ in range(60):
            response = await self.client.request(method, f"{self.base_url}{path}", **kwargs)
            if response.status_code == 503:
                assert response.json()["code"] == "database_busy", response.text
                self.busy += 1
                await asyncio.sleep(float(response.headers["Retry-After"]))
                continue
            self.statuses[response.status_code] += 1
            assert response.status_code < 500, response.text
            return response
        raise AssertionError(f"{method} {path} stayed busy")


async def test_a_bill_run_of_20000_contracts_starves_no_login_coupon_or_payment(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    schema = test_database.schema
    period = last_month()
    contracts, debtors = 20_000, 12
    email, numbers = await arrange(database_url, schema, period, contracts, debtors)
    env = {**COMMON, "BILLING_RUN_BATCH_SIZE": "2000"}
    where = {"database_url": database_url, "schema": schema}
    sql = SqlClient(database_url, schema=schema)
    try:
        async with (
            app_process(**where, var_dir=tmp_path / "app", env=env) as app,
            worker_process(**where, var_dir=tmp_path / "worker", env=env),
            httpx.AsyncClient(timeout=60) as operator,
            httpx.AsyncClient(timeout=60) as anonymous,
            httpx.AsyncClient(timeout=60) as logins,
        ):
            csrf = await operator_session(operator, app.base_url, email)
            load = Load(anonymous, app.base_url)
            login_load = Load(logins, app.base_url)
            queued = await operator.post(f"{app.base_url}/api/v1/billing-runs", json={"period": period}, headers=csrf)
            assert queued.status_code == 202, queued.text
            location = f"{app.base_url}{queued.headers['Location']}"
            running = asyncio.Event()

            async def pay(number: str) -> int:
                coupon = await load.send("POST", "/api/v1/coupons", json={"contract_number": number})
                assert coupon.status_code == 201, coupon.text
                key = {"Idempotency-Key": str(uuid.uuid4())}
                body = {"coupon_reference": coupon.json()["reference"], "card_token": "tok_approved"}
                paid = await load.send("POST", "/api/v1/payments", json=body, headers=key)
                assert paid.status_code == 201, paid.text
                return int(paid.json()["id"])

            async def keep_logging_in() -> int:
                count = 0
                while count < 6 or not running.is_set():
                    response = await login_load.send(
                        "POST", "/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
                    )
                    assert response.status_code == 200, response.text
                    count += 1
                return count

            async def watch() -> dict[str, Any]:
                # The run goes on while the load does: wait until it has committed a batch.
                for _ in range(2400):
                    progress = (await operator.get(location)).json()
                    if progress["contracts_done"] > 0:
                        running.set()
                    if progress["status"] in {"completed", "failed"}:
                        running.set()
                        return progress
                    await asyncio.sleep(0.05)
                raise AssertionError(f"the run did not finish: {progress}")

            async def payments_during_the_run() -> list[int]:
                ids = []
                for number in numbers:
                    ids.append(await pay(number))
                return ids

            progress, logged_in, paid = await asyncio.gather(watch(), keep_logging_in(), payments_during_the_run())

        assert progress["status"] == "completed", progress
        assert (progress["billed"], progress["contracts_done"]) == (contracts, contracts + debtors)
        assert logged_in >= 6 and len(paid) == debtors
        assert set(load.statuses) <= {201} and set(login_load.statuses) == {200}
        async with sql.session_scope() as session:
            approved = Counter((await session.scalars(
                select(Payment.coupon_id).where(Payment.status == "approved")
            )).all())
            assert sorted(approved.values()) == [1] * debtors
            assert await session.scalar(select(func.count()).select_from(Payment)) == debtors
            assert set((await session.scalars(select(Coupon.status).where(Coupon.id.in_(approved)))).all()) == {"paid"}
        await assert_one_invoice_each(sql, period, contracts)
    finally:
        await sql.dispose()

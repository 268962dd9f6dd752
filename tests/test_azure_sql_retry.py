"""Deadlock victims and Azure SQL's transient errors: recognised from the DBAPI error, and retried safely."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from clients import sql_client
from clients.sql_client import (
    TRANSIENT_ERROR_NUMBERS,
    RetryPolicy,
    is_transient_error,
    retry_unit_of_work,
    sql_error_numbers,
)
from controllers.billing_run_controller import run_period
from models.billing_model import Invoice
from models.payment_model import Coupon, IdempotencyKey, Payment
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import TEST_PASSWORD, ApiClient
from tests.factories import make_customer_user
from tests.payment_builders import Debtor, make_debtor

DUE = date(2099, 1, 15)


class FakePyodbcError(Exception):
    """What pyodbc raises: args are (SQLSTATE, message), the native number in the message in parentheses."""


def pyodbc_error(number: int, sqlstate: str = "HY000") -> FakePyodbcError:
    """A DBAPI error shaped like pyodbc's for a SQL Server error number."""
    return FakePyodbcError(
        sqlstate,
        f"[{sqlstate}] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Something went wrong. ({number}) "
        "(SQLExecDirectW)",
    )


@pytest.mark.parametrize("number", sorted(TRANSIENT_ERROR_NUMBERS))
def test_each_transient_number_is_recognised_in_a_pyodbc_error(number: int) -> None:
    error = pyodbc_error(number)
    assert sql_error_numbers(error)[0] == {number}
    assert is_transient_error(error)


def test_the_deadlock_victim_is_recognised_as_pyodbc_reports_it() -> None:
    error = FakePyodbcError(
        "40001",
        "[40001] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Transaction (Process ID 57) was deadlocked "
        "on lock resources with another process and has been chosen as the deadlock victim. Rerun the "
        "transaction. (1205) (SQLExecDirectW)",
    )
    assert sql_error_numbers(error) == ({1205}, {"40001"})
    assert is_transient_error(error)


def test_the_number_is_found_through_sqlalchemys_wrapper() -> None:
    from sqlalchemy.exc import DBAPIError

    wrapped = DBAPIError.instance("UPDATE coupons ...", {}, pyodbc_error(40613), FakePyodbcError)
    assert is_transient_error(wrapped)
    assert is_transient_error(RuntimeError("while settling")) is False
    cause = RuntimeError("while settling")
    cause.__cause__ = pyodbc_error(49918)
    assert is_transient_error(cause)


@pytest.mark.parametrize(
    "error",
    [
        pyodbc_error(18456, "28000"),  # login failed: retrying will not help
        pyodbc_error(2627, "23000"),  # unique key violation: a real answer, not a glitch
        pyodbc_error(547, "23000"),  # foreign key violation
        FakePyodbcError("HYT00", "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Login timeout expired (0)"),
    ],
)
def test_other_errors_are_not_transient(error: Exception) -> None:
    assert not is_transient_error(error)


def test_postgresql_deadlocks_are_retried_too() -> None:
    class PgError(Exception):
        sqlstate = "40P01"

    assert is_transient_error(PgError("deadlock detected"))


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=0.3)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.3)]:
        delays = {policy.delay(attempt) for _ in range(200)}
        assert all(0 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter: retries of many requests do not march in step


async def test_retry_runs_the_unit_again_after_a_rollback_and_stops_at_the_bound() -> None:
    calls: list[str] = []
    policy = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)

    async def flaky() -> str:
        calls.append("work")
        if calls.count("work") < 3:
            raise pyodbc_error(1205, "40001")
        return "done"

    async def rollback() -> None:
        calls.append("rollback")

    assert await retry_unit_of_work(flaky, rollback=rollback, policy=policy) == "done"
    assert calls == ["work", "rollback", "work", "rollback", "work"]

    async def always() -> None:
        calls.append("again")
        raise pyodbc_error(40501)

    calls.clear()
    with pytest.raises(FakePyodbcError):
        await retry_unit_of_work(always, policy=policy)
    assert calls == ["again"] * 3


async def test_retry_leaves_other_errors_and_vetoed_retries_alone() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise pyodbc_error(2627, "23000")

    with pytest.raises(FakePyodbcError):
        await retry_unit_of_work(broken)
    assert calls == 1

    async def deadlocked() -> None:
        nonlocal calls
        calls += 1
        raise pyodbc_error(1205, "40001")

    calls = 0
    with pytest.raises(FakePyodbcError):
        await retry_unit_of_work(deadlocked, may_retry=lambda: False)
    assert calls == 1


async def test_retry_waits_on_the_event_loop_not_by_blocking_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    def no_blocking_sleep(_seconds: float) -> None:
        raise AssertionError("time.sleep would freeze every request of the process")

    monkeypatch.setattr(time, "sleep", no_blocking_sleep)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    attempts = 0

    async def once_deadlocked() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise pyodbc_error(1205, "40001")
        return "ok"

    task = asyncio.create_task(ticker())
    try:
        result = await retry_unit_of_work(once_deadlocked, policy=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01))
    finally:
        task.cancel()
    assert result == "ok" and attempts == 2
    assert ticks > 0


def test_connect_retry_waits_with_asyncio_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool's creator runs in SQLAlchemy's greenlet: the retry hands the wait to the event loop."""
    from sqlalchemy.util import greenlet_spawn

    attempts: list[int] = []

    class FakePool:
        def __init__(self) -> None:
            self._creator = self.create

        def create(self) -> str:
            attempts.append(1)
            if len(attempts) < 3:
                raise pyodbc_error(40613)
            return "connection"

    class FakeEngine:
        def __init__(self) -> None:
            self.sync_engine = type("S", (), {"pool": FakePool()})()

    monkeypatch.setattr(sql_client, "RETRY_POLICY", RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0))
    engine = FakeEngine()
    sql_client._install_azure_connect_retry(engine)  # type: ignore[arg-type]
    assert asyncio.run(greenlet_spawn(engine.sync_engine.pool._creator)) == "connection"
    assert len(attempts) == 3


# --- A deadlock on the first attempt, through the real app and database -----------------------


@contextmanager
def deadlock_once(pattern: str) -> Iterator[list[str]]:
    """Raise a deadlock-victim error at the DBAPI boundary the first time a statement matches `pattern`.

    The error is the running driver's own OperationalError class carrying SQL Server's message,
    so SQLAlchemy wraps it exactly as it wraps pyodbc's on Azure SQL.
    """
    raised: list[str] = []
    matcher = re.compile(pattern, re.IGNORECASE | re.DOTALL)

    def inject(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not raised and matcher.search(statement):
            raised.append(statement)
            dbapi = conn.dialect.loaded_dbapi
            raise dbapi.OperationalError(
                "[40001] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Transaction (Process ID 61) was "
                "deadlocked on lock resources with another process and has been chosen as the deadlock victim. "
                "Rerun the transaction. (1205) (SQLExecDirectW)"
            )

    event.listen(Engine, "before_cursor_execute", inject)
    try:
        yield raised
    finally:
        event.remove(Engine, "before_cursor_execute", inject)


class CountingGateway:
    """The payment gateway boundary, counting charges (the only place tests may stand in for a service)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.charges: list[str] = []

    async def charge(self, **kwargs: Any) -> Any:
        """Count, then let the sandbox answer."""
        self.charges.append(kwargs["merchant_reference"])
        return await self.real.charge(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
async def debtor(session: AsyncSession, tenant: Tenant) -> Debtor:
    return await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)


@pytest.fixture
async def customer(app: Quart, session: AsyncSession, debtor: Debtor) -> ApiClient:
    user = await make_customer_user(session, debtor.customer)
    await session.commit()
    api = ApiClient(app)
    assert (await api.login(user.email, TEST_PASSWORD)).status_code == 200
    return api


@pytest.fixture
def gateway(app: Quart) -> CountingGateway:
    services = app.extensions["cuponera"]
    counting = CountingGateway(services.payment_gateway)
    services.payment_gateway = counting
    return counting


async def _coupon(client: ApiClient, debtor: Debtor) -> str:
    response = await client.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return (await response.get_json())["reference"]


async def _committed(session: AsyncSession, debtor: Debtor) -> tuple[int, list[str], list[str]]:
    contract_id = debtor.contract.id
    session.expire_all()
    payments = await session.scalar(select(func.count()).select_from(Payment).where(Payment.status == "approved"))
    keys = list(await session.scalars(select(IdempotencyKey.status)))
    invoices = list(
        await session.scalars(select(Invoice.status).where(Invoice.contract_id == contract_id).order_by(Invoice.id))
    )
    return int(payments or 0), keys, invoices


@pytest.mark.parametrize(
    ("where", "pattern"),
    [
        # Transaction 1 (key, coupon claim, pending payment): the whole request runs again.
        ("claim", r"^\s*UPDATE coupons SET status"),
        # Transaction 2 (settlement after the card was charged): only the settlement runs again.
        ("settlement", r"^\s*UPDATE payments SET status"),
    ],
)
async def test_a_deadlocked_payment_is_retried_into_exactly_one_payment(
    customer: ApiClient, debtor: Debtor, session: AsyncSession, gateway: CountingGateway, where: str, pattern: str
) -> None:
    reference = await _coupon(customer, debtor)
    with deadlock_once(pattern) as raised:
        response = await customer.post(
            "/api/v1/payments",
            json={"coupon_reference": reference, "card_token": "tok_approved"},
            headers={"Idempotency-Key": f"deadlock-{where}"},
        )
    assert raised, "the deadlock was never injected"
    assert response.status_code == 201, await response.get_data(as_text=True)
    body = await response.get_json()
    assert body["status"] == "approved"
    assert len(gateway.charges) == 1  # the card is charged once, whichever transaction was the victim
    assert await _committed(session, debtor) == (1, ["completed"], ["paid", "paid"])
    coupon = await session.scalar(select(Coupon.status).where(Coupon.reference == reference))
    assert coupon == "paid"
    # The same key replays the one payment instead of making another.
    again = await customer.post(
        "/api/v1/payments",
        json={"coupon_reference": reference, "card_token": "tok_approved"},
        headers={"Idempotency-Key": f"deadlock-{where}"},
    )
    assert again.status_code == 201 and (await again.get_json())["id"] == body["id"]
    assert len(gateway.charges) == 1


async def test_a_request_that_keeps_deadlocking_gets_a_problem_not_a_retry_storm(
    customer: ApiClient, debtor: Debtor, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = await _coupon(customer, debtor)
    injected = 0

    def always(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal injected
        if statement.lstrip().upper().startswith("UPDATE COUPONS SET STATUS"):
            injected += 1
            raise conn.dialect.loaded_dbapi.OperationalError("deadlock victim. (1205)")

    event.listen(Engine, "before_cursor_execute", always)
    try:
        response = await customer.post(
            "/api/v1/payments",
            json={"coupon_reference": reference, "card_token": "tok_approved"},
            headers={"Idempotency-Key": "always-deadlocked"},
        )
    finally:
        event.remove(Engine, "before_cursor_execute", always)
    assert injected == sql_client.RETRY_POLICY.attempts
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert (await response.get_json())["code"] == "database_busy"
    assert await _committed(session, debtor) == (0, [], ["issued", "issued"])


async def test_a_deadlocked_bill_run_batch_is_run_again(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    for n in range(3):
        await make_metered_contract(session, tenant, readings={"2026-10": (100 + n, 100 + n)})
    await session.commit()
    with deadlock_once(r"^\s*INSERT INTO invoice_lines") as raised:
        run = await run_period(session=session, tenant=tenant, period="2026-10", batch_size=2, today=date(2026, 11, 5))
    assert raised
    assert run.status == "completed"
    assert run.billed == 3
    numbers = list(await session.scalars(select(Invoice.number).where(Invoice.billing_run_id == run.id)))
    assert len(numbers) == len(set(numbers)) == 3

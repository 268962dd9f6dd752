"""Azure SQL's smaller rules, proved on every database: byte-wise idempotency keys, `[` in LIKE, counters in SQL."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable

from clients.sql_client import SqlClient, azure_sql_dialect, read_committed_snapshot_is_on
from controllers import auth_controller
from controllers.customer_controller import like_pattern
from models.base_model import utcnow
from models.payment_model import IdempotencyKey
from models.tenant_model import Tenant
from models.user_model import LoginThrottle
from tests.conftest import ApiClient
from tests.factories import make_customer


async def test_idempotency_keys_differing_only_in_case_are_two_keys(session: AsyncSession, tenant: Tenant) -> None:
    now = utcnow()
    for key in ("abc", "ABC", "Abc"):
        session.add(
            IdempotencyKey(
                tenant_id=tenant.id, scope="user:1", key=key, request_hash="h" * 64, status="in_progress", created_at=now
            )
        )
    await session.commit()  # a case-insensitive comparison would raise a unique-key violation here
    found = await session.scalars(select(IdempotencyKey.key).where(IdempotencyKey.key == "abc"))
    assert list(found) == ["abc"]


def test_on_azure_sql_the_idempotency_key_has_a_binary_collation() -> None:
    ddl = str(CreateTable(IdempotencyKey.__table__).compile(dialect=azure_sql_dialect()))
    assert "[key] VARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL" in ddl


def test_like_patterns_escape_sql_servers_character_class_bracket() -> None:
    assert like_pattern("a[b]c") == "%a\\[b]c%"
    assert like_pattern("50%_\\") == "%50\\%\\_\\\\%"


async def test_a_name_with_brackets_is_found_literally(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    await make_customer(session, tenant, name="Taller [Norte]")
    await make_customer(session, tenant, name="Taller N")
    await session.commit()
    response = await operator_client.get("/api/v1/customers?name=%5BN")  # "[N"
    assert response.status_code == 200
    assert [c["name"] for c in (await response.get_json())["items"]] == ["Taller [Norte]"]


async def _throttle_row(session: AsyncSession, email: str) -> LoginThrottle:
    session.expire_all()
    row = await session.scalar(select(LoginThrottle).where(LoginThrottle.email == email))
    assert row is not None
    return row


async def test_failed_logins_are_counted_in_sql_even_from_stale_reads(session: AsyncSession, tenant: Tenant) -> None:
    """Two failures computed from the same stale row still count twice: the UPDATE adds to the stored value."""
    policy = auth_controller.LockoutPolicy(threshold=3, window=timedelta(minutes=15))
    now = utcnow()
    key = {"tenant_id": tenant.id, "email": "stale@example.com", "ip": "203.0.113.7"}
    await auth_controller._record_failure(session=session, throttle=None, policy=policy, now=now, **key)
    stale = await _throttle_row(session, key["email"])
    await auth_controller._record_failure(session=session, throttle=stale, policy=policy, now=now, **key)
    row = await _throttle_row(session, key["email"])
    assert (row.failed_count, row.window_start, row.locked_until) == (2, now, None)
    await auth_controller._record_failure(session=session, throttle=stale, policy=policy, now=now, **key)
    row = await _throttle_row(session, key["email"])
    assert (row.failed_count, row.window_start) == (0, None)
    assert row.locked_until == now + policy.lock_for


async def test_a_failure_after_the_window_starts_a_new_count(session: AsyncSession, tenant: Tenant) -> None:
    policy = auth_controller.LockoutPolicy(threshold=3, window=timedelta(minutes=15))
    then = utcnow() - timedelta(hours=1)
    key = {"tenant_id": tenant.id, "email": "window@example.com", "ip": "203.0.113.8"}
    await auth_controller._record_failure(session=session, throttle=None, policy=policy, now=then, **key)
    row = await _throttle_row(session, key["email"])
    await auth_controller._record_failure(session=session, throttle=row, policy=policy, now=then, **key)
    now = utcnow()
    await auth_controller._record_failure(session=session, throttle=row, policy=policy, now=now, **key)
    row = await _throttle_row(session, key["email"])
    assert (row.failed_count, row.window_start, row.locked_until) == (1, now, None)


@pytest.mark.parametrize(("value", "warns"), [(1, False), (0, True)])
async def test_read_committed_snapshot_off_is_logged_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, value: int, warns: bool
) -> None:
    """The start-up check, run against a stand-in for SQL Server's catalog (sys.databases, DB_NAME())."""
    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/rcsi.db")

    @event.listens_for(client.engine.sync_engine, "connect")
    def _catalog(dbapi_connection: Any, _record: Any) -> None:
        # aiosqlite's adapter exposes the sqlite3 connection's create_function through its driver connection.
        dbapi_connection.create_function("DB_NAME", 0, lambda: "cuponera")

    try:
        async with client.engine.begin() as conn:
            await conn.exec_driver_sql(f"ATTACH DATABASE '{tmp_path}/sys.db' AS sys")
            await conn.exec_driver_sql("CREATE TABLE sys.databases (name TEXT, is_read_committed_snapshot_on INTEGER)")
            await conn.exec_driver_sql(
                "INSERT INTO sys.databases VALUES ('master', 1), ('cuponera', ?)", (value,)
            )
            with caplog.at_level(logging.WARNING, logger="clients.sql_client"):
                assert await read_committed_snapshot_is_on(conn) is (not warns)
    finally:
        await client.dispose()
    warned = [r.getMessage() for r in caplog.records if "READ_COMMITTED_SNAPSHOT" in r.getMessage()]
    assert bool(warned) is warns
    if warns:
        assert "ALTER DATABASE CURRENT SET READ_COMMITTED_SNAPSHOT ON" in warned[0]


async def test_the_start_up_check_runs_only_on_sql_server(tmp_path: Path) -> None:
    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/plain.db")
    try:
        assert await client.check_server_settings() is None
        async with client.engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await client.dispose()

"""A request whose write cannot get the database in time answers 503 `database_busy` with Retry-After, never 500."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from clients.sql_client import build_engine, is_busy_error, is_transient_error
from tests.conftest import ApiClient, TestDatabase


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"DATABASE_BUSY_TIMEOUT_SECONDS": 0.3, "RATE_LIMIT_ENABLED": False}


async def test_a_write_that_cannot_get_a_connection_in_time_is_503_busy_with_retry_after(
    app: Quart, client: ApiClient
) -> None:
    engine = app.extensions["cuponera"].sql.write_engine
    pool = engine.sync_engine.pool
    # Every connection writers may use is taken (SQLite: the one writer; PostgreSQL: the pool and its overflow).
    held = [await engine.connect() for _ in range(pool.size() + max(pool._max_overflow, 0))]
    try:
        response = await client.post("/api/v1/auth/login", json={"email": "nadie@example.com", "password": "x" * 12})
    finally:
        for connection in held:
            await connection.close()
    assert response.status_code == 503, await response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "1"
    assert response.content_type == "application/problem+json"
    assert (await response.get_json())["code"] == "database_busy"

    # Once the database is free again the same request is answered normally.
    again = await client.post("/api/v1/auth/login", json={"email": "nadie@example.com", "password": "x" * 12})
    assert again.status_code == 401


async def test_a_write_waiting_on_another_process_lock_is_503_busy(
    app: Quart, client: ApiClient, database_url: str, test_database: TestDatabase
) -> None:
    other = build_engine(database_url, schema=test_database.schema)  # like another process on the database
    try:
        async with other.connect() as conn:
            if conn.dialect.name == "sqlite":
                # The file's write lock: the app's writer waits out its busy timeout ("database is locked").
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
                await conn.begin()
            else:
                # The table login writes to: the app's statement waits out its lock_timeout (55P03).
                await conn.begin()
                await conn.exec_driver_sql("LOCK TABLE login_throttles IN ACCESS EXCLUSIVE MODE")
            response = await client.post("/api/v1/auth/login", json={"email": "nadie@example.com", "password": "x" * 12})
            await conn.rollback()
    finally:
        await other.dispose()
    assert response.status_code == 503, await response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "1"
    assert (await response.get_json())["code"] == "database_busy"


def test_sqlite_locked_and_pool_timeouts_are_busy_not_transient(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            waiter.execute("BEGIN IMMEDIATE")
    finally:
        waiter.close()
        holder.close()
    wrapped = OperationalError("BEGIN IMMEDIATE", {}, locked.value)
    assert is_busy_error(wrapped) and not is_transient_error(wrapped)
    assert is_busy_error(PoolTimeoutError("QueuePool limit of size 1 overflow 0 reached"))
    assert not is_busy_error(OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: t")))

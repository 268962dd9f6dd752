"""The SQL client: backend tuning, UTC datetimes and Azure SQL connect retries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from quart import Quart
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clients import sql_client
from clients.sql_client import SqlClient, engine_options, is_transient_error
from models.tenant_model import Tenant
from models.user_model import User
from tests.conftest import make_user


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        async with client.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == sql_client.DEFAULT_BUSY_TIMEOUT_SECONDS * 1000
    finally:
        await client.dispose()


async def test_every_sqlite_connection_syncs_each_commit(tmp_path: Path) -> None:
    """synchronous=FULL (2) on the reading, writing, short-read and short-write connections: a committed
    payment survives a power loss, not only a crash of the process."""
    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        for options in ({}, {"write": True}, {"short_reads": True}, {"write": True, "short_writes": True}):
            async with client.session_scope(**options) as session:
                assert (await session.execute(text("PRAGMA synchronous"))).scalar() == 2, options
    finally:
        await client.dispose()


async def test_foreign_keys_are_enforced(app: Quart, session: AsyncSession) -> None:
    from sqlalchemy.exc import IntegrityError

    session.add(User(tenant_id=999, email="x@example.com", password_hash="x", role="admin"))
    with pytest.raises(IntegrityError):
        await session.commit()


async def test_datetimes_come_back_utc_aware(app: Quart, session: AsyncSession) -> None:
    user = await make_user(app, role="operator")
    bogota = timezone(timedelta(hours=-5))
    moment = datetime(2026, 11, 23, 7, 30, tzinfo=bogota)
    row = await session.get(User, user.id)
    assert row is not None
    row.locked_until = moment
    await session.commit()
    session.expunge_all()
    fetched = await session.scalar(select(User.locked_until).where(User.id == user.id))
    assert fetched == moment
    assert fetched is not None and fetched.utcoffset() == timedelta(0)
    assert fetched.hour == 12
    created = await session.scalar(select(Tenant.created_at).limit(1))
    assert created is not None and created.tzinfo is not None


async def test_naive_datetimes_are_refused(app: Quart, session: AsyncSession) -> None:
    user = await make_user(app, role="operator")
    row = await session.get(User, user.id)
    assert row is not None
    row.locked_until = datetime(2026, 1, 1)
    with pytest.raises(Exception, match="naive datetime"):
        await session.commit()


def test_postgres_schema_goes_into_search_path_and_waits_are_bounded() -> None:
    options = engine_options("postgresql+asyncpg://u@h/db", schema="tenant_a", busy_timeout=2.5)
    assert options["connect_args"] == {"server_settings": {"search_path": "tenant_a", "lock_timeout": "2500"}}
    assert options["pool_pre_ping"] is True and options["pool_timeout"] == 2.5


def test_mssql_options_encrypt_pre_ping_and_recycle() -> None:
    url = "mssql+aioodbc://u:p@server.database.windows.net/db?driver=ODBC+Driver+18+for+SQL+Server"
    options = engine_options(url)
    query = sql_client.odbc_url(url).query
    assert query["Encrypt"] == "yes" and query["TrustServerCertificate"] == "no"
    assert query["ConnectRetryCount"] == "3" and query["ConnectRetryInterval"] == "10"
    assert options["connect_args"] == {"timeout": sql_client.LOGIN_TIMEOUT_SECONDS}
    assert options["pool_pre_ping"] is True
    assert 0 < options["pool_recycle"] < 30 * 60


def test_missing_pyodbc_explains_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "pyodbc":
            raise ImportError("libodbc.so.2: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(sql_client.DatabaseDriverMissing, match="apt-get install unixodbc"):
        sql_client.build_engine("mssql+aioodbc://u:p@server/db")


async def test_mssql_engine_builds_when_odbc_is_installed_else_explains() -> None:
    import ctypes.util

    url = "mssql+aioodbc://u:p@server.database.windows.net/db?driver=ODBC+Driver+18+for+SQL+Server"
    if ctypes.util.find_library("odbc"):
        engine = sql_client.build_engine(url)
        assert engine.dialect.name == "mssql"
        assert engine.pool._recycle == sql_client.AZURE_POOL_RECYCLE_SECONDS
        await engine.dispose()
    else:
        with pytest.raises(sql_client.DatabaseDriverMissing, match="unixodbc"):
            sql_client.build_engine(url)


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("('HY000', '[HY000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Database is not currently available (40613)')", True),
        ("[SQL Server]The service is currently busy (40501)", True),
        ("[SQL Server]Login failed for user 'x'. (18456)", False),
    ],
)
def test_transient_azure_errors_are_recognised(message: str, transient: bool) -> None:
    assert is_transient_error(Exception(message)) is transient


async def test_write_sessions_begin_immediate_on_sqlite(tmp_path: Path) -> None:
    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    statements: list[str] = []
    from sqlalchemy import event

    def capture(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    for engine in (client.engine, client.write_engine):
        event.listen(engine.sync_engine, "before_cursor_execute", capture)

    try:
        async with client.session_scope(write=True) as session:
            await session.execute(text("SELECT 1"))
        async with client.session_scope() as session:
            await session.execute(text("SELECT 2"))
    finally:
        await client.dispose()
    assert "BEGIN IMMEDIATE" in statements
    assert "BEGIN DEFERRED" in statements


async def test_sqlite_writers_of_one_process_queue_in_arrival_order(tmp_path: Path) -> None:
    import asyncio

    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/fifo.db")
    order: list[int] = []
    try:
        async with client.session_scope(write=True) as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
            await session.commit()

        async def writer(n: int, started: asyncio.Event | None) -> None:
            async with client.session_scope(write=True) as session:
                await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                order.append(n)
                if started is not None:
                    started.set()
                    await asyncio.sleep(0.05)  # hold the write transaction while the others queue
                await session.commit()

        first = asyncio.Event()
        holder = asyncio.create_task(writer(0, first))
        await first.wait()
        waiting = []
        for n in range(1, 6):
            waiting.append(asyncio.create_task(writer(n, None)))
            await asyncio.sleep(0.005)
        await asyncio.gather(holder, *waiting)
    finally:
        await client.dispose()
    assert order == [0, 1, 2, 3, 4, 5]


async def test_short_reads_on_sqlite_run_on_the_event_loop_thread_with_the_same_settings(tmp_path: Path) -> None:
    import threading

    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/s.db")
    threads: list[int] = []
    try:
        async with client.session_scope(write=True) as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT)"))
            await session.execute(text("INSERT INTO t (id, at) VALUES (1, 'a')"))
            await session.commit()
        async with client.session_scope(short_reads=True) as session:
            connection = await session.connection()
            raw = (await connection.get_raw_connection()).driver_connection
            assert isinstance(raw, sql_client._InlineConnection)
            raw._connection.create_function("here", 0, lambda: threads.append(threading.get_ident()) or 1)
            assert (await session.execute(text("SELECT here()"))).scalar() == 1
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() == sql_client.SHORT_READ_BUSY_SECONDS * 1000
            assert (await session.execute(text("SELECT at FROM t WHERE id = 1"))).scalar() == "a"
        assert threads == [threading.get_ident()]  # the loop's own thread, not aiosqlite's
        # One snapshot per session (its BEGIN), a fresh one for the next: a commit made meanwhile is
        # seen by the next short read only.
        async with client.session_scope(short_reads=True) as reading:
            assert (await reading.execute(text("SELECT at FROM t WHERE id = 1"))).scalar() == "a"
            async with client.session_scope(write=True) as session:
                await session.execute(text("UPDATE t SET at = 'b' WHERE id = 1"))
                await session.commit()
            assert (await reading.execute(text("SELECT at FROM t WHERE id = 1"))).scalar() == "a"
        async with client.session_scope(short_reads=True) as session:
            assert (await session.execute(text("SELECT at FROM t WHERE id = 1"))).scalar() == "b"
            with pytest.raises(Exception, match="no such column"):
                await session.execute(text("SELECT nope FROM t"))
        # A write session is never inline, whatever it promises.
        write = client.session(write=True, short_reads=True)
        assert write.bind is client.write_engine
        await write.close()
    finally:
        await client.dispose()


async def test_short_reads_off_sqlite_are_ordinary_read_sessions() -> None:
    client = SqlClient("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        assert client.short_read_engine is client.engine and client.change_signal is None
        session = client.session(short_reads=True)
        assert session.bind is client.engine
        await session.close()
    finally:
        await client.dispose()


async def test_datetimes_come_back_utc_aware_through_short_reads(app: Quart) -> None:
    user = await make_user(app, role="operator")
    sql = app.extensions["cuponera"].sql
    async with sql.session_scope(short_reads=True) as session:
        created = await session.scalar(select(User.created_at).where(User.id == user.id))
    assert created is not None and created.utcoffset() == timedelta(0)


async def test_short_writes_on_sqlite_run_on_the_loop_thread_in_order_with_the_other_writers(tmp_path: Path) -> None:
    import asyncio
    import threading

    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/sw.db")
    threads: list[tuple[str, int]] = []
    order: list[str] = []
    try:
        async with client.session_scope(write=True) as session:
            await session.execute(text("CREATE TABLE t (n TEXT)"))
            hybrid = (await (await session.connection()).get_raw_connection()).driver_connection
            assert isinstance(hybrid, sql_client._HybridWriteConnection)  # the one write connection
            hybrid.raw.create_function("here", 1, lambda name: threads.append((name, threading.get_ident())) or 1)
            await session.commit()

        async def writer(name: str, short: bool, hold: asyncio.Event | None = None) -> None:
            async with client.session_scope(write=True, short_writes=short) as session:
                await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": name})
                assert (await session.execute(text("SELECT here(:n)"), {"n": name})).scalar() == 1
                order.append(name)
                if hold is not None:
                    hold.set()
                    await asyncio.sleep(0.05)  # hold the write transaction while the others queue
                await session.commit()

        held = asyncio.Event()
        first = asyncio.create_task(writer("long-1", False, held))
        await held.wait()
        others = []
        for name, short in (("short-2", True), ("long-3", False), ("short-4", True)):
            others.append(asyncio.create_task(writer(name, short)))
            await asyncio.sleep(0.005)
        await asyncio.gather(first, *others)
        async with client.session_scope(write=True, short_writes=True) as session:
            assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() == 0
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 4
        async with client.session_scope(write=True) as session:
            # A transaction on aiosqlite's thread gets its busy timeout back.
            assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() == sql_client.DEFAULT_BUSY_TIMEOUT_SECONDS * 1000
    finally:
        await client.dispose()
    assert order == ["long-1", "short-2", "long-3", "short-4"]  # one queue, first come first served
    loop_thread = threading.get_ident()
    assert [name for name, thread in threads if thread == loop_thread] == ["short-2", "short-4"]
    assert all(thread != loop_thread for name, thread in threads if name.startswith("long"))


async def test_a_short_write_waits_for_another_process_lock_on_the_loop_then_is_busy(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    path = tmp_path / "lock.db"
    client = SqlClient(f"sqlite+aiosqlite:///{path}", busy_timeout=0.3)
    try:
        async with client.session_scope(write=True) as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
            await session.commit()
        other = sqlite3.connect(path, isolation_level=None)  # another process's write lock
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Exception) as raised:
            async with client.session_scope(write=True, short_writes=True) as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
        assert sql_client.is_busy_error(raised.value)  # answered 503 database_busy by the routes
        # The wait is on the event loop, not in SQLite's busy handler on the loop's thread: a callback
        # of the loop releases the other lock while the writer waits, and the same write goes through.
        asyncio.get_running_loop().call_soon(other.rollback)
        async with client.session_scope(write=True, short_writes=True) as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))
            await session.commit()
        other.close()
        async with client.session_scope() as session:
            assert (await session.execute(text("SELECT n FROM t"))).scalars().all() == [2]
    finally:
        await client.dispose()

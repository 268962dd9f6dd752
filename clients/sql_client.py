"""The SQL client: builds the async engine and sessions for SQLite, PostgreSQL and Azure SQL."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import secrets
import sqlite3
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session

log = logging.getLogger(__name__)

# SQLite has no decimal type; SQLAlchemy stores Numeric as text-compatible values and warns once.
warnings.filterwarnings("ignore", message=r".*does \*not\* support Decimal objects natively.*")

# How long a unit of work waits for the database (a pooled connection; on SQLite also the write lock)
# before it is answered 503 `database_busy` (DATABASE_BUSY_TIMEOUT_SECONDS).
DEFAULT_BUSY_TIMEOUT_SECONDS = 15.0
# Azure SQL drops idle connections after about 30 minutes; recycle well before that.
AZURE_POOL_RECYCLE_SECONDS = 1_200
T = TypeVar("T")

# SQL Server's deadlock victim: the transaction was rolled back and can simply run again.
DEADLOCK_VICTIM = 1205
# Error numbers Azure SQL documents as transient (failover, throttling, service busy, dropped
# connections), plus the deadlock victim: a unit of work that meets one is rolled back and run again.
TRANSIENT_ERROR_NUMBERS = frozenset({
    DEADLOCK_VICTIM,
    64, 233, 4060, 4221, 10053, 10054, 10060, 10928, 10929,
    40143, 40197, 40501, 40540, 40613, 49918, 49919, 49920,
})
# SQLSTATEs that mean "run the transaction again": serialization failure (SQL Server reports its
# deadlock victims so) and PostgreSQL's deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# pyodbc puts the server's native number in the message, in parentheses: "... victim. (1205) (SQLExecDirectW)".
_NATIVE_NUMBER = re.compile(r"\((\d{2,6})\)")
_SQLSTATE = re.compile(r"^\[?([0-9A-Z]{5})\]?$")
AZURE_CONNECT_ATTEMPTS = 5

# The ODBC Driver 18 for SQL Server: TLS verified against the server's certificate, and the driver's
# own idle-connection resiliency (it reconnects a broken idle connection by itself).
ODBC_DRIVER_NAME = "ODBC Driver 18 for SQL Server"
ODBC_CONNECTION_DEFAULTS = {
    "Encrypt": "yes",
    "TrustServerCertificate": "no",
    "ConnectRetryCount": "3",
    "ConnectRetryInterval": "10",
}
LOGIN_TIMEOUT_SECONDS = 30

ODBC_HELP = (
    "The mssql+aioodbc driver needs pyodbc, unixODBC and Microsoft's ODBC Driver 18 for SQL Server. "
    "On Debian/Ubuntu run `apt-get install unixodbc`, then `pip install -r requirements.txt` "
    "(its `mssql-python-odbc` wheel ships the driver), or install Microsoft's `msodbcsql18` package."
)


# What Azure SQL reports itself as: SQL Server "12" with the large-type names of 2012 and later.
AZURE_SQL_SERVER_VERSION = (12, 0, 2000, 8)


def configure_as_azure_sql(dialect: Any) -> Any:
    """Set an mssql dialect up the way connecting to Azure SQL would (for offline compiles)."""
    dialect.deprecate_large_types = True
    dialect.server_version_info = AZURE_SQL_SERVER_VERSION
    dialect._setup_version_attributes()
    dialect._supports_nvarchar_max = True
    return dialect


def azure_sql_dialect() -> Any:
    """An mssql+pyodbc dialect configured as Azure SQL, to compile statements without a server."""
    from sqlalchemy.dialects.mssql.pyodbc import MSDialect_pyodbc

    # qmark: the parameter style pyodbc gives the dialect when it connects.
    return configure_as_azure_sql(MSDialect_pyodbc(deprecate_large_types=True, paramstyle="qmark"))


class DatabaseDriverMissing(RuntimeError):
    """The database URL needs a driver that is not installed; the message says what to install."""


def engine_options(
    url: str, *, schema: str | None = None, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Keyword arguments for `create_async_engine` suited to the URL's backend."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": busy_timeout}}
    if backend == "postgresql":
        # A statement waiting longer than the bound for a row lock fails with lock_not_available (55P03),
        # which is answered 503 `database_busy` like a pool timeout.
        server_settings = {"lock_timeout": str(int(busy_timeout * 1000))}
        if schema:
            server_settings["search_path"] = schema
        return {"pool_pre_ping": True, "pool_timeout": busy_timeout, "connect_args": {"server_settings": server_settings}}
    if backend == "mssql":
        # Encrypt/TrustServerCertificate/ConnectRetry* travel in the URL's query (see odbc_url),
        # which SQLAlchemy writes into the ODBC connection string; `timeout` is pyodbc's login timeout.
        return {
            "pool_pre_ping": True,
            "pool_recycle": AZURE_POOL_RECYCLE_SECONDS,
            "connect_args": {"timeout": LOGIN_TIMEOUT_SECONDS},
        }
    return {}


def bundled_odbc_driver() -> str | None:
    """The path of the ODBC Driver 18 library the `mssql-python-odbc` wheel ships, if installed."""
    try:
        import mssql_python_odbc
    except ImportError:
        return None
    lib = Path(mssql_python_odbc.get_libs_dir()) / "linux" / "debian_ubuntu" / "x86_64" / "lib"
    found = sorted(lib.glob("libmsodbcsql-18.*.so*"))
    return str(found[-1]) if found else None


def odbc_url(url: str | URL) -> URL:
    """An mssql URL with our ODBC options; the named driver, else the bundled one when it is not registered."""
    parsed = make_url(url)
    query = {**ODBC_CONNECTION_DEFAULTS, **parsed.query}
    if "odbc_connect" in query:
        return parsed  # a hand-written connection string is taken as the operator wrote it
    driver = query.get("driver") or ODBC_DRIVER_NAME
    if driver == ODBC_DRIVER_NAME and not _driver_registered(driver):
        driver = bundled_odbc_driver() or driver
    return parsed.set(query={**query, "driver": driver})


def _driver_registered(name: str) -> bool:
    try:
        import pyodbc
    except ImportError:
        return False
    return name in pyodbc.drivers()


def _require_pyodbc() -> None:
    """Import pyodbc lazily so the SQLite path never needs ODBC."""
    try:
        import pyodbc  # noqa: F401
    except ImportError as exc:
        raise DatabaseDriverMissing(f"{ODBC_HELP} ({exc})") from exc


def build_engine(
    url: str, *, schema: str | None = None, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS, **overrides: Any
) -> AsyncEngine:
    """Create the async engine for a database URL, with backend-specific tuning."""
    target: str | URL = url
    if make_url(url).get_backend_name() == "mssql":
        _require_pyodbc()
        target = odbc_url(url)
    options = engine_options(url, schema=schema, busy_timeout=busy_timeout)
    engine = create_async_engine(target, **{**options, **overrides})
    backend = engine.dialect.name
    if backend == "sqlite":
        _install_sqlite_pragmas(engine, busy_timeout)
    elif backend == "mssql":
        _install_azure_connect_retry(engine)
    return engine


def _set_up_sqlite_connection(dbapi_connection: Any, busy_timeout: float) -> None:
    """A new SQLite connection's settings: WAL, enforced foreign keys, the busy timeout, synchronous."""
    # The driver's own implicit BEGIN is turned off; the "begin" hooks emit ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    # FULL: each commit syncs the WAL, so a payment committed survives a power loss too (NORMAL could lose
    # the last commits). Measured on the quick-pay pair: within run-to-run noise here (README, Performance).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout: float, *, inline: bool = False) -> None:
    """WAL for concurrent readers, enforced foreign keys and a busy timeout on every connection.

    `inline`: the connections are `_InlineConnection`s, whose BEGIN goes straight to sqlite3.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _set_up_sqlite_connection(dbapi_connection, busy_timeout)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers use BEGIN IMMEDIATE: they take the write lock up front and queue on the busy
        # timeout, instead of failing with "database is locked" when a read lock cannot be
        # upgraded. Readers stay DEFERRED so they never block anyone under WAL.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if inline:
            # On the loop's thread already: no statement machinery needed for a constant BEGIN.
            connection.connection.driver_connection._connection.execute(f"BEGIN {mode}")
        else:
            connection.exec_driver_sql(f"BEGIN {mode}")


def _install_azure_connect_retry(engine: AsyncEngine) -> None:
    """Retry a new connection when Azure SQL answers with a transient error."""
    from sqlalchemy.util import await_only

    pool = engine.sync_engine.pool
    original_creator = pool._creator

    def creator(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, AZURE_CONNECT_ATTEMPTS + 1):
            try:
                return original_creator(*args, **kwargs)
            except Exception as exc:  # pyodbc.Error; imported lazily
                if attempt == AZURE_CONNECT_ATTEMPTS or not is_transient_error(exc):
                    raise
                log.warning("transient Azure SQL error on connect (attempt %d): %s", attempt, exc)
                # The pool calls us inside SQLAlchemy's greenlet: wait on the event loop, never block it.
                await_only(asyncio.sleep(RETRY_POLICY.delay(attempt)))
        raise AssertionError("unreachable")

    pool._creator = creator


def _error_chain(exc: BaseException) -> list[BaseException]:
    """The exception, the DBAPI error SQLAlchemy wraps (`.orig`) and their causes."""
    chain: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is seen for seen in chain):
            continue
        chain.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return chain


def sql_error_numbers(exc: BaseException) -> tuple[set[int], set[str]]:
    """The native error numbers and SQLSTATEs an exception carries (pyodbc: args and message)."""
    numbers: set[int] = set()
    states: set[str] = set()
    for error in _error_chain(exc):
        for attr in ("sqlstate", "pgcode"):
            value = getattr(error, attr, None)
            if isinstance(value, str):
                states.add(value)
        for arg in getattr(error, "args", ()):
            if isinstance(arg, int) and not isinstance(arg, bool):
                numbers.add(arg)  # drivers such as pymssql put the number first
            elif isinstance(arg, str):
                if match := _SQLSTATE.match(arg.strip()):
                    states.add(match.group(1))
                numbers.update(int(n) for n in _NATIVE_NUMBER.findall(arg))
    return numbers, states


# SQLite's answer when its busy timeout ran out waiting for another process's write lock.
_SQLITE_BUSY = ("database is locked", "database table is locked")
# PostgreSQL: lock_timeout ran out (lock_not_available); SQL Server: lock request time out (1222).
BUSY_SQLSTATES = frozenset({"55P03"})
BUSY_ERROR_NUMBERS = frozenset({1222})


def is_busy_error(exc: BaseException) -> bool:
    """True when the database could not be had in time: no pooled connection within the pool timeout
    (the single SQLite writer of this process), SQLite's busy timeout, or a lock timeout.

    Nothing was written; the request can be answered "busy, try again" rather than run again at once.
    """
    numbers, states = sql_error_numbers(exc)
    if numbers & BUSY_ERROR_NUMBERS or states & BUSY_SQLSTATES:
        return True
    return any(
        isinstance(error, PoolTimeoutError)
        or (isinstance(error, sqlite3.OperationalError) and any(busy in str(error) for busy in _SQLITE_BUSY))
        for error in _error_chain(exc)
    )


def is_transient_error(exc: BaseException) -> bool:
    """True for a deadlock victim or one of Azure SQL's transient errors: the unit of work may run again."""
    numbers, states = sql_error_numbers(exc)
    return bool(numbers & TRANSIENT_ERROR_NUMBERS or states & RETRYABLE_SQLSTATES)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff and full jitter."""

    attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


RETRY_POLICY = RetryPolicy()


async def retry_unit_of_work(
    work: Callable[[], Awaitable[T]],
    *,
    rollback: Callable[[], Awaitable[Any]] | None = None,
    may_retry: Callable[[], bool] = lambda: True,
    policy: RetryPolicy = RETRY_POLICY,
) -> T:
    """Run `work` (one transaction) again when it fails with a transient error, after `rollback`.

    Only safe when `work` is one unit of work: everything it did is undone by the rollback, and what it
    does outside the database is idempotent. `may_retry` can veto a retry (say, once something committed).
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return await work()
        except Exception as exc:
            if attempt == policy.attempts or not is_transient_error(exc) or not may_retry():
                raise
            if rollback is not None:
                await rollback()
            wait = policy.delay(attempt)
            log.warning("transient database error, attempt %d of %d, again in %.2fs: %s", attempt, policy.attempts, wait, exc)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


class ChangeSignal:
    """A small file beside a SQLite database whose content changes after every commit that changed a watched table.

    Every process on the machine that opens the database finds the same file, and reading it (open,
    read a few bytes, close) costs microseconds, where a statement through aiosqlite's thread costs
    about half a millisecond of CPU. A process may keep what it read from a watched table for as long
    as the signal reads the same as it did before that read: a change commits first and is signalled
    after, so a process that read before the change sees a new signal on its next look.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            self.bump()

    def read(self) -> bytes | None:
        """The current signal; None when it cannot be read (then nothing may be kept)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            return os.read(fd, 64) or None
        except OSError:
            return None
        finally:
            os.close(fd)

    def bump(self) -> None:
        """Give the signal a new value: written aside, then renamed over, so a reader never sees half of it."""
        aside = self.path.with_name(f"{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            aside.write_bytes(secrets.token_hex(16).encode())
            os.replace(aside, self.path)
        except OSError:
            # Not signalled: a reader keeps stale rows until its own time limit. Say so loudly.
            log.exception("could not write the change signal %s", self.path)
            aside.unlink(missing_ok=True)


# Tables whose committed changes are signalled (see ChangeSignal): the session check keeps users per process.
SIGNALLED_TABLES = frozenset({"users"})
_CHANGED = "cuponera_signalled_change"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other backends and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _signal_changes(session_class: type[Session], signal: ChangeSignal, tables: frozenset[str]) -> None:
    """Bump `signal` after a commit of a session of `session_class` that changed one of `tables`.

    Both ways of changing rows are seen: objects flushed (dirty or deleted) and UPDATE/DELETE statements
    executed through the session. A rollback forgets the mark; a conservative extra bump is harmless.
    """

    @event.listens_for(session_class, "do_orm_execute")
    def _on_execute(state: ORMExecuteState) -> None:
        if state.is_update or state.is_delete:
            table = getattr(state.statement, "table", None)
            if getattr(table, "name", None) in tables:
                state.session.info[_CHANGED] = True

    @event.listens_for(session_class, "after_flush")
    def _on_flush(session: Session, _context: Any) -> None:
        for instance in (*session.dirty, *session.deleted):
            if getattr(instance, "__tablename__", None) in tables:
                session.info[_CHANGED] = True
                return

    @event.listens_for(session_class, "after_commit")
    def _on_commit(session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            signal.bump()

    @event.listens_for(session_class, "after_rollback")
    def _on_rollback(session: Session) -> None:
        session.info.pop(_CHANGED, None)


# How long a short read on the event loop's thread may wait for SQLite (WAL readers wait only while
# another connection recovers the WAL after a crash); past it the request is answered 503 database_busy.
SHORT_READ_BUSY_SECONDS = 0.1


class _InlineCursor:
    """aiosqlite's cursor interface over a plain sqlite3 cursor, run on the calling thread."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> _InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> _InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: runs the function at once and settles the future."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller, as aiosqlite's thread does
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class _InlineConnection:
    """aiosqlite's connection interface over a plain sqlite3 connection, run on the event loop's thread.

    Each aiosqlite call is a trip to the connection's own thread and back through the event loop
    (about 0.6 ms of CPU per statement, counting the cursor, the fetch, BEGIN and the rollback);
    here the same call runs where it is made. Only for short, index-bounded reads (`SqlClient.session
    (short_reads=True)`): while a statement runs, the event loop waits, so anything that may scan
    stays on aiosqlite's thread.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._conn = connection  # what SQLAlchemy's isolation_level setter reaches for
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    def cursor(self) -> _InlineCursor:
        return _InlineCursor(self._connection.cursor())

    async def commit(self) -> None:
        self._connection.commit()

    async def rollback(self) -> None:
        self._connection.rollback()

    async def close(self) -> None:
        self._connection.close()

    def stop(self) -> None:
        self._connection.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._connection.create_function(*args, **kwargs)


class _HybridWriteConnection:
    """The single SQLite write connection: aiosqlite's interface, on aiosqlite's thread or, per transaction, inline.

    A transaction whose session opted in (`SqlClient.session(write=True, short_writes=True)`, a few
    index-bounded statements such as the quick-pay coupon and card payment) runs its statements on the
    event loop's thread, as short reads do; any other transaction (bill runs, imports, collection
    files) goes to aiosqlite's thread as before. Both kinds share the one pooled connection, so the
    process's writers still queue first come, first served. The mode is set by the "begin" hook
    (`_begin_write`); between transactions the connection is idle, so the two threads never use it
    at once.
    """

    def __init__(self, connection: Any) -> None:
        self._aio = connection
        self.inline = False
        self.busy_ms: int | None = None  # the busy timeout last set on the connection
        self._inline_tx = _RunNow()

    @property
    def raw(self) -> sqlite3.Connection:
        return self._aio._conn  # type: ignore[no-any-return]

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.raw

    @property
    def _connection(self) -> Any:
        return self._aio._connection

    @property
    def _tx(self) -> Any:
        return self._inline_tx if self.inline else self._aio._tx

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    def cursor(self) -> Any:
        return _InlineCursor(self.raw.cursor()) if self.inline else self._aio.cursor()

    async def commit(self) -> None:
        if self.inline:
            self.raw.commit()
        else:
            await self._aio.commit()

    async def rollback(self) -> None:
        if self.inline:
            self.raw.rollback()
        else:
            await self._aio.rollback()

    async def close(self) -> None:
        await self._aio.close()

    def stop(self) -> None:
        self._aio.stop()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        await self._aio.create_function(*args, **kwargs)


# How often an inline write transaction looks again for SQLite's write lock held by another process
# (the first wait, doubling up to the last): it waits on the event loop, never blocking it.
INLINE_BEGIN_FIRST_WAIT = 0.001
INLINE_BEGIN_LONGEST_WAIT = 0.05


def _set_busy_timeout(connection: _HybridWriteConnection, milliseconds: int) -> None:
    if connection.busy_ms != milliseconds:
        connection.raw.execute(f"PRAGMA busy_timeout={milliseconds}")
        connection.busy_ms = milliseconds


def _begin_inline(connection: _HybridWriteConnection, busy_timeout: float) -> None:
    """BEGIN IMMEDIATE on the loop's thread without ever waiting there for another process's write lock.

    SQLite's busy handler would sleep on the loop's thread, so it is off (timeout 0) for inline
    transactions: a busy BEGIN is tried again after a sleep on the event loop (called in SQLAlchemy's
    greenlet, like the Azure connect retry), until `busy_timeout` has passed; then SQLite's "database
    is locked" goes up as it would from the busy handler (503 database_busy). Once BEGIN IMMEDIATE
    holds the write lock, nothing in WAL mode waits for another connection; should anything still be
    busy, it fails at once (503) instead of waiting on the loop.
    """
    from sqlalchemy.util import await_only

    _set_busy_timeout(connection, 0)
    deadline = asyncio.get_running_loop().time() + busy_timeout
    wait = INLINE_BEGIN_FIRST_WAIT
    while True:
        try:
            connection.raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not any(busy in str(exc) for busy in _SQLITE_BUSY) or asyncio.get_running_loop().time() >= deadline:
                raise
        await_only(asyncio.sleep(wait))
        wait = min(wait * 2, INLINE_BEGIN_LONGEST_WAIT)


def _hybrid_write_engine(url: str, busy_timeout: float) -> AsyncEngine:
    """The SQLite write engine: one pooled `_HybridWriteConnection`, BEGIN IMMEDIATE, inline where asked."""
    import aiosqlite

    database = sqlite_file(url)
    busy_ms = int(busy_timeout * 1000)

    async def connect() -> _HybridWriteConnection:
        # check_same_thread off: inline transactions use it from the loop's thread, the others from
        # aiosqlite's, never both at once (one checkout at a time, see _HybridWriteConnection).
        opened = aiosqlite.connect(str(database), timeout=busy_timeout, check_same_thread=False)
        opened._thread.daemon = True
        return _HybridWriteConnection(await opened)

    engine = create_async_engine(
        url, async_creator=connect, pool_size=1, max_overflow=0, pool_timeout=busy_timeout, connect_args={"timeout": busy_timeout}
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        _set_up_sqlite_connection(dbapi_connection, busy_timeout)  # on aiosqlite's thread: the connection is new
        record.driver_connection.busy_ms = busy_ms

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        hybrid: _HybridWriteConnection = connection.connection.driver_connection
        hybrid.inline = bool(connection.get_execution_options().get(INLINE_WRITES_OPTION))
        if hybrid.inline:
            _begin_inline(hybrid, busy_timeout)
        else:
            # The idle connection's busy timeout is set from here (microseconds; its thread waits on its queue).
            _set_busy_timeout(hybrid, busy_ms)
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


INLINE_WRITES_OPTION = "cuponera_inline_writes"


def _inline_sqlite_engine(url: str, busy_timeout: float) -> AsyncEngine:
    """An engine whose SQLite connections run statements on the event loop's thread (see _InlineConnection)."""
    database = sqlite_file(url)

    async def connect() -> _InlineConnection:
        # check_same_thread off only so the garbage collector may close it from elsewhere; it is used
        # from the event loop's thread alone.
        return _InlineConnection(sqlite3.connect(str(database), timeout=busy_timeout, check_same_thread=False))

    engine = create_async_engine(url, async_creator=connect, connect_args={"timeout": busy_timeout})
    _install_sqlite_pragmas(engine, busy_timeout, inline=True)
    return engine


class SqlClient:
    """Owns the engine and the session factory for the app's lifetime."""

    def __init__(
        self, url: str, *, schema: str | None = None, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.url = url
        self.schema = schema
        self.engine = build_engine(url, schema=schema, busy_timeout=busy_timeout)
        # SQLite only (one machine by nature): commits that change users bump a file every process reads
        # (see ChangeSignal). Elsewhere None: the session check reads the user row on every request.
        database_file = sqlite_file(url)
        self.change_signal = ChangeSignal(database_file.with_name(f"{database_file.name}-changes")) if database_file else None
        # A Session class of this client's own, so the change hooks see only its sessions.
        session_class: type[Session] = type("ClientSession", (Session,), {})
        if self.change_signal is not None:
            _signal_changes(session_class, self.change_signal, SIGNALLED_TABLES)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False, sync_session_class=session_class
        )
        self.write_engine = self.engine
        if self.engine.dialect.name == "sqlite":
            # SQLite has one writer at a time. Writers of this process queue, first come first
            # served, for the single connection of their own pool instead of polling the database
            # lock through SQLite's busy handler (whose sleeps of up to 100 ms, in no order, made a
            # long latency tail). Other processes (the CLI) still meet the busy timeout.
            self.write_engine = (
                _hybrid_write_engine(url, busy_timeout)
                if database_file is not None
                else build_engine(
                    url, schema=schema, busy_timeout=busy_timeout, pool_size=1, max_overflow=0, pool_timeout=busy_timeout
                ).execution_options(sqlite_begin="IMMEDIATE")
            )
        self.write_sessionmaker = async_sessionmaker(
            self.write_engine, expire_on_commit=False, autoflush=False, sync_session_class=session_class
        )
        # Short writes on a SQLite file run on the event loop's thread, on the same single write
        # connection (see _HybridWriteConnection); elsewhere the ordinary write sessions.
        self.short_write_sessionmaker = self.write_sessionmaker
        if database_file is not None:
            self.short_write_sessionmaker = async_sessionmaker(
                self.write_engine.execution_options(**{INLINE_WRITES_OPTION: True}),
                expire_on_commit=False, autoflush=False, sync_session_class=session_class,
            )
        # Short reads on SQLite run on the event loop's thread (see _InlineConnection); elsewhere the
        # ordinary read sessions (asyncpg and aioodbc have no per-statement thread trip to save).
        self.short_read_engine = self.engine
        self.short_read_sessionmaker = self.sessionmaker
        if database_file is not None:
            self.short_read_engine = _inline_sqlite_engine(url, SHORT_READ_BUSY_SECONDS)
            self.short_read_sessionmaker = async_sessionmaker(
                self.short_read_engine, expire_on_commit=False, autoflush=False, sync_session_class=session_class
            )

    def session(self, *, write: bool = False, short_reads: bool = False, short_writes: bool = False) -> AsyncSession:
        """A new session; the caller closes it. Pass write=True for units of work that change data.

        `short_reads=True` (ignored with write) promises that every statement is a short, index-bounded
        read (a page of one customer's invoices, a row by key): on SQLite they then run on the event
        loop's thread, which stops the whole process while each runs. Never for reports or scans.
        `short_writes=True` (with write) promises the same of every write transaction of the session
        (a few rows by key: a coupon, a card payment); on a SQLite file they then run on the event
        loop's thread too (see _HybridWriteConnection), still queued in order with every other writer.
        """
        if write:
            return (self.short_write_sessionmaker if short_writes else self.write_sessionmaker)()
        return (self.short_read_sessionmaker if short_reads else self.sessionmaker)()

    @asynccontextmanager
    async def session_scope(
        self, *, write: bool = False, short_reads: bool = False, short_writes: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A session closed on exit; commit explicitly inside."""
        async with self.session(write=write, short_reads=short_reads, short_writes=short_writes) as session:
            yield session

    async def ping(self) -> None:
        """Run `SELECT 1`; raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_server_settings(self) -> bool | None:
        """At start-up on SQL Server: warn when READ_COMMITTED_SNAPSHOT is off (None elsewhere)."""
        if self.engine.dialect.name != "mssql":
            return None
        async with self.engine.connect() as conn:
            return await read_committed_snapshot_is_on(conn)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
        if self.short_read_engine is not self.engine:
            await self.short_read_engine.dispose()


READ_COMMITTED_SNAPSHOT_SQL = "SELECT is_read_committed_snapshot_on FROM sys.databases WHERE name = DB_NAME()"


async def read_committed_snapshot_is_on(conn: Any) -> bool:
    """Whether the database reads committed data from row versions; logs a warning when it does not.

    Azure SQL turns READ_COMMITTED_SNAPSHOT on by default. Without it readers take shared locks and
    wait for writers: the list pages and bill-run reads then block on payments, and deadlocks multiply.
    """
    on = bool(await conn.scalar(text(READ_COMMITTED_SNAPSHOT_SQL)))
    if not on:
        log.warning(
            "READ_COMMITTED_SNAPSHOT is OFF on this database; readers will block writers. "
            "Run: ALTER DATABASE CURRENT SET READ_COMMITTED_SNAPSHOT ON"
        )
    return on


def upgrade_to_head(url: str, *, schema: str | None = None) -> None:
    """Run every Alembic migration against a database (sync; from async code use asyncio.to_thread)."""
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[1]
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes.update(url=url, schema=schema, configure_logging=False)
    command.upgrade(cfg, "head")

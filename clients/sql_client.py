"""The SQL client: builds the async engine and sessions for SQLite, PostgreSQL and Azure SQL."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger(__name__)

# SQLite has no decimal type; SQLAlchemy stores Numeric as text-compatible values and warns once.
warnings.filterwarnings("ignore", message=r".*does \*not\* support Decimal objects natively.*")

SQLITE_BUSY_TIMEOUT_MS = 15_000
# Azure SQL drops idle connections after about 30 minutes; recycle well before that.
AZURE_POOL_RECYCLE_SECONDS = 1_200
# Error numbers Azure SQL documents as transient (throttling, failover, service busy).
AZURE_TRANSIENT_ERRORS = {"4060", "40197", "40501", "40613", "49918", "49919", "49920", "4221", "10928", "10929"}
AZURE_CONNECT_ATTEMPTS = 5

ODBC_HELP = (
    "The mssql+aioodbc driver needs pyodbc and an ODBC driver. On Debian/Ubuntu run "
    "`apt-get install unixodbc tdsodbc` (FreeTDS) or install Microsoft's `msodbcsql18` "
    "(ODBC Driver 18 for SQL Server), then `pip install -r requirements.txt`."
)


class DatabaseDriverMissing(RuntimeError):
    """The database URL needs a driver that is not installed; the message says what to install."""


def engine_options(url: str, *, schema: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `create_async_engine` suited to the URL's backend."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    if backend == "postgresql":
        connect_args: dict[str, Any] = {}
        if schema:
            connect_args["server_settings"] = {"search_path": schema}
        return {"pool_pre_ping": True, "connect_args": connect_args}
    if backend == "mssql":
        return {
            "pool_pre_ping": True,
            "pool_recycle": AZURE_POOL_RECYCLE_SECONDS,
            "connect_args": {"Encrypt": "yes", "TrustServerCertificate": "no", "timeout": 30},
        }
    return {}


def _require_pyodbc() -> None:
    """Import pyodbc lazily so the SQLite path never needs ODBC."""
    try:
        import pyodbc  # noqa: F401
    except ImportError as exc:
        raise DatabaseDriverMissing(f"{ODBC_HELP} ({exc})") from exc


def build_engine(url: str, *, schema: str | None = None, **overrides: Any) -> AsyncEngine:
    """Create the async engine for a database URL, with backend-specific tuning."""
    if make_url(url).get_backend_name() == "mssql":
        _require_pyodbc()
    engine = create_async_engine(url, **{**engine_options(url, schema=schema), **overrides})
    backend = engine.dialect.name
    if backend == "sqlite":
        _install_sqlite_pragmas(engine)
    elif backend == "mssql":
        _install_azure_connect_retry(engine)
    return engine


def _install_sqlite_pragmas(engine: AsyncEngine) -> None:
    """WAL for concurrent readers, enforced foreign keys and a busy timeout on every connection."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is turned off; the "begin" hook below emits ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers use BEGIN IMMEDIATE: they take the write lock up front and queue on the busy
        # timeout, instead of failing with "database is locked" when a read lock cannot be
        # upgraded. Readers stay DEFERRED so they never block anyone under WAL.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _install_azure_connect_retry(engine: AsyncEngine) -> None:
    """Retry a new connection when Azure SQL answers with a transient error."""
    pool = engine.sync_engine.pool
    original_creator = pool._creator  # noqa: SLF001 - the documented hook is the creator itself

    def creator(*args: Any, **kwargs: Any) -> Any:
        delay = 0.5
        for attempt in range(1, AZURE_CONNECT_ATTEMPTS + 1):
            try:
                return original_creator(*args, **kwargs)
            except Exception as exc:  # pyodbc.Error; imported lazily
                if attempt == AZURE_CONNECT_ATTEMPTS or not is_transient_azure_error(exc):
                    raise
                log.warning("transient Azure SQL error on connect (attempt %d): %s", attempt, exc)
                import time

                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    pool._creator = creator  # noqa: SLF001


def is_transient_azure_error(exc: BaseException) -> bool:
    """True when an exception carries one of Azure SQL's transient error numbers."""
    message = " ".join(str(arg) for arg in getattr(exc, "args", ()))
    return any(f"({number})" in message or f" {number} " in message for number in AZURE_TRANSIENT_ERRORS)


class SqlClient:
    """Owns the engine and the session factory for the app's lifetime."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self.engine = build_engine(url, schema=schema)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.write_engine = self.engine
        if self.engine.dialect.name == "sqlite":
            # SQLite has one writer at a time. Writers of this process queue, first come first
            # served, for the single connection of their own pool instead of polling the database
            # lock through SQLite's busy handler (whose sleeps of up to 100 ms, in no order, made a
            # long latency tail). Other processes (the CLI) still meet the busy timeout.
            self.write_engine = build_engine(
                url, schema=schema, pool_size=1, max_overflow=0, pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
            ).execution_options(sqlite_begin="IMMEDIATE")
        self.write_sessionmaker = async_sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)

    def session(self, *, write: bool = False) -> AsyncSession:
        """A new session; the caller closes it. Pass write=True for units of work that change data."""
        return (self.write_sessionmaker if write else self.sessionmaker)()

    @asynccontextmanager
    async def session_scope(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A session closed on exit; commit explicitly inside."""
        async with self.session(write=write) as session:
            yield session

    async def ping(self) -> None:
        """Run `SELECT 1`; raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


def upgrade_to_head(url: str, *, schema: str | None = None) -> None:
    """Run every Alembic migration against a database (sync; from async code use asyncio.to_thread)."""
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[1]
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes.update(url=url, schema=schema, configure_logging=False)
    command.upgrade(cfg, "head")

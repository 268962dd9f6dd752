"""Alembic environment: offline T-SQL/SQL rendering and online async upgrades."""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy.engine import Connection, make_url

import models  # noqa: F401 - registers every table
from clients.sql_client import build_engine, configure_as_azure_sql
from config import load_settings
from models.base_model import Base, UtcDateTime

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    x_args = context.get_x_argument(as_dictionary=True)
    return x_args.get("url") or config.attributes.get("url") or load_settings().DATABASE_URL


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render our UTC type as a plain timezone-aware DateTime, so migrations never import models."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode recreates tables
        **kwargs,  # type: ignore[arg-type]
    )


# The session settings the T-SQL script relies on, first thing in it: abort and roll back the whole
# transaction on any error (else `sqlcmd` goes on and commits half a schema), and the ANSI settings
# that filtered indexes need whatever the client's defaults are (classic `sqlcmd` has QUOTED_IDENTIFIER OFF).
MSSQL_SCRIPT_PREAMBLE = ("SET XACT_ABORT ON", "SET QUOTED_IDENTIFIER ON", "SET ANSI_NULLS ON")


def run_migrations_offline() -> None:
    """Render the upgrade as a SQL script for a DBA (no connection, no driver needed)."""
    backend = make_url(_database_url()).get_backend_name()
    options: dict[str, object] = {}
    if backend == "mssql":
        options["dialect_opts"] = {"deprecate_large_types": True}
    _configure(dialect_name=backend, literal_binds=True, transactional_ddl=True, **options)
    if backend == "mssql":
        # Render what an online upgrade on Azure SQL would create (DATE, NVARCHAR(max)), not the
        # types of a server of unknown age (DATETIME, NTEXT).
        configure_as_azure_sql(context.get_context().dialect)
        for statement in MSSQL_SCRIPT_PREAMBLE:
            context.execute(statement)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    settings = load_settings()
    url = _database_url()
    engine = build_engine(url, schema=config.attributes.get("schema") or settings.DATABASE_SCHEMA)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Upgrade a live database, on a connection we are handed or on a new engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

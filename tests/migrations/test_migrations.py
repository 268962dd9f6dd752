"""Alembic owns the schema: it matches the models, round-trips, and renders valid T-SQL for Azure SQL."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import sqlglot
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlglot import exp

import models  # noqa: F401
from clients.sql_client import build_engine
from config import ROOT
from models.base_model import Base
from tests.conftest import TestDatabase, migrate

MSSQL_URL = "mssql+pyodbc://cuponera@example.database.windows.net/cuponera"


def render_sql(url: str) -> str:
    """The offline upgrade script for a URL, as `make sqlserver-script` prints it."""
    buffer = io.StringIO()
    cfg = Config(str(ROOT / "alembic.ini"), output_buffer=buffer)
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logging"] = False
    command.upgrade(cfg, "head", sql=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tsql() -> str:
    return render_sql(MSSQL_URL)


def _batches(script: str) -> list[str]:
    return [b.strip() for b in re.split(r"^GO\s*$", script, flags=re.M) if b.strip()]


def test_tsql_script_parses_as_tsql(tsql: str) -> None:
    parsed = 0
    for batch in _batches(tsql):
        for statement in sqlglot.parse(batch, read="tsql", error_level=sqlglot.ErrorLevel.RAISE):
            if statement is None:
                continue
            if isinstance(statement, exp.Command):
                # sqlglot has no grammar for SET IDENTITY_INSERT; it is still valid T-SQL.
                assert statement.sql(dialect="tsql").upper().startswith("SET IDENTITY_INSERT"), statement.sql()
            parsed += 1
    assert parsed > 10


def test_tsql_script_creates_every_table(tsql: str) -> None:
    created = set(re.findall(r"^CREATE TABLE (\w+) \(", tsql, flags=re.M))
    assert created == set(Base.metadata.tables) | {"alembic_version"}


def test_tsql_script_has_no_sqlite_or_postgres_syntax(tsql: str) -> None:
    forbidden = ["AUTOINCREMENT", "TIMESTAMP WITH TIME ZONE", " LIMIT ", "::", "RETURNING", "PRAGMA"]
    upper = tsql.upper()
    for token in forbidden:
        assert token not in upper, token
    column_types = re.findall(r"^\s+\w+ ([A-Z]+)", upper, flags=re.M)
    assert column_types, "no column definitions found"
    for foreign_type in ("SERIAL", "BIGSERIAL", "BOOLEAN", "JSONB", "BYTEA", "TEXT", "TIMESTAMPTZ", "UUID"):
        assert foreign_type not in column_types, foreign_type


def test_tsql_constraints_are_all_named(tsql: str) -> None:
    for line in tsql.splitlines():
        stripped = line.strip()
        if re.match(r"^(PRIMARY KEY|FOREIGN KEY|UNIQUE|CHECK)\b", stripped):
            pytest.fail(f"unnamed constraint: {stripped}")
    assert "CONSTRAINT pk_tenants PRIMARY KEY" in tsql


def test_text_columns_with_accents_are_nvarchar(tsql: str) -> None:
    assert "name NVARCHAR(200)" in tsql
    assert "N'Empresa de Servicios Públicos" in tsql


async def test_migrations_match_the_models(test_database: TestDatabase, database_url: str) -> None:
    engine = build_engine(database_url, schema=test_database.schema)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/roundtrip.db"
    migrate(url)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logging"] = False
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")

"""Alembic owns the schema: it matches the models, round-trips, and renders valid T-SQL for Azure SQL."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

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
    return [b.strip() for b in re.split(r"^GO\s*$", script, flags=re.MULTILINE) if b.strip()]


def test_tsql_script_parses_as_tsql(tsql: str) -> None:
    parsed = 0
    for batch in _batches(tsql):
        for statement in sqlglot.parse(batch, read="tsql", error_level=sqlglot.ErrorLevel.RAISE):
            if statement is None:
                continue
            assert not isinstance(statement, exp.Command), f"not parsed as T-SQL: {statement.sql()}"
            parsed += 1
    assert parsed > 10


def test_tsql_script_creates_every_table(tsql: str) -> None:
    created = set(re.findall(r"^CREATE TABLE (\w+) \(", tsql, flags=re.MULTILINE))
    assert created == set(Base.metadata.tables) | {"alembic_version"}


def test_tsql_script_has_no_sqlite_or_postgres_syntax(tsql: str) -> None:
    forbidden = ["AUTOINCREMENT", "TIMESTAMP WITH TIME ZONE", " LIMIT ", "::", "RETURNING", "PRAGMA"]
    upper = tsql.upper()
    for token in forbidden:
        assert token not in upper, token
    column_types = re.findall(r"^\s+\w+ ([A-Z]+)", upper, flags=re.MULTILINE)
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


# --- The DBA script builds the models' schema -------------------------------------------------

Schema = dict[str, dict[str, Any]]


def _identifier(node: exp.Expression) -> str:
    return node.name.lower()


def _column_signature(column: exp.ColumnDef) -> tuple[str, bool, tuple[str, ...]]:
    """(type, nullable, other column constraints such as IDENTITY, COLLATE, DEFAULT), dialect-neutral."""
    nullable = True
    others = []
    for constraint in column.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint):
            nullable = bool(kind.args.get("allow_null"))
        else:
            others.append(constraint.sql(dialect="tsql").upper())
    return column.args["kind"].sql(dialect="tsql").upper(), nullable, tuple(sorted(others))


def _constraint_body(constraint: exp.Constraint) -> str:
    return " ".join(e.sql(dialect="tsql") for e in constraint.expressions).lower()


def _apply(schema: Schema, statement: exp.Expression) -> None:
    """Apply one DDL statement to a schema description (tables, columns, constraints, indexes)."""
    if isinstance(statement, exp.Create) and statement.args.get("kind") == "TABLE":
        table = statement.this.this.name.lower()
        entry: dict[str, Any] = {"columns": {}, "constraints": {}}
        for item in statement.this.expressions:
            if isinstance(item, exp.ColumnDef):
                entry["columns"][_identifier(item.this)] = _column_signature(item)
            elif isinstance(item, exp.Constraint):
                entry["constraints"][_identifier(item.this)] = _constraint_body(item)
            else:
                pytest.fail(f"unexpected table element in {table}: {item.sql(dialect='tsql')}")
        schema["tables"][table] = entry
    elif isinstance(statement, exp.Create) and statement.args.get("kind") == "INDEX":
        index = statement.this
        params = index.args["params"]
        where = params.args.get("where")
        schema["indexes"][_identifier(index.this)] = (
            index.args["table"].name.lower(),
            bool(statement.args.get("unique")),
            tuple(c.sql(dialect="tsql").lower() for c in params.args.get("columns") or []),
            where.sql(dialect="tsql").lower() if where is not None else None,
        )
    elif isinstance(statement, exp.Drop) and statement.args.get("kind") == "INDEX":
        del schema["indexes"][statement.args["tables"][0].name.lower()]
    elif isinstance(statement, exp.Alter) and statement.args.get("kind") == "TABLE":
        table = schema["tables"][statement.this.name.lower()]
        for action in statement.args["actions"]:
            if isinstance(action, exp.ColumnDef):
                table["columns"][_identifier(action.this)] = _column_signature(action)
            elif isinstance(action, exp.AddConstraint):
                for constraint in action.expressions:
                    table["constraints"][_identifier(constraint.this)] = _constraint_body(constraint)
            elif isinstance(action, exp.Drop) and action.args.get("kind") == "CONSTRAINT":
                del table["constraints"][action.args["tables"][0].name.lower()]
            elif isinstance(action, exp.AlterColumn):
                name = _identifier(action.this)
                _type, _nullable, others = table["columns"][name]
                kept = tuple(o for o in others if not o.startswith("COLLATE"))
                collate = action.args.get("collate")
                if isinstance(collate, exp.Expression):  # sqlglot says False for "no COLLATE"
                    kept = (*kept, f"COLLATE {collate.sql(dialect='tsql').upper()}")
                table["columns"][name] = (
                    action.args["dtype"].sql(dialect="tsql").upper(),
                    bool(action.args.get("allow_null")),
                    tuple(sorted(kept)),
                )
            else:
                pytest.fail(f"the schema test does not understand: {statement.sql(dialect='tsql')}")
    elif isinstance(statement, (exp.Insert, exp.Update, exp.Set, exp.Transaction, exp.Commit)):
        return  # data and session settings, not schema
    else:
        pytest.fail(f"the schema test does not understand: {statement.sql(dialect='tsql')[:200]}")


def _schema_of(statements: list[str]) -> Schema:
    schema: Schema = {"tables": {}, "indexes": {}}
    for sql in statements:
        for statement in sqlglot.parse(sql, read="tsql", error_level=sqlglot.ErrorLevel.RAISE):
            if statement is not None:
                _apply(schema, statement)
    return schema


def _models_for_mssql() -> list[str]:
    """The models' DDL compiled as Azure SQL would get it from `metadata.create_all`."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    from clients.sql_client import azure_sql_dialect

    dialect = azure_sql_dialect()
    statements = []
    for table in Base.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        statements += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    return statements


def test_tsql_script_builds_the_same_schema_as_the_models(tsql: str) -> None:
    from_script = _schema_of(_batches(tsql))
    del from_script["tables"]["alembic_version"]
    from_models = _schema_of(_models_for_mssql())
    assert from_script["tables"].keys() == from_models["tables"].keys()
    for table, expected in from_models["tables"].items():
        assert from_script["tables"][table] == expected, table
    assert from_script["indexes"] == from_models["indexes"]
    # Spot checks that the comparison sees what matters.
    assert from_models["tables"]["pqrs"]["columns"]["description"][0] == "NVARCHAR(MAX)"
    assert from_models["tables"]["invoices"]["columns"]["issued_on"][0] == "DATE"
    assert "COLLATE LATIN1_GENERAL_100_BIN2" in " ".join(from_models["tables"]["idempotency_keys"]["columns"]["key"][2])
    assert "ix_invoices_tariff_id" in from_models["indexes"] and "ix_users_customer_id" not in from_models["indexes"]


def test_tsql_script_starts_with_the_session_settings_it_relies_on(tsql: str) -> None:
    statements = [s.rstrip(";").strip() for s in _batches(tsql)[:3]]
    assert statements == ["SET XACT_ABORT ON", "SET QUOTED_IDENTIFIER ON", "SET ANSI_NULLS ON"]


def test_tsql_script_has_no_types_or_settings_azure_sql_rejects(tsql: str) -> None:
    upper = tsql.upper()
    assert "IDENTITY_INSERT" not in upper  # the seed row lets the identity pick its id
    column_types = set(re.findall(r"^\s+\[?\w+\]? ([A-Z0-9]+)", upper, flags=re.MULTILINE))
    for deprecated in ("NTEXT", "TEXT", "IMAGE", "DATETIME"):
        assert deprecated not in column_types, deprecated
    assert "DATETIMEOFFSET" in column_types and "DATE" in column_types
    assert "INSERT INTO tenants" in tsql

"""The T-SQL gate can fail: each construct Azure SQL rejects is caught, and a violation fails its test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    column,
    false,
    insert,
    select,
    table,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert

from clients.sql_client import SqlClient
from tests import tsql_gate
from tests.tsql_gate import check_driver_sql, check_parameter_count, check_statement

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50)),
    Column("active", Boolean),
)


def problems_of(statement: Any) -> str:
    return " | ".join(check_statement(statement))


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (select(things).where(things.c.active.is_(True)), "IS 0/IS 1"),
        (select(things).where(things.c.active.is_(False)), "IS 0/IS 1"),
        (select(things).where(things.c.active.is_not(True)), "IS 0/IS 1"),
        (text("SELECT id FROM things WHERE active IS true"), "IS 0/IS 1"),
        (text("SELECT id FROM things LIMIT 5"), "LIMIT"),
        (select(things).offset(10), "does not compile"),  # the mssql compiler refuses OFFSET without ORDER BY
        (text("SELECT id FROM things OFFSET 10 ROWS"), "OFFSET without ORDER BY"),
        (select(things).where(things.c.id == 1).with_for_update(), "FOR UPDATE"),
        (text("SELECT id FROM things FOR UPDATE"), "FOR UPDATE"),
        (pg_insert(things).values(id=1, name="x").on_conflict_do_nothing(), "ON CONFLICT"),
        (text("INSERT INTO things (id) VALUES (1) ON CONFLICT DO NOTHING"), "ON CONFLICT"),
        (text("INSERT INTO things (id) VALUES (1) RETURNING id"), "RETURNING"),
        (text("SELECT id FROM things WHERE name ILIKE 'a%'"), "ILIKE"),
        (select(things).order_by(things.c.name.nulls_first()), "NULLS FIRST/LAST"),
        (select(things).order_by(things.c.name.desc().nulls_last()), "NULLS FIRST/LAST"),
        (select(things).ext(distinct_on(things.c.name)), "does not compile"),
        (text("SELECT DISTINCT ON (name) id FROM things"), "DISTINCT ON"),
        (text("SELECT id FROM things WHERE name = 'a'::text"), "`::` cast"),
        (text("SELECT id FROM things WHERE"), "does not parse as T-SQL"),
    ],
)
def test_each_forbidden_construct_fails_the_gate(statement: Any, expected: str) -> None:
    assert expected in problems_of(statement)


@pytest.mark.parametrize(
    "statement",
    [
        select(things).where(things.c.active == true()),
        select(things).where(things.c.active == false()),
        select(things).where(things.c.name.ilike("a%")),  # compiled as lower() LIKE lower() for mssql
        select(things).order_by(things.c.id).limit(5),
        select(things).order_by(things.c.id).offset(10).limit(5),
        select(things).limit(1),  # TOP 1
        insert(things).values(name="x").returning(things.c.id),  # OUTPUT inserted.id
        select(things).where(things.c.id.in_(list(range(2000)))),
    ],
)
def test_what_azure_sql_accepts_passes(statement: Any) -> None:
    assert check_statement(statement) == []


def test_over_2000_parameters_fail() -> None:
    assert check_parameter_count(2000) == []
    assert "2001 parameters" in check_parameter_count(2001)[0]


def test_driver_level_sql_is_checked_too() -> None:
    assert check_driver_sql("INSERT INTO things (id, name) VALUES (?, ?)") == []
    assert "LIMIT" in " ".join(check_driver_sql("SELECT id FROM things LIMIT 1"))
    assert check_driver_sql("PRAGMA foreign_keys=ON")  # SQLite's, not T-SQL
    assert "opaque command" in " ".join(check_driver_sql("BEGIN IMMEDIATE"))


def test_the_models_seen_by_the_gate_compile_with_the_azure_dialect() -> None:
    # Azure SQL's dialect renders long text as NVARCHAR(max) and timezone-aware datetimes as DATETIMEOFFSET.
    from sqlalchemy.schema import CreateTable

    from models.pqr_model import Pqr

    ddl = str(CreateTable(Pqr.__table__).compile(dialect=tsql_gate.AZURE))
    assert "description NVARCHAR(max) NOT NULL" in ddl
    assert "DATETIMEOFFSET" in ddl and "NTEXT" not in ddl


async def test_a_violating_statement_is_recorded_against_the_running_test(tmp_path: Path) -> None:
    """Through the real listener: a statement run on a real database is caught, with the call site."""
    client = SqlClient(f"sqlite+aiosqlite:///{tmp_path}/gate.db")
    try:
        async with client.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(things).values(id=1, name="a", active=True))
            rows = (await conn.execute(select(things.c.id).where(things.c.active.is_(True)))).all()
            many = (await conn.execute(select(things.c.id).where(things.c.id.in_(list(range(2100)))))).all()
            rows_700 = [{"id": 10 + n, "name": "x", "active": False} for n in range(700)]
            await conn.execute(insert(things).values(rows_700))  # one statement, 2 100 parameters
    finally:
        await client.dispose()
    assert rows == [(1,)] and many == [(1,)]  # SQLite is happy; Azure SQL would not be
    current = tsql_gate.STATE.current
    assert current is not None  # the autouse fixture collects for this test
    found, current[:] = list(current), []  # taken here so this test itself passes
    assert len(found) == 3, found
    assert "IS 0/IS 1" in found[0]
    assert "things.active IS 1" in found[0]
    assert "from: tests/test_tsql_gate.py:" in found[0] and "test_a_violating_statement_is_recorded" in found[0]
    assert "2100 parameters" in found[1] and "WHERE things.id IN" in found[1]
    assert "2100 parameters" in found[2] and "INSERT INTO things" in found[2]


def test_exemptions_are_narrow_and_give_a_reason() -> None:
    for exemption in tsql_gate.EXEMPTIONS:
        assert exemption.reason
        if exemption.path.endswith(".py") and not exemption.path.startswith("sqlalchemy/"):
            assert exemption.functions, f"{exemption.path}: name the functions, not the whole file"
    assert not any(e.path.startswith(("controllers/", "routes/", "models/")) for e in tsql_gate.EXEMPTIONS)


def test_a_table_from_a_lightweight_construct_is_checked_like_any_other() -> None:
    legacy = table("legacy", column("flag"))
    assert "IS 0/IS 1" in problems_of(select(legacy).where(legacy.c.flag.is_(True)))

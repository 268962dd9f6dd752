"""CLI commands run as a user would run them: `quart --app app <command>` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from sqlalchemy import select

from clients.sql_client import SqlClient
from config import ROOT
from models.user_model import User
from tests.conftest import TEST_SECRET, TestDatabase


async def run_cli(args: list[str], *, database_url: str, schema: str | None, var_dir: Path, stdin: str = "") -> tuple[int, str, str]:
    """Run `quart --app app ...` with the test database; returns (exit code, stdout, stderr)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "VAR_DIR": str(var_dir),
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_SCHEMA", None)
    if schema:
        env["DATABASE_SCHEMA"] = schema
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "quart", "--app", "app", *args,
        cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode())
    return process.returncode or 0, out.decode(), err.decode()


async def _users(database_url: str, schema: str | None) -> list[User]:
    client = SqlClient(database_url, schema=schema)
    try:
        async with client.session_scope() as session:
            return list((await session.scalars(select(User).order_by(User.id))).all())
    finally:
        await client.dispose()


async def test_create_user_reads_the_password_from_stdin(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    code, out, err = await run_cli(
        ["create-user", "--email", "Boss@Example.com", "--role", "admin", "--full-name", "Beatriz Núñez"],
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path, stdin="a strong passphrase\n",
    )
    assert code == 0, err
    assert "created admin boss@example.com" in out
    users = await _users(database_url, test_database.schema)
    assert [(u.email, u.role, u.full_name) for u in users] == [("boss@example.com", "admin", "Beatriz Núñez")]
    assert users[0].password_hash.startswith("$2b$04$")


async def test_create_user_rejects_a_short_password_and_duplicates(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    common = {"database_url": database_url, "schema": test_database.schema, "var_dir": tmp_path}
    code, _, err = await run_cli(["create-user", "--email", "a@example.com", "--role", "operator"], stdin="short\n", **common)
    assert code != 0
    assert "password_too_short" in err
    code, _, _ = await run_cli(["create-user", "--email", "a@example.com", "--role", "operator"], stdin="long enough pw\n", **common)
    assert code == 0
    code, _, err = await run_cli(["create-user", "--email", "A@example.com", "--role", "admin"], stdin="long enough pw\n", **common)
    assert code != 0
    assert "email_taken" in err


async def test_create_user_has_no_password_argument(database_url: str, test_database: TestDatabase, tmp_path: Path) -> None:
    code, _, err = await run_cli(
        ["create-user", "--email", "a@example.com", "--role", "admin", "--password", "secret12345"],
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path,
    )
    assert code == 2
    assert "No such option '--password'" in err


async def test_seed_demo_prints_logins_once_and_keeps_them(database_url: str, test_database: TestDatabase, tmp_path: Path) -> None:
    common = {"database_url": database_url, "schema": test_database.schema, "var_dir": tmp_path}
    os.environ.pop("DEMO_DATA", None)
    code, out, err = await run_cli(["seed-demo"], **common)
    if not database_url.startswith("sqlite"):
        assert "DEMO_DATA is off" in out  # demo data is opt-in on a server database
        return
    assert code == 0, err
    assert "Demo data loaded: 600 invoices over 12 months" in out
    logins = json.loads((tmp_path / "demo_logins.json").read_text())
    assert {item["role"] for item in logins} >= {"admin", "operator"}
    assert all(item["password"] in out for item in logins)
    assert (tmp_path / "demo_logins.json").stat().st_mode & 0o777 == 0o600
    code, out, _ = await run_cli(["seed-demo"], **common)
    assert code == 0
    assert "Demo data already loaded." in out
    users = await _users(database_url, test_database.schema)
    assert len(users) == len(logins)

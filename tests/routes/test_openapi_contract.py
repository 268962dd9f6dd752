"""Schemathesis fuzzes every documented operation of a served app: no 500s, and responses match the spec."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from clients.sql_client import SqlClient
from controllers import auth_controller, tenant_controller
from tests.conftest import TEST_PASSWORD, TestDatabase
from tests.served_app import served_app

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Logging out or changing the password mid-run would end the session the fuzzer uses.
SESSION_ENDING = "^/api/v1/auth/(logout|password)$"


async def _create_admin(database_url: str, schema: str | None) -> str:
    sql = SqlClient(database_url, schema=schema)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            user = await auth_controller.create_user(
                session=session, tenant=tenant, email="fuzz-admin@example.com", password=TEST_PASSWORD,
                role="admin", rounds=4,
            )
            return user.email
    finally:
        await sql.dispose()


async def _schemathesis(base_url: str, workdir: Path, *extra: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/openapi.json",
        "--checks", CHECKS, "--max-examples", "15", "--phases", "coverage,fuzzing", "--workers", "1",
        "--seed", "20261123", "--suppress-health-check", "all", *extra,
        cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace")


async def test_api_matches_its_openapi_document(database_url: str, test_database: TestDatabase, tmp_path: Path) -> None:
    email = await _create_admin(database_url, test_database.schema)
    async with served_app(
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path / "var",
        env={"RATE_LIMIT_ENABLED": "false"},
    ) as base_url:
        # Run in the test's own directory: schemathesis keeps a crash cache in its working directory.
        anonymous_code, anonymous_out = await _schemathesis(base_url, tmp_path)
        async with httpx.AsyncClient(base_url=base_url) as client:
            login = await client.post("/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
            assert login.status_code == 200
            cookie = f"cuponera_session={login.cookies['cuponera_session']}"
            csrf = login.json()["csrf_token"]
        admin_code, admin_out = await _schemathesis(
            base_url, tmp_path, "-H", f"Cookie: {cookie}", "-H", f"X-CSRF-Token: {csrf}", "--exclude-path-regex", SESSION_ENDING
        )
    server_log = "\n".join(p.read_text(errors="replace")[-6000:] for p in (tmp_path / "var").glob("hypercorn-*.log"))
    assert anonymous_code == 0, anonymous_out[-6000:] + server_log
    assert admin_code == 0, admin_out[-6000:] + server_log

"""The security suite's fuzzer: schemathesis against a served app as anonymous, customer and admin, with a fixed
seed and a CI budget (about a minute per role): no 5xx, and every response matches the OpenAPI document."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from clients.sql_client import SqlClient
from controllers import auth_controller, tenant_controller
from tests.conftest import TEST_PASSWORD, TestDatabase
from tests.factories import make_customer, make_customer_user
from tests.served_app import served_app

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Logging out or changing the password mid-run would end the session the fuzzer uses.
SESSION_ENDING = "^/api/v1/auth/(logout|password)$"
# Per operation and role: three roles fit the CI budget (under 3 minutes on a shared runner).
MAX_EXAMPLES = "8"


async def _create_users(database_url: str, schema: str | None) -> dict[str, str]:
    sql = SqlClient(database_url, schema=schema)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            admin = await auth_controller.create_user(
                session=session, tenant=tenant, email="fuzz-admin@example.com", password=TEST_PASSWORD,
                role="admin", rounds=4,
            )
            customer = await make_customer_user(
                session, await make_customer(session, tenant), email="fuzz-customer@example.com", password=TEST_PASSWORD
            )
            await session.commit()
            return {"admin": admin.email, "customer": customer.email}
    finally:
        await sql.dispose()


async def _schemathesis(base_url: str, workdir: Path, *extra: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/openapi.json",
        "--checks", CHECKS, "--max-examples", MAX_EXAMPLES, "--phases", "coverage,fuzzing", "--workers", "1",
        "--seed", "20261123", "--suppress-health-check", "all", *extra,
        cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace")


async def _session_headers(base_url: str, email: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
        assert login.status_code == 200
        cookie = f"cuponera_session={login.cookies['cuponera_session']}"
        return ["-H", f"Cookie: {cookie}", "-H", f"X-CSRF-Token: {login.json()['csrf_token']}"]


async def test_api_matches_its_openapi_document(database_url: str, test_database: TestDatabase, tmp_path: Path) -> None:
    emails = await _create_users(database_url, test_database.schema)
    results: dict[str, tuple[int, str]] = {}
    async with served_app(
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path / "var",
        env={"RATE_LIMIT_ENABLED": "false"},
    ) as base_url:
        # Run in the test's own directory: schemathesis keeps a crash cache in its working directory.
        results["anonymous"] = await _schemathesis(base_url, tmp_path)
        for role in ("customer", "admin"):
            headers = await _session_headers(base_url, emails[role])
            results[role] = await _schemathesis(base_url, tmp_path, *headers, "--exclude-path-regex", SESSION_ENDING)
    server_log = "\n".join(p.read_text(errors="replace")[-6000:] for p in (tmp_path / "var").glob("hypercorn-*.log"))
    for role, (code, out) in results.items():
        assert code == 0, f"{role}:\n" + out[-6000:] + server_log

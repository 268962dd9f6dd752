"""LOG_FORMAT=json: a served app writes one JSON object per line with request id, tenant and user, and no secrets."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path

import httpx

from clients.sql_client import SqlClient
from controllers import coupon_controller, tenant_controller
from controllers.coupon_controller import Caller
from tests.conftest import TEST_PASSWORD, TestDatabase
from tests.factories import make_customer_user
from tests.payment_builders import make_debtor
from tests.served_app import app_process

CARD_TOKEN = "tok_approved"


async def test_json_lines_carry_request_tenant_and_user_and_no_secrets(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    sql = SqlClient(database_url, schema=test_database.schema)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            debtor = await make_debtor(session, tenant, amounts=("42000",), due_on=date(2099, 1, 15))
            user = await make_customer_user(session, debtor.customer)
            await session.commit()
            coupon = await coupon_controller.create_coupon(
                session=session, tenant=tenant, caller=Caller(role="operator"), contract_number=debtor.contract.contract_number
            )
            email, user_id, tenant_code, reference = user.email, user.id, tenant.code, coupon.coupon.reference
    finally:
        await sql.dispose()

    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    async with (
        app_process(database_url=database_url, schema=test_database.schema, var_dir=tmp_path / "var", env=env) as served,
        httpx.AsyncClient(base_url=served.base_url) as client,
    ):
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        cookie = login.cookies["cuponera_session"]
        paid = await client.post(
            "/api/v1/payments",
            json={"coupon_reference": reference, "card_token": CARD_TOKEN},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4()), "X-Request-ID": "pay-request-0001"},
        )
        assert paid.status_code == 201, paid.text
        assert paid.json()["status"] == "approved"
    text = served.log_path.read_text()
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert entries and all({"time", "level", "logger", "message", "request_id", "tenant", "user_id"} <= set(e) for e in entries)
    access = [e for e in entries if e["logger"] == "cuponera.access" and e["route"] != "/healthz"]
    assert [(e["method"], e["route"], e["status"], e["remote_addr"]) for e in access] == [
        ("POST", "/api/v1/auth/login", 200, "127.0.0.1"), ("POST", "/api/v1/payments", 201, "127.0.0.1")
    ]
    payment = [e for e in access if e["route"] == "/api/v1/payments"]
    assert [(e["request_id"], e["tenant"], e["user_id"]) for e in payment] == [("pay-request-0001", tenant_code, user_id)]
    assert all(e["request_id"] not in {"-", ""} for e in access)
    for secret in (TEST_PASSWORD, CARD_TOKEN, cookie, csrf):
        assert secret not in text

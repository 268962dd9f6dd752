"""GET /metrics: Prometheus text behind a Bearer token, request series per URL rule, gauges from the database."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart

from controllers import coupon_controller
from controllers.coupon_controller import Caller
from models.billing_model import BillingRun
from models.tenant_model import Tenant
from tests.conftest import ApiClient, TestDatabase
from tests.payment_builders import make_debtor
from tests.served_app import app_process

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"METRICS_TOKEN": TOKEN}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: ApiClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(await response.get_data(as_text=True))


async def test_metrics_need_the_token(client: ApiClient) -> None:
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert (await wrong.get_json())["code"] == "metrics_token_invalid"
    assert (await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})).status_code == 401


async def test_metrics_are_off_without_a_token(app: Quart, client: ApiClient) -> None:
    from dataclasses import replace

    services = app.extensions["cuponera"]
    services.settings = replace(services.settings, METRICS_TOKEN="")
    response = await client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


async def test_requests_are_counted_per_url_rule_and_status(client: ApiClient) -> None:
    for number in ("A-1", "B-2", "C-3"):
        assert (await client.get(f"/api/v1/invoice-lookup?contract_number={number}")).status_code == 404
    assert (await client.get("/no/such/page")).status_code == 404
    found = await scrape(client)
    lookup = frozenset({("route", "/api/v1/invoice-lookup"), ("method", "GET"), ("status", "404")})
    assert found[("cuponera_http_requests_total", lookup)] == 3
    unmatched = frozenset({("route", "<unmatched>"), ("method", "GET"), ("status", "404")})
    assert found[("cuponera_http_requests_total", unmatched)] == 1
    latency = frozenset({("route", "/api/v1/invoice-lookup"), ("method", "GET")})
    assert found[("cuponera_http_request_duration_seconds_count", latency)] == 3
    assert not any("A-1" in str(key) for key in found)


async def test_gauges_read_the_outbox_payments_and_pool(app: Quart, client: ApiClient, tenant: Tenant) -> None:
    sql = app.extensions["cuponera"].sql
    async with sql.session_scope(write=True) as session:
        debtor = await make_debtor(session, tenant, amounts=("85000",), due_on=date(2099, 1, 15))
        view = await coupon_controller.create_coupon(
            session=session, tenant=tenant, caller=Caller(role="operator"), contract_number=debtor.contract.contract_number
        )
    before = await scrape(client)
    assert not [key for key in before if key[0] == "cuponera_payments"]
    for token, expected in (("tok_declined", 201), ("tok_approved", 201)):
        response = await client.post(
            "/api/v1/payments",
            json={"coupon_reference": view.coupon.reference, "card_token": token},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == expected, await response.get_data(as_text=True)
    found = await scrape(client)
    assert found[("cuponera_payments", frozenset({("channel", "card"), ("status", "approved")}))] == 1
    assert found[("cuponera_payments", frozenset({("channel", "card"), ("status", "declined")}))] == 1
    # One payment_declined and one payment_approved email wait in the outbox.
    outbox = {dict(labels)["status"]: value for (name, labels), value in found.items() if name == "cuponera_outbox_messages"}
    assert outbox == {"pending": 2, "sending": 0, "sent": 0, "failed": 0}
    assert found[("cuponera_outbox_oldest_pending_age_seconds", frozenset())] > 0
    assert found[("cuponera_billing_runs_running", frozenset())] == 0
    assert ("cuponera_db_pool_checked_out", frozenset({("engine", "main")})) in found
    assert found[("cuponera_db_pool_size", frozenset({("engine", "main")}))] >= 1


async def test_running_bill_runs_show_their_progress(app: Quart, client: ApiClient, tenant: Tenant) -> None:
    async with app.extensions["cuponera"].sql.session_scope(write=True) as session:
        session.add(BillingRun(tenant_id=tenant.id, period="2026-10", status="running", billed=7, skipped=2, failed=1,
                               contracts_done=10, contracts_total=40))
        session.add(BillingRun(tenant_id=tenant.id, period="2026-09", status="completed", billed=50))
        session.add(BillingRun(tenant_id=tenant.id, period="2026-11", status="queued"))
        await session.commit()
    found = await scrape(client)
    assert found[("cuponera_billing_runs_running", frozenset())] == 1
    progress = {
        dict(labels)["outcome"]: value
        for (name, labels), value in found.items()
        if name == "cuponera_billing_run_contracts" and dict(labels)["period"] == "2026-10"
    }
    assert progress == {"billed": 7, "skipped": 2, "estimated": 0, "flagged": 0, "failed": 1}
    assert not [labels for (name, labels) in found if name == "cuponera_billing_run_contracts" and ("period", "2026-09") in labels]
    of = {
        dict(labels)["of"]: value
        for (name, labels), value in found.items()
        if name == "cuponera_billing_run_progress_contracts" and dict(labels)["period"] == "2026-10"
    }
    assert of == {"done": 10, "total": 40}
    assert found[("cuponera_billing_runs_queued", frozenset())] == 1


async def test_several_hypercorn_workers_report_together_in_multiprocess_mode(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "METRICS_TOKEN": TOKEN, "RATE_LIMIT_ENABLED": "false"}
    async with app_process(
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path / "var", env=env, args=("--workers", "2")
    ) as served:
        for n in range(10):
            async with httpx.AsyncClient() as fresh_connection:  # a new connection each time, so both workers serve some
                response = await fresh_connection.get(f"{served.base_url}/api/v1/invoice-lookup?contract_number=N-{n}")
                assert response.status_code == 404
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{served.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    found = samples(response.text)
    lookup = frozenset({("route", "/api/v1/invoice-lookup"), ("method", "GET"), ("status", "404")})
    assert found[("cuponera_http_requests_total", lookup)] == 10
    assert len(list(directory.glob("*.db"))) >= 1

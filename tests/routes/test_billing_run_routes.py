"""Bill run routes: an operator queues a period (202), a worker bills it, the operator reads the run's
progress and counts and the contracts it could not bill."""

from __future__ import annotations

from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import worker_controller
from models.billing_model import Invoice
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import ApiClient

COUNTS = ("billed", "skipped", "estimated", "flagged", "failed")


async def work(app: Quart) -> list[int]:
    """What a worker process does each poll: run the queued bill runs."""
    return await worker_controller.run_bill_runs(sql=app.extensions["cuponera"].sql, policy=worker_controller.BillRunPolicy())


async def test_an_operator_bills_a_period_and_a_second_run_adds_nothing(
    app: Quart, operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    await make_metered_contract(session, tenant, readings={"2026-10": (100, 100)})
    await make_metered_contract(session, tenant, readings={"2026-09": (90, 90)})
    nothing = await make_metered_contract(session, tenant)
    await session.commit()

    first = await operator_client.post("/api/v1/billing-runs", json={"period": "2026-10"})
    assert first.status_code == 202, await first.get_data(as_text=True)
    queued = await first.get_json()
    assert first.headers["Location"] == f"/api/v1/billing-runs/{queued['id']}"
    assert (queued["period"], queued["status"], queued["contracts_done"], queued["contracts_total"]) == (
        "2026-10", "queued", 0, None
    )
    # Asking again before a worker took it joins the queued run.
    again = await operator_client.post("/api/v1/billing-runs", json={"period": "2026-10"})
    assert again.status_code == 202 and (await again.get_json())["id"] == queued["id"]

    assert await work(app) == [queued["id"]]

    read = await operator_client.get(first.headers["Location"])
    assert read.status_code == 200
    run = await read.get_json()
    assert (run["status"], run["contracts_done"], run["contracts_total"]) == ("completed", 3, 3)
    assert run["finished_at"] is not None and run["heartbeat_at"] is not None
    assert {k: run[k] for k in COUNTS} == {"billed": 2, "skipped": 1, "estimated": 1, "flagged": 0, "failed": 0}
    items = await (await operator_client.get(f"/api/v1/billing-runs/{run['id']}/items")).get_json()
    assert items == {
        "items": [{"contract_id": nothing.contract.id, "outcome": "skipped", "reason": "no actual readings to estimate from"}],
        "next_cursor": None,
    }

    second = await (await operator_client.post("/api/v1/billing-runs", json={"period": "2026-10"})).get_json()
    assert second["id"] != run["id"] and second["status"] == "queued"
    assert await work(app) == [second["id"]]
    second = await (await operator_client.get(f"/api/v1/billing-runs/{second['id']}")).get_json()
    assert {k: second[k] for k in COUNTS} == {"billed": 0, "skipped": 3, "estimated": 0, "flagged": 0, "failed": 0}
    assert await session.scalar(select(func.count()).select_from(Invoice)) == 2


async def test_a_bad_period_is_a_422_naming_the_field(operator_client: ApiClient) -> None:
    for period in ("2026-13", "10-2026", "2999-01"):
        response = await operator_client.post("/api/v1/billing-runs", json={"period": period})
        assert response.status_code == 422, period
        assert [e["field"] for e in (await response.get_json())["errors"]] == ["period"]


async def test_bill_runs_are_for_operators(
    customer_user_client: ApiClient, admin_client: ApiClient, operator_client: ApiClient
) -> None:
    assert (await customer_user_client.post("/api/v1/billing-runs", json={"period": "2026-10"})).status_code == 403
    assert (await customer_user_client.get("/api/v1/billing-runs/1")).status_code == 403
    assert (await admin_client.post("/api/v1/billing-runs", json={"period": "2026-10"})).status_code == 202
    assert (await operator_client.get("/api/v1/billing-runs/999")).status_code == 404
    assert (await operator_client.get("/api/v1/billing-runs/999/items")).status_code == 404

"""Service orders over HTTP: operators list, filter, export and execute them; customers and other tenants cannot."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import tenant_controller
from models.account_model import Contract
from models.base_model import utcnow
from models.service_order_model import ServiceOrder
from models.tenant_model import Tenant
from tests.conftest import ApiClient, make_user
from tests.factories import make_contract, make_customer, make_meter

CHILE_GLN = "7800000000009"


async def order(session: AsyncSession, tenant: Tenant, kind: str, *, due_in: timedelta, status: str = "pending",
                contract_status: str = "active", number: str | None = None) -> ServiceOrder:
    customer = await make_customer(session, tenant, name="Rosa Álvarez")
    contract = await make_contract(session, customer, status=contract_status, supply_address="Calle 5 # 10-20, Cali",
                                   **({"contract_number": number} if number else {}))
    await make_meter(session, contract, serial=f"MTR-{contract.id}")
    now = utcnow()
    row = ServiceOrder(
        tenant_id=tenant.id, contract_id=contract.id, kind=kind, status=status, reason="Unpaid since 2026-09-01",
        amount=Decimal(85000), currency=tenant.currency, created_at=now - timedelta(days=2), due_at=now + due_in,
    )
    session.add(row)
    await session.commit()
    return row


async def test_operators_list_filter_and_see_overdue_reconnections(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    suspension = await order(session, tenant, "suspension", due_in=timedelta(days=3), number="SO-100")
    late = await order(session, tenant, "reconnection", due_in=-timedelta(hours=2), contract_status="suspended")
    on_time = await order(session, tenant, "reconnection", due_in=timedelta(hours=20), contract_status="suspended")
    await order(session, tenant, "suspension", due_in=-timedelta(days=1), status="cancelled")

    everything = await (await operator_client.get("/api/v1/service-orders")).get_json()
    overdue = await (await operator_client.get("/api/v1/service-orders?overdue=true")).get_json()
    reconnections = await (await operator_client.get("/api/v1/service-orders?kind=reconnection&status=pending")).get_json()
    by_contract = await (await operator_client.get("/api/v1/service-orders?contract_number=SO-100")).get_json()

    assert len(everything["items"]) == 4 and everything["next_cursor"] is None
    assert [o["id"] for o in overdue["items"]] == [late.id]
    assert overdue["items"][0]["overdue"] is True
    assert [o["id"] for o in reconnections["items"]] == [late.id, on_time.id]
    [one] = by_contract["items"]
    assert (one["id"], one["kind"], one["status"], one["amount"], one["supply_address"], one["customer_name"], one["meter_serial"]) == (
        suspension.id, "suspension", "pending", "85000", "Calle 5 # 10-20, Cali", "Rosa Álvarez", f"MTR-{suspension.contract_id}"
    )
    page = await (await operator_client.get("/api/v1/service-orders?limit=2")).get_json()
    rest = await (await operator_client.get(f"/api/v1/service-orders?limit=2&cursor={page['next_cursor']}")).get_json()
    assert [o["id"] for o in page["items"] + rest["items"]] == [o["id"] for o in everything["items"]]


async def test_the_crews_csv_has_its_columns_and_every_matching_order(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    first = await order(session, tenant, "suspension", due_in=timedelta(days=3))
    second = await order(session, tenant, "suspension", due_in=timedelta(days=1))
    await order(session, tenant, "reconnection", due_in=timedelta(hours=3), contract_status="suspended")

    response = await operator_client.get("/api/v1/service-orders?kind=suspension&limit=1", headers={"Accept": "text/csv"})

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="service-orders.csv"'
    rows = list(csv.reader(io.StringIO(await response.get_data(as_text=True))))
    assert rows[0] == ["id", "kind", "status", "contract_number", "service", "supply_address", "customer_name",
                       "meter_serial", "reason", "created_at", "due_at", "overdue"]
    # Every matching order (not a page), nearest deadline first.
    assert [int(r[0]) for r in rows[1:]] == [second.id, first.id]
    contract = await session.get_one(Contract, second.contract_id)
    assert rows[1][1:9] == ["suspension", "pending", contract.contract_number, "electricity", "Calle 5 # 10-20, Cali",
                            "Rosa Álvarez", f"MTR-{contract.id}", "Unpaid since 2026-09-01"]


async def test_executing_through_the_api_suspends_and_a_second_change_is_409(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    suspension = await order(session, tenant, "suspension", due_in=-timedelta(days=1))
    executed_at = (utcnow() - timedelta(hours=1)).isoformat()

    missing = await operator_client.patch(f"/api/v1/service-orders/{suspension.id}", json={"status": "executed", "executed_at": executed_at})
    response = await operator_client.patch(
        f"/api/v1/service-orders/{suspension.id}", json={"status": "executed", "executed_at": executed_at, "reading": "4521.5"}
    )
    again = await operator_client.patch(f"/api/v1/service-orders/{suspension.id}", json={"status": "cancelled"})

    assert missing.status_code == 422 and (await missing.get_json())["code"] == "invalid_execution"
    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await response.get_json()
    assert (body["status"], body["reading"]) == ("executed", "4521.500")
    status = await session.scalar(select(Contract.status).where(Contract.id == suspension.contract_id).execution_options(populate_existing=True))
    assert status == "suspended"
    assert again.status_code == 409 and (await again.get_json())["code"] == "service_order_closed"
    one = await operator_client.get(f"/api/v1/service-orders/{suspension.id}")
    assert (await one.get_json())["status"] == "executed"


async def test_customers_get_403_and_other_tenants_404(
    app: Quart, customer_client: ApiClient, client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    mine = await order(session, tenant, "suspension", due_in=timedelta(days=1))
    await tenant_controller.create_tenant(session=session, code="aguas-sur", name="Aguas del Sur S.A.", country="CL", gln=CHILE_GLN)
    user = await make_user(app, role="operator", tenant_code="aguas-sur")
    other = ApiClient(app)
    assert (await other.login(user.email, headers={"X-Tenant-ID": "aguas-sur"})).status_code == 200

    assert (await client.get("/api/v1/service-orders")).status_code == 401
    assert (await customer_client.get("/api/v1/service-orders")).status_code == 403
    assert (await customer_client.get(f"/api/v1/service-orders/{mine.id}")).status_code == 403
    assert (await customer_client.patch(f"/api/v1/service-orders/{mine.id}", json={"status": "cancelled"})).status_code == 403
    assert (await (await other.get("/api/v1/service-orders")).get_json())["items"] == []
    assert (await other.get(f"/api/v1/service-orders/{mine.id}")).status_code == 404
    cancel = await other.patch(f"/api/v1/service-orders/{mine.id}", json={"status": "cancelled"})
    assert cancel.status_code == 404 and (await cancel.get_json())["code"] == "service_order_not_found"
    assert (await session.scalar(select(ServiceOrder.status).where(ServiceOrder.id == mine.id))) == "pending"

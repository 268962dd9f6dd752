"""One reading by id, and the review queue of flagged readings across meters (operator only, own tenant only)."""

from __future__ import annotations

from datetime import date

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from models.tenant_model import Tenant
from tests.conftest import ApiClient, make_user
from tests.factories import make_contract, make_customer, make_meter, make_reading

OTHER = "aguas-sur"


async def _readings(session: AsyncSession, tenant: Tenant) -> dict[str, int]:
    tenant_id = tenant.id
    await session.rollback()  # a fresh snapshot: fixtures may have written since the `tenant` fixture read
    power = await make_meter(session, await make_contract(session, await make_customer(session, tenant_id), service="electricity"), installed_on=date(2024, 12, 1))
    water = await make_meter(session, await make_contract(session, await make_customer(session, tenant_id), service="water"), installed_on=date(2024, 12, 1))
    rows = {
        "power_jan": await make_reading(session, power, "2025-01", 100, 100),
        "power_feb_high": await make_reading(session, power, "2025-02", 900, 800, flags="high"),
        "power_mar_roll_high": await make_reading(session, power, "2025-03", 50, 150, flags="rollover,high"),
        "water_feb_zero": await make_reading(session, water, "2025-02", 10, 0, flags="zero"),
        "water_mar_low": await make_reading(session, water, "2025-03", 11, 1, flags="low"),
    }
    ids = {name: r.id for name, r in rows.items()}
    await session.commit()
    return ids


async def _queue(api: ApiClient, query: str = "") -> list[int]:
    response = await api.get(f"/api/v1/readings{query}")
    assert response.status_code == 200, await response.get_data(as_text=True)
    return [r["id"] for r in (await response.get_json())["items"]]


async def test_the_review_queue_filters_flagged_readings(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    ids = await _readings(session, tenant)
    # Any flag, newest period first, then id descending; the unflagged January reading is not there.
    assert await _queue(operator_client) == [ids["water_mar_low"], ids["power_mar_roll_high"], ids["water_feb_zero"], ids["power_feb_high"]]
    assert await _queue(operator_client, "?flag=high") == [ids["power_mar_roll_high"], ids["power_feb_high"]]
    assert await _queue(operator_client, "?flag=rollover") == [ids["power_mar_roll_high"]]
    assert await _queue(operator_client, "?flag=low") == [ids["water_mar_low"]]
    assert await _queue(operator_client, "?period=2025-02") == [ids["water_feb_zero"], ids["power_feb_high"]]
    assert await _queue(operator_client, "?service=water&period=2025-03") == [ids["water_mar_low"]]
    page = await (await operator_client.get("/api/v1/readings?limit=3")).get_json()
    rest = await (await operator_client.get(f"/api/v1/readings?limit=3&cursor={page['next_cursor']}")).get_json()
    assert [r["id"] for r in page["items"] + rest["items"]] == await _queue(operator_client)
    assert (await operator_client.get("/api/v1/readings?flag=odd")).status_code == 422
    assert (await operator_client.get("/api/v1/readings?period=2025-13")).status_code == 422

    one = await operator_client.get(f"/api/v1/readings/{ids['power_mar_roll_high']}")
    assert one.status_code == 200
    body = await one.get_json()
    assert (body["period"], body["value"], body["consumption"], body["flags"]) == ("2025-03", "50.000", "150.000", ["rollover", "high"])
    assert (await operator_client.get("/api/v1/readings/999999")).status_code == 404


async def test_readings_are_staff_only_and_tenant_scoped(
    app: Quart, session: AsyncSession, tenant: Tenant, customer_client: ApiClient, client: ApiClient
) -> None:
    ids = await _readings(session, tenant)
    one = f"/api/v1/readings/{ids['power_feb_high']}"
    for path in ("/api/v1/readings", one):
        assert (await customer_client.get(path)).status_code == 403
        assert (await client.get(path)).status_code == 401
    await session.rollback()
    session.add(Tenant(code=OTHER, name="Aguas del Sur S.A.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000001"))
    await session.commit()
    user = await make_user(app, role="operator", tenant_code=OTHER)
    other = ApiClient(app)
    assert (await other.login(user.email, headers={"X-Tenant-ID": OTHER})).status_code == 200
    assert (await other.get(one)).status_code == 404
    assert await _queue(other) == []

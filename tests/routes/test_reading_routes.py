"""Readings through the API: consumption and flags in the response, refusals, corrections with history, paging."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.account_model import Meter, ReadingCorrection
from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.factories import make_contract, make_customer, make_meter

# Periods well in the past, so these tests never depend on today's date.
JAN, FEB, MAR = "2025-01", "2025-02", "2025-03"


async def _meter(session: AsyncSession, tenant: Tenant, **fields: Any) -> Meter:
    contract = await make_contract(session, await make_customer(session, tenant))
    meter = await make_meter(session, contract, installed_on=date(2024, 12, 1), **fields)
    await session.commit()
    return meter


async def _post(client: ApiClient, meter: Meter, period: str, value: Any, **fields: Any) -> Any:
    return await client.post(f"/api/v1/meters/{meter.id}/readings", json={"period": period, "value": value, **fields})


async def test_reading_response_carries_consumption_and_flags(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant, initial_value=1000)
    response = await _post(operator_client, meter, JAN, "1150", read_on="2025-01-31")
    assert response.status_code == 201
    body = await response.get_json()
    assert {k: body[k] for k in ("meter_id", "period", "value", "read_on", "kind", "consumption", "flags")} == {
        "meter_id": meter.id,
        "period": JAN,
        "value": "1150.000",
        "read_on": "2025-01-31",
        "kind": "actual",
        "consumption": "150.000",
        "flags": [],
    }


async def test_rollover_case(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant, register_digits=5, initial_value=99800)
    await _post(operator_client, meter, JAN, 99950)
    body = await (await _post(operator_client, meter, FEB, 120)).get_json()
    assert (body["consumption"], body["flags"]) == ("170.000", ["rollover"])


async def test_high_consumption_case(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    for month, value in enumerate((100, 200, 300), start=1):
        await _post(operator_client, meter, f"2025-{month:02d}", value)
    body = await (await _post(operator_client, meter, "2025-04", 700)).get_json()
    assert (body["consumption"], body["flags"]) == ("400.000", ["high"])


async def test_refusals(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    assert (await _post(operator_client, meter, JAN, 5000)).status_code == 201
    duplicate = await _post(operator_client, meter, JAN, 5001)
    assert (duplicate.status_code, (await duplicate.get_json())["code"]) == (409, "reading_exists")
    decreased = await _post(operator_client, meter, FEB, 4000)
    body = await decreased.get_json()
    assert (decreased.status_code, body["code"], body["errors"][0]["field"]) == (422, "register_decreased", "value")
    negative = await _post(operator_client, meter, FEB, -1)
    assert (negative.status_code, (await negative.get_json())["errors"][0]["field"]) == (422, "value")
    for period in ("2025-13", "202501", "2025-1", ""):
        bad = await _post(operator_client, meter, period, 6000)
        assert (bad.status_code, (await bad.get_json())["errors"][0]["field"]) == (422, "period"), period
    future = await _post(operator_client, meter, "2999-01", 6000)
    assert (await future.get_json())["code"] == "period_in_future"
    estimated = await _post(operator_client, meter, FEB, 6000, kind="estimated")
    assert estimated.status_code == 422
    corrected = await _post(operator_client, meter, FEB, 4000, kind="corrected")
    body = await corrected.get_json()
    assert (corrected.status_code, body["kind"], body["consumption"], body["flags"]) == (201, "corrected", "0.000", ["zero"])


async def test_unknown_meter_is_404(operator_client: ApiClient) -> None:
    assert (await operator_client.post("/api/v1/meters/999999/readings", json={"period": JAN, "value": 1})).status_code == 404
    assert (await operator_client.get("/api/v1/meters/999999/readings")).status_code == 404
    assert (await operator_client.patch("/api/v1/readings/999999", json={"value": 1})).status_code == 404
    assert (await operator_client.get("/api/v1/readings/999999/corrections")).status_code == 404


async def test_readings_listed_newest_first_with_pages(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    # Recorded out of order on purpose: the list orders by period, not by insertion.
    for period, value in (("2025-02", 20), ("2025-04", 40), ("2025-01", 10), ("2025-03", 30), ("2025-05", 50)):
        assert (await _post(operator_client, meter, period, value)).status_code == 201
    periods: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = await (await operator_client.get(f"/api/v1/meters/{meter.id}/readings?{query}")).get_json()
        periods += [r["period"] for r in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert periods == ["2025-05", "2025-04", "2025-03", "2025-02", "2025-01"]


async def test_correction_keeps_history_and_recomputes_the_next_reading(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    meter = await _meter(session, tenant)
    await _post(operator_client, meter, JAN, 100)
    february = await (await _post(operator_client, meter, FEB, 900)).get_json()
    march = await (await _post(operator_client, meter, MAR, 1000)).get_json()
    assert (march["consumption"], march["flags"]) == ("100.000", ["low"])  # against the average of 800 and 100

    response = await operator_client.patch(
        f"/api/v1/readings/{february['id']}", json={"value": "200", "reason": "Lectura mal digitada"}
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert (body["value"], body["kind"], body["consumption"], body["flags"]) == ("200.000", "corrected", "100.000", [])

    listed = await (await operator_client.get(f"/api/v1/meters/{meter.id}/readings")).get_json()
    # March is recomputed from the corrected register; its history now holds January only (corrections are not actual).
    assert [(r["period"], r["consumption"], r["flags"]) for r in listed["items"]] == [
        (MAR, "800.000", ["high"]),
        (FEB, "100.000", []),
        (JAN, "100.000", []),
    ]

    history = await (await operator_client.get(f"/api/v1/readings/{february['id']}/corrections")).get_json()
    assert len(history["items"]) == 1
    entry = history["items"][0]
    assert {k: entry[k] for k in ("previous_value", "previous_kind", "previous_consumption", "previous_flags", "new_value", "reason")} == {
        "previous_value": "900.000",
        "previous_kind": "actual",
        "previous_consumption": "800.000",
        "previous_flags": ["high"],
        "new_value": "200.000",
        "reason": "Lectura mal digitada",
    }
    assert entry["corrected_by"] == operator_client.user["id"]  # type: ignore[index]


async def test_correction_that_breaks_the_next_reading_is_refused(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    meter = await _meter(session, tenant)
    january = await (await _post(operator_client, meter, JAN, 100)).get_json()
    await _post(operator_client, meter, FEB, 200)
    response = await operator_client.patch(f"/api/v1/readings/{january['id']}", json={"value": 5000})
    assert (response.status_code, (await response.get_json())["code"]) == (422, "register_decreased")
    assert await session.scalar(select(ReadingCorrection.id)) is None
    bad = await operator_client.patch(f"/api/v1/readings/{january['id']}", json={"value": -5})
    assert bad.status_code == 422


async def test_customers_cannot_record_or_correct(customer_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    assert (await _post(customer_client, meter, JAN, 1)).status_code == 403
    assert (await customer_client.get(f"/api/v1/meters/{meter.id}/readings")).status_code == 403
    assert (await customer_client.patch("/api/v1/readings/1", json={"value": 1})).status_code == 403

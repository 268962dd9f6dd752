"""Meter CRUD through the API: serials, register limits, fields fixed once read, deletes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models.account_model import Contract
from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.factories import make_contract, make_customer, make_meter, make_reading


async def _contract(session: AsyncSession, tenant: Tenant) -> Contract:
    contract = await make_contract(session, await make_customer(session, tenant))
    await session.commit()
    return contract


def _meter(contract_id: int, **fields: Any) -> dict[str, Any]:
    return {"serial": "abc-123", "contract_id": contract_id, "installed_on": "2025-03-01", **fields}


async def test_create_with_defaults_and_decimal_strings(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await _contract(session, tenant)
    response = await operator_client.post("/api/v1/meters", json=_meter(contract.id, latitude="6.244203", longitude=-75.5812))
    assert response.status_code == 201
    body = await response.get_json()
    assert {k: body[k] for k in ("serial", "contract_id", "register_digits", "multiplier", "initial_value", "installed_on", "status")} == {
        "serial": "ABC-123",
        "contract_id": contract.id,
        "register_digits": 5,
        "multiplier": "1.000",
        "initial_value": "0.000",
        "installed_on": "2025-03-01",
        "status": "active",
    }
    assert (body["latitude"], body["longitude"]) == ("6.244203", "-75.581200")
    assert (await (await operator_client.get(f"/api/v1/meters/{body['id']}")).get_json()) == body


async def test_bad_input(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await _contract(session, tenant)
    cases = [
        ({"register_digits": 13}, "register_digits"),
        ({"multiplier": "0"}, "multiplier"),
        ({"initial_value": "-1"}, "initial_value"),
        ({"initial_value": "1.0005"}, "initial_value"),
        ({"installed_on": "yesterday"}, "installed_on"),
        ({"latitude": "91"}, "latitude"),
        ({"serial": ""}, "serial"),
    ]
    for fields, field in cases:
        response = await operator_client.post("/api/v1/meters", json=_meter(contract.id, **fields))
        assert response.status_code == 422, fields
        assert (await response.get_json())["errors"][0]["field"] == field
    too_big = await operator_client.post("/api/v1/meters", json=_meter(contract.id, register_digits=4, initial_value="10000"))
    body = await too_big.get_json()
    assert (too_big.status_code, body["code"], body["errors"][0]["field"]) == (422, "initial_value_exceeds_register", "initial_value")
    unknown = await operator_client.post("/api/v1/meters", json=_meter(999999))
    assert (await unknown.get_json())["code"] == "contract_not_found"


async def test_duplicate_serial_is_409(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await _contract(session, tenant)
    assert (await operator_client.post("/api/v1/meters", json=_meter(contract.id))).status_code == 201
    again = await operator_client.post("/api/v1/meters", json=_meter(contract.id, serial="ABC-123"))
    assert (again.status_code, (await again.get_json())["code"]) == (409, "serial_exists")


async def test_filters_and_order(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    first = await _contract(session, tenant)
    second = await _contract(session, tenant)
    await make_meter(session, first, serial="M-2")
    await make_meter(session, first, serial="M-1", status="retired")
    await make_meter(session, second, serial="M-3")
    await session.commit()

    async def serials(query: str) -> list[str]:
        return [m["serial"] for m in (await (await operator_client.get(f"/api/v1/meters?{query}")).get_json())["items"]]

    assert await serials("") == ["M-1", "M-2", "M-3"]
    assert await serials("order=-serial") == ["M-3", "M-2", "M-1"]
    assert await serials(f"contract_id={first.id}") == ["M-1", "M-2"]
    assert await serials("serial=m-3") == ["M-3"]
    assert await serials("status=retired") == ["M-1"]


async def test_patch_and_fields_fixed_once_read(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await _contract(session, tenant)
    meter = await make_meter(session, contract, latitude=None)
    await session.commit()
    url = f"/api/v1/meters/{meter.id}"
    changed = await operator_client.patch(url, json={"register_digits": 6, "initial_value": "123456", "latitude": "4.5"})
    assert changed.status_code == 200
    body = await changed.get_json()
    assert (body["register_digits"], body["initial_value"], body["latitude"]) == (6, "123456.000", "4.500000")
    too_big = await operator_client.patch(url, json={"register_digits": 5})
    assert (await too_big.get_json())["code"] == "initial_value_exceeds_register"
    await make_reading(session, meter, "2026-01", 123500, 44)
    await session.commit()
    fixed = await operator_client.patch(url, json={"multiplier": "2", "status": "retired"})
    assert fixed.status_code == 409
    body = await fixed.get_json()
    assert (body["code"], [e["field"] for e in body["errors"]]) == ("meter_has_readings", ["multiplier"])
    allowed = await operator_client.patch(url, json={"status": "retired", "latitude": None, "multiplier": "1"})
    assert allowed.status_code == 200
    assert ((await allowed.get_json())["status"], (await allowed.get_json())["latitude"]) == ("retired", None)


async def test_delete_only_without_readings(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await _contract(session, tenant)
    read = await make_meter(session, contract)
    await make_reading(session, read, "2026-01", 10, 10)
    bare = await make_meter(session, contract)
    await session.commit()
    blocked = await operator_client.delete(f"/api/v1/meters/{read.id}")
    body = await blocked.get_json()
    assert (blocked.status_code, body["code"], body["dependents"]) == (409, "has_dependents", ["readings"])
    assert (await operator_client.delete(f"/api/v1/meters/{bare.id}")).status_code == 204
    assert (await operator_client.get(f"/api/v1/meters/{bare.id}")).status_code == 404


async def test_customers_get_403(customer_client: ApiClient) -> None:
    assert (await customer_client.get("/api/v1/meters")).status_code == 403
    assert (await customer_client.post("/api/v1/meters", json=_meter(customer_client.contract_id))).status_code == 403  # type: ignore[attr-defined]


async def test_a_meter_has_a_kind_from_a_closed_list(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await _contract(session, tenant)
    plain = await (await operator_client.post("/api/v1/meters", json=_meter(contract.id))).get_json()
    assert plain["kind"] == "standard"
    smart = await operator_client.post("/api/v1/meters", json=_meter(contract.id, serial="S-2", kind="smart"))
    assert smart.status_code == 201 and (await smart.get_json())["kind"] == "smart"
    bad = await operator_client.post("/api/v1/meters", json=_meter(contract.id, serial="S-3", kind="analog"))
    assert bad.status_code == 422
    assert [e["field"] for e in (await bad.get_json())["errors"]] == ["kind"]
    changed = await operator_client.patch(f"/api/v1/meters/{plain['id']}", json={"kind": "prepaid"})
    assert changed.status_code == 200 and (await changed.get_json())["kind"] == "prepaid"
    assert (await (await operator_client.get(f"/api/v1/meters/{plain['id']}")).get_json())["kind"] == "prepaid"

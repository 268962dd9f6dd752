"""A customer sees its own contracts and readings, and nobody else's."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models.account_model import Contract, Customer
from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.factories import make_contract, make_customer, make_meter, make_reading


async def test_lists_only_own_contracts(customer_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    own = await session.get(Contract, customer_client.contract_id)  # type: ignore[attr-defined]
    assert own is not None
    second = await make_contract(session, await session.get_one(Customer, own.customer_id))
    await make_contract(session, await make_customer(session, tenant))
    await session.commit()
    response = await customer_client.get("/api/v1/me/contracts")
    assert response.status_code == 200
    body = await response.get_json()
    assert sorted(c["id"] for c in body["items"]) == sorted([own.id, second.id])
    assert {c["customer_id"] for c in body["items"]} == {customer_client.customer_id}  # type: ignore[attr-defined]
    assert [c["contract_number"] for c in body["items"]] == sorted(c["contract_number"] for c in body["items"])
    assert body["next_cursor"] is None


async def test_someone_elses_contract_is_404(customer_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    foreign = await make_contract(session, await make_customer(session, tenant))
    await make_reading(session, await make_meter(session, foreign), "2025-01", 10, 10)
    await session.commit()
    own = await customer_client.get(f"/api/v1/me/contracts/{customer_client.contract_id}")  # type: ignore[attr-defined]
    assert own.status_code == 200
    assert (await own.get_json())["contract_number"] == customer_client.contract_number  # type: ignore[attr-defined]
    for path in (f"/api/v1/me/contracts/{foreign.id}", f"/api/v1/me/contracts/{foreign.id}/readings", "/api/v1/me/contracts/999999"):
        response = await customer_client.get(path)
        assert (response.status_code, (await response.get_json())["code"]) == (404, "not_found"), path


async def test_own_readings_newest_first(customer_client: ApiClient, session: AsyncSession) -> None:
    contract = await session.get(Contract, customer_client.contract_id)  # type: ignore[attr-defined]
    assert contract is not None
    meter = await make_meter(session, contract)
    await make_reading(session, meter, "2025-01", 100, 100)
    await make_reading(session, meter, "2025-02", 250, 150, flags="high")
    await session.commit()
    response = await customer_client.get(f"/api/v1/me/contracts/{contract.id}/readings")
    body = await response.get_json()
    assert [(r["period"], r["consumption"], r["flags"]) for r in body["items"]] == [
        ("2025-02", "150.000", ["high"]),
        ("2025-01", "100.000", []),
    ]


async def test_a_login_without_a_customer_record_has_no_contracts(customer_user_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await make_contract(session, await make_customer(session, tenant))
    await session.commit()
    body = await (await customer_user_client.get("/api/v1/me/contracts")).get_json()
    assert body == {"items": [], "next_cursor": None}
    assert (await customer_user_client.get(f"/api/v1/me/contracts/{contract.id}")).status_code == 404


async def test_self_service_is_for_customers(operator_client: ApiClient, client: ApiClient) -> None:
    assert (await operator_client.get("/api/v1/me/contracts")).status_code == 403
    assert (await client.get("/api/v1/me/contracts")).status_code == 401

"""Contract CRUD through the API: numbers, holders, filters, fixed fields once invoiced, deletes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models.account_model import Customer
from models.billing_model import BillingRun, BillingRunItem
from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.factories import make_contract, make_customer, make_invoice, make_meter


def _contract(customer_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "contract_number": "ctr-1001",
        "customer_id": customer_id,
        "service": "electricity",
        "supply_address": "Carrera 43A # 1-50, Medellín",
        "stratum": "3",
        **fields,
    }


async def _customer(session: AsyncSession, tenant: Tenant) -> Customer:
    customer = await make_customer(session, tenant)
    await session.commit()
    return customer


async def test_create_and_get(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    customer = await _customer(session, tenant)
    response = await operator_client.post("/api/v1/contracts", json=_contract(customer.id))
    assert response.status_code == 201
    body = await response.get_json()
    assert {k: body[k] for k in ("contract_number", "customer_id", "service", "stratum", "tariff_class", "status")} == {
        "contract_number": "CTR-1001",
        "customer_id": customer.id,
        "service": "electricity",
        "stratum": "3",
        "tariff_class": "residential",
        "status": "active",
    }
    assert (await (await operator_client.get(f"/api/v1/contracts/{body['id']}")).get_json()) == body
    commercial = await operator_client.post(
        "/api/v1/contracts", json=_contract(customer.id, contract_number="2002", stratum="commercial", service="water")
    )
    assert (await commercial.get_json())["tariff_class"] == "commercial"


async def test_bad_input(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    customer = await _customer(session, tenant)
    for bad in ({"stratum": "7"}, {"service": "steam"}, {"contract_number": "a b"}, {"supply_address": ""}, {"status": "x"}):
        response = await operator_client.post("/api/v1/contracts", json=_contract(customer.id, **bad))
        assert response.status_code == 422, bad
        assert (await response.get_json())["errors"][0]["field"] == next(iter(bad))
    unknown = await operator_client.post("/api/v1/contracts", json=_contract(999999))
    assert unknown.status_code == 422
    body = await unknown.get_json()
    assert (body["code"], body["errors"][0]["field"]) == ("customer_not_found", "customer_id")


async def test_duplicate_number_is_409_ignoring_case(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    customer = await _customer(session, tenant)
    assert (await operator_client.post("/api/v1/contracts", json=_contract(customer.id))).status_code == 201
    again = await operator_client.post("/api/v1/contracts", json=_contract(customer.id, contract_number=" CTR-1001 "))
    assert again.status_code == 409
    assert (await again.get_json())["code"] == "contract_number_exists"


async def test_filters_and_order(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    first = await make_customer(session, tenant)
    second = await make_customer(session, tenant)
    await make_contract(session, first, contract_number="300", service="water")
    await make_contract(session, first, contract_number="100", status="suspended")
    await make_contract(session, second, contract_number="200", service="gas")
    await session.commit()

    async def numbers(query: str) -> list[str]:
        response = await operator_client.get(f"/api/v1/contracts?{query}")
        assert response.status_code == 200
        return [c["contract_number"] for c in (await response.get_json())["items"]]

    assert await numbers("") == ["100", "200", "300"]
    assert await numbers("order=-contract_number") == ["300", "200", "100"]
    assert await numbers(f"customer_id={first.id}") == ["100", "300"]
    assert await numbers("contract_number=200") == ["200"]
    assert await numbers("status=suspended") == ["100"]
    assert await numbers("service=gas") == ["200"]
    assert (await operator_client.get("/api/v1/contracts?service=steam")).status_code == 422


async def test_patch(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    customer = await make_customer(session, tenant)
    other = await make_customer(session, tenant)
    contract = await make_contract(session, customer, stratum="2")
    await make_contract(session, customer, contract_number="TAKEN")
    await session.commit()
    url = f"/api/v1/contracts/{contract.id}"
    response = await operator_client.patch(url, json={"status": "suspended", "stratum": "commercial"})
    body = await response.get_json()
    assert (body["status"], body["stratum"], body["tariff_class"], body["supply_address"]) == (
        "suspended", "commercial", "commercial", contract.supply_address,
    )
    taken = await operator_client.patch(url, json={"contract_number": "taken"})
    assert (taken.status_code, (await taken.get_json())["code"]) == (409, "contract_number_exists")
    moved = await operator_client.patch(url, json={"customer_id": other.id, "contract_number": "NEW-1"})
    assert moved.status_code == 200
    assert (await moved.get_json())["customer_id"] == other.id
    bad_holder = await operator_client.patch(url, json={"customer_id": 999999})
    assert (await bad_holder.get_json())["code"] == "customer_not_found"
    null = await operator_client.patch(url, json={"service": None})
    assert null.status_code == 422


async def test_number_and_holder_are_fixed_once_invoiced(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    customer = await make_customer(session, tenant)
    other = await make_customer(session, tenant)
    contract = await make_contract(session, customer)
    await make_invoice(session, contract)
    await session.commit()
    url = f"/api/v1/contracts/{contract.id}"
    response = await operator_client.patch(url, json={"contract_number": "NEW", "customer_id": other.id})
    assert response.status_code == 409
    body = await response.get_json()
    assert body["code"] == "contract_invoiced"
    assert [e["field"] for e in body["errors"]] == ["contract_number", "customer_id"]
    same = await operator_client.patch(url, json={"contract_number": contract.contract_number, "status": "terminated"})
    assert same.status_code == 200


async def test_delete_only_without_meters_or_invoices(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    customer = await make_customer(session, tenant)
    both = await make_contract(session, customer)
    await make_meter(session, both)
    await make_invoice(session, both)
    invoiced = await make_contract(session, customer)
    await make_invoice(session, invoiced)
    bare = await make_contract(session, customer)
    await session.commit()
    response = await operator_client.delete(f"/api/v1/contracts/{both.id}")
    assert response.status_code == 409
    body = await response.get_json()
    assert (body["code"], body["dependents"]) == ("has_dependents", ["meters", "invoices"])
    assert (await (await operator_client.delete(f"/api/v1/contracts/{invoiced.id}")).get_json())["dependents"] == ["invoices"]
    assert (await operator_client.delete(f"/api/v1/contracts/{bare.id}")).status_code == 204
    assert (await operator_client.get(f"/api/v1/contracts/{bare.id}")).status_code == 404


async def test_customers_get_403(customer_client: ApiClient) -> None:
    contract_id = customer_client.contract_id  # type: ignore[attr-defined]
    for method, path in (("get", "/api/v1/contracts"), ("get", f"/api/v1/contracts/{contract_id}"), ("delete", f"/api/v1/contracts/{contract_id}")):
        assert (await getattr(customer_client, method)(path)).status_code == 403
    assert (await customer_client.post("/api/v1/contracts", json=_contract(1))).status_code == 403
    assert (await customer_client.patch(f"/api/v1/contracts/{contract_id}", json={"status": "active"})).status_code == 403


async def test_rows_of_other_areas_also_block_the_delete(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await make_contract(session, await make_customer(session, tenant))
    run = BillingRun(tenant_id=tenant.id, period="2026-10")
    session.add(run)
    await session.flush()
    session.add(BillingRunItem(billing_run_id=run.id, contract_id=contract.id, outcome="skipped", reason="nothing to estimate"))
    await session.commit()
    response = await operator_client.delete(f"/api/v1/contracts/{contract.id}")
    body = await response.get_json()
    assert (response.status_code, body["code"], body["dependents"]) == (409, "has_dependents", ["other records"])
    assert (await operator_client.get(f"/api/v1/contracts/{contract.id}")).status_code == 200

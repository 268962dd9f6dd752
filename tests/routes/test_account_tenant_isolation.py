"""Two tenants on one install: an operator of one never sees or touches the other's accounts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from models.tenant_model import Tenant
from tests.conftest import ApiClient, make_user
from tests.factories import make_contract, make_customer, make_meter, make_reading

OTHER = "aguas-sur"


@dataclass
class Accounts:
    """Ids of one tenant's customer, contract, meter and reading."""

    customer_id: int
    contract_id: int
    meter_id: int
    reading_id: int
    national_id: str
    contract_number: str


@pytest.fixture
async def tenant_a_accounts(session: AsyncSession, tenant: Tenant) -> Accounts:
    customer = await make_customer(session, tenant, national_id_type="cc", national_id="52123456")
    contract = await make_contract(session, customer, contract_number="A-1")
    meter = await make_meter(session, contract, serial="SHARED-1")
    reading = await make_reading(session, meter, "2025-01", 10, 10)
    await session.commit()
    return Accounts(customer.id, contract.id, meter.id, reading.id, customer.national_id, contract.contract_number)


@pytest.fixture
async def operator_b(app: Quart, session: AsyncSession) -> ApiClient:
    session.add(
        Tenant(code=OTHER, name="Aguas del Sur S.A.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000001")
    )
    await session.commit()
    user = await make_user(app, role="operator", tenant_code=OTHER)
    api = ApiClient(app)
    response = await api.login(user.email, headers={"X-Tenant-ID": OTHER})
    assert response.status_code == 200
    return api


async def test_other_tenants_ids_are_404(operator_b: ApiClient, tenant_a_accounts: Accounts) -> None:
    a = tenant_a_accounts
    paths = [
        f"/api/v1/customers/{a.customer_id}",
        f"/api/v1/contracts/{a.contract_id}",
        f"/api/v1/meters/{a.meter_id}",
        f"/api/v1/meters/{a.meter_id}/readings",
        f"/api/v1/readings/{a.reading_id}/corrections",
    ]
    for path in paths:
        assert (await operator_b.get(path)).status_code == 404, path
    for path in paths[:3]:
        assert (await operator_b.delete(path)).status_code == 404, path
    assert (await operator_b.patch(f"/api/v1/customers/{a.customer_id}", json={"name": "X"})).status_code == 404
    assert (await operator_b.patch(f"/api/v1/readings/{a.reading_id}", json={"value": 20})).status_code == 404
    posted = await operator_b.post(f"/api/v1/meters/{a.meter_id}/readings", json={"period": "2025-02", "value": 20})
    assert posted.status_code == 404


async def test_lists_do_not_show_other_tenants_rows(operator_b: ApiClient, tenant_a_accounts: Accounts) -> None:
    a = tenant_a_accounts
    for path in (
        "/api/v1/customers",
        f"/api/v1/customers?national_id={a.national_id}",
        "/api/v1/contracts",
        f"/api/v1/contracts?customer_id={a.customer_id}",
        "/api/v1/meters",
        f"/api/v1/meters?contract_id={a.contract_id}",
    ):
        body = await (await operator_b.get(path)).get_json()
        assert body == {"items": [], "next_cursor": None}, path


async def test_references_to_other_tenants_rows_are_refused(operator_b: ApiClient, tenant_a_accounts: Accounts) -> None:
    a = tenant_a_accounts
    contract = await operator_b.post(
        "/api/v1/contracts",
        json={"contract_number": "B-1", "customer_id": a.customer_id, "service": "water", "supply_address": "Calle 1", "stratum": "2"},
    )
    assert (await contract.get_json())["code"] == "customer_not_found"
    meter = await operator_b.post("/api/v1/meters", json={"serial": "B-1", "contract_id": a.contract_id, "installed_on": "2025-01-01"})
    assert (await meter.get_json())["code"] == "contract_not_found"


async def test_unique_values_are_per_tenant(operator_b: ApiClient, tenant_a_accounts: Accounts) -> None:
    a = tenant_a_accounts
    customer = await operator_b.post("/api/v1/customers", json={"name": "Otra", "national_id_type": "cc", "national_id": a.national_id})
    assert customer.status_code == 201
    customer_id = (await customer.get_json())["id"]
    contract = await operator_b.post(
        "/api/v1/contracts",
        json={"contract_number": a.contract_number, "customer_id": customer_id, "service": "water", "supply_address": "Calle 1", "stratum": "2"},
    )
    assert contract.status_code == 201
    meter = await operator_b.post(
        "/api/v1/meters", json={"serial": "shared-1", "contract_id": (await contract.get_json())["id"], "installed_on": "2025-01-01"}
    )
    assert meter.status_code == 201


async def test_registration_matches_only_within_the_tenant(client: ApiClient, operator_b: ApiClient, tenant_a_accounts: Accounts) -> None:
    a = tenant_a_accounts
    body = {
        "email": "cliente@example.com",
        "password": "una clave bien larga",
        "full_name": "Cliente",
        "national_id_type": "cc",
        "national_id": a.national_id,
        "contract_number": a.contract_number,
    }
    other = await client.post("/api/v1/auth/register", json=body, headers={"X-Tenant-ID": OTHER})
    assert (other.status_code, (await other.get_json())["code"]) == (422, "registration_mismatch")
    own = await client.post("/api/v1/auth/register", json=body)
    assert own.status_code == 201

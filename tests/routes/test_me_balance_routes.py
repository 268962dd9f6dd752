"""A customer's balance over its contracts and its coupons; staff and anonymous callers get none of it."""

from __future__ import annotations

from datetime import date

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from models.tenant_model import Tenant
from tests.conftest import TEST_PASSWORD, ApiClient
from tests.factories import make_customer_user, make_invoice
from tests.payment_builders import make_debtor


async def test_balance_per_contract_and_overall(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    home = await make_debtor(session, tenant, amounts=("85000.40", "12000"), due_on=date(2099, 1, 15))
    shop = await make_debtor(session, tenant, amounts=("40000",), due_on=date(2026, 1, 10), status="overdue", customer=home.customer)
    await make_invoice(session, shop.contract, period="2025-12", number="PAID-1", status="paid")
    stranger = await make_debtor(session, tenant, amounts=("999",), due_on=date(2026, 1, 10), status="overdue")
    user = await make_customer_user(session, home.customer)
    await session.commit()
    api = ApiClient(app)
    assert (await api.login(user.email, TEST_PASSWORD)).status_code == 200

    response = await api.get("/api/v1/me/balance")
    assert response.status_code == 200
    body = await response.get_json()
    assert (body["currency"], body["total_due"], body["overdue"]) == ("COP", "137000", "40000")
    by_number = {c["contract_number"]: c for c in body["contracts"]}
    assert set(by_number) == {home.contract.contract_number, shop.contract.contract_number}
    assert stranger.contract.contract_number not in by_number
    home_row = by_number[home.contract.contract_number]
    assert (home_row["total_due"], home_row["overdue"], home_row["open_invoices"]) == ("97000", "0", 2)
    shop_row = by_number[shop.contract.contract_number]
    assert (shop_row["total_due"], shop_row["overdue"], shop_row["open_invoices"]) == ("40000", "40000", 1)


async def test_my_coupons_with_status(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",), due_on=date(2099, 1, 15))
    other = await make_debtor(session, tenant, amounts=("5000",), due_on=date(2099, 1, 15))
    user = await make_customer_user(session, debtor.customer)
    await session.commit()
    api = ApiClient(app)
    assert (await api.login(user.email, TEST_PASSWORD)).status_code == 200
    first = await (await api.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})).get_json()
    second = await (await api.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})).get_json()
    await ApiClient(app).post("/api/v1/coupons", json={"contract_number": other.contract.contract_number})

    listed = await (await api.get("/api/v1/me/coupons")).get_json()
    # The second coupon superseded the first (cancelled); newest first; the stranger's is not there.
    assert [(c["reference"], c["status"]) for c in listed["items"]] == [
        (second["reference"], "active"),
        (first["reference"], "cancelled"),
    ]
    assert listed["items"][0]["amount"] == "85000" and listed["items"][0]["currency"] == "COP"
    active = await (await api.get("/api/v1/me/coupons?status=active")).get_json()
    assert [c["reference"] for c in active["items"]] == [second["reference"]]
    page = await (await api.get("/api/v1/me/coupons?limit=1")).get_json()
    rest = await (await api.get(f"/api/v1/me/coupons?limit=1&cursor={page['next_cursor']}")).get_json()
    assert [c["reference"] for c in page["items"] + rest["items"]] == [second["reference"], first["reference"]]
    assert (await api.get("/api/v1/me/coupons?status=lost")).status_code == 422


async def test_staff_and_anonymous_do_not_reach_self_service(
    operator_client: ApiClient, admin_client: ApiClient, client: ApiClient, customer_user_client: ApiClient
) -> None:
    for path in ("/api/v1/me/balance", "/api/v1/me/coupons"):
        assert (await operator_client.get(path)).status_code == 403
        assert (await admin_client.get(path)).status_code == 403
        assert (await client.get(path)).status_code == 401
    # A customer login linked to no customer owes nothing and has no coupons.
    empty = await (await customer_user_client.get("/api/v1/me/balance")).get_json()
    assert (empty["total_due"], empty["overdue"], empty["contracts"]) == ("0", "0", [])
    assert (await (await customer_user_client.get("/api/v1/me/coupons")).get_json())["items"] == []

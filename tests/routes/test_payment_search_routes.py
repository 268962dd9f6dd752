"""Staff payment search and one payment in full; invoices and coupons name the payment that settled them."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from models.tenant_model import Tenant
from tests.conftest import TEST_PASSWORD, ApiClient, make_user
from tests.factories import make_customer_user
from tests.payment_builders import Debtor, make_debtor

DUE = date(2099, 1, 15)
OTHER = "aguas-sur"


@pytest.fixture
async def debtor(session: AsyncSession, tenant: Tenant) -> Debtor:
    return await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE, name="Ana Gómez")


@pytest.fixture
async def other_debtor(session: AsyncSession, tenant: Tenant) -> Debtor:
    return await make_debtor(session, tenant, amounts=("40000",), due_on=DUE, name="Luis Pérez")


async def _customer(app: Quart, session: AsyncSession, debtor: Debtor) -> ApiClient:
    user = await make_customer_user(session, debtor.customer)
    await session.commit()
    api = ApiClient(app)
    assert (await api.login(user.email, TEST_PASSWORD)).status_code == 200
    return api


async def _pay(api: ApiClient, debtor: Debtor, token: str, key: str) -> dict[str, Any]:
    coupon = await api.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})
    assert coupon.status_code == 201, await coupon.get_data(as_text=True)
    reference = (await coupon.get_json())["reference"]
    paid = await api.post(
        "/api/v1/payments", json={"coupon_reference": reference, "card_token": token}, headers={"Idempotency-Key": key}
    )
    assert paid.status_code == 201, await paid.get_data(as_text=True)
    return await paid.get_json()


async def _ids(api: ApiClient, query: str) -> list[int]:
    response = await api.get(f"/api/v1/payments{query}")
    assert response.status_code == 200, await response.get_data(as_text=True)
    return [p["id"] for p in (await response.get_json())["items"]]


async def test_staff_find_payments_by_every_filter(
    app: Quart, session: AsyncSession, operator_client: ApiClient, admin_client: ApiClient, debtor: Debtor, other_debtor: Debtor
) -> None:
    ana = await _customer(app, session, debtor)
    luis = await _customer(app, session, other_debtor)
    declined = await _pay(ana, debtor, "tok_declined", "k1")
    approved = await _pay(ana, debtor, "tok_approved", "k2")
    luis_paid = await _pay(luis, other_debtor, "tok_approved", "k3")
    assert (declined["status"], approved["status"], luis_paid["status"]) == ("declined", "approved", "approved")

    # Newest first, explicit order (created_at, then id).
    assert await _ids(operator_client, "") == [luis_paid["id"], approved["id"], declined["id"]]
    assert await _ids(admin_client, "?status=approved") == [luis_paid["id"], approved["id"]]
    assert await _ids(operator_client, f"?coupon_reference={approved['coupon_reference']}") == [approved["id"]]
    first_invoice = debtor.invoices[0]
    assert await _ids(operator_client, f"?invoice_id={first_invoice.id}") == [approved["id"], declined["id"]]
    assert await _ids(operator_client, f"?invoice_number={first_invoice.number}&status=declined") == [declined["id"]]
    assert await _ids(operator_client, f"?contract_number={other_debtor.contract.contract_number}") == [luis_paid["id"]]
    assert await _ids(operator_client, f"?customer_id={debtor.customer.id}") == [approved["id"], declined["id"]]
    assert await _ids(operator_client, f"?national_id={other_debtor.customer.national_id}") == [luis_paid["id"]]
    assert await _ids(operator_client, "?channel=bank") == []
    assert await _ids(operator_client, "?channel=card&from=2020-01-01&to=2099-12-31") == [luis_paid["id"], approved["id"], declined["id"]]
    assert await _ids(operator_client, "?to=2020-01-01") == []

    # Keyset pages: two, then one, no overlap.
    first = await (await operator_client.get("/api/v1/payments?limit=2")).get_json()
    assert [p["id"] for p in first["items"]] == [luis_paid["id"], approved["id"]]
    second = await (await operator_client.get(f"/api/v1/payments?limit=2&cursor={first['next_cursor']}")).get_json()
    assert [p["id"] for p in second["items"]] == [declined["id"]] and second["next_cursor"] is None
    row = first["items"][1]
    assert (row["amount"], row["currency"], row["customer_id"], row["channel"]) == ("97000", "COP", debtor.customer.id, "card")

    bad_range = await operator_client.get("/api/v1/payments?from=2026-02-01&to=2026-01-01")
    assert bad_range.status_code == 422 and (await bad_range.get_json())["code"] == "invalid_date_range"
    bad_status = await operator_client.get("/api/v1/payments?status=lost")
    assert bad_status.status_code == 422
    bad_cursor = await operator_client.get("/api/v1/payments?cursor=nonsense")
    assert bad_cursor.status_code == 400 and (await bad_cursor.get_json())["code"] == "invalid_cursor"


async def test_one_payment_in_full_and_who_settled_what(
    app: Quart, session: AsyncSession, operator_client: ApiClient, admin_client: ApiClient, debtor: Debtor
) -> None:
    ana = await _customer(app, session, debtor)
    paid = await _pay(ana, debtor, "tok_approved", "k1")
    invoice_ids = [i.id for i in debtor.invoices]

    detail = await (await operator_client.get(f"/api/v1/payments/{paid['id']}")).get_json()
    assert (detail["status"], detail["amount"], detail["customer_id"]) == ("approved", "97000", debtor.customer.id)
    assert detail["coupon"]["reference"] == paid["coupon_reference"] and detail["coupon"]["status"] == "paid"
    # Same due date: in id order.
    assert [(i["id"], i["status"], i["allocated"]) for i in detail["invoices"]] == [
        (invoice_ids[0], "paid", "85000"),
        (invoice_ids[1], "paid", "12000"),
    ]
    assert [e["kind"] for e in detail["ledger_entries"]] == ["payment_approved"]
    assert detail["reversal"] is None

    # The invoice and the coupon name the payment that settled them.
    invoice = await (await operator_client.get(f"/api/v1/invoices/{invoice_ids[0]}")).get_json()
    assert invoice["payment_id"] == paid["id"]
    mine = await (await ana.get(f"/api/v1/me/invoices/{invoice_ids[1]}")).get_json()
    assert mine["payment_id"] == paid["id"]
    coupon = await (await operator_client.get(f"/api/v1/coupons/{paid['coupon_reference']}")).get_json()
    assert coupon["payment_id"] == paid["id"]

    reversed_ = await admin_client.post(f"/api/v1/payments/{paid['id']}/reversal", json={"reason": "no lo reconozco"})
    assert reversed_.status_code == 200
    after = await (await operator_client.get(f"/api/v1/payments/{paid['id']}")).get_json()
    assert after["status"] == "reversed"
    assert after["reversal"]["reason"] == "no lo reconozco" and after["reversal"]["reversed_by"] == admin_client.user["id"]  # type: ignore[index]
    assert [e["kind"] for e in after["ledger_entries"]] == ["payment_approved", "payment_reversed"]
    assert [i["status"] for i in after["invoices"]] == ["issued", "issued"]
    unpaid = await (await operator_client.get(f"/api/v1/invoices/{invoice_ids[0]}")).get_json()
    assert unpaid["payment_id"] is None
    # A fresh coupon is unpaid: no payment named.
    fresh_coupon = await ana.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})
    assert (await fresh_coupon.get_json())["payment_id"] is None


async def test_customers_and_anonymous_never_reach_staff_payment_routes(
    app: Quart, session: AsyncSession, client: ApiClient, debtor: Debtor
) -> None:
    ana = await _customer(app, session, debtor)
    paid = await _pay(ana, debtor, "tok_approved", "k1")
    for path in ("/api/v1/payments", f"/api/v1/payments/{paid['id']}", f"/api/v1/payments?customer_id={debtor.customer.id}"):
        assert (await ana.get(path)).status_code == 403, path
        assert (await client.get(path)).status_code == 401, path
    # Quick-pay readers of a coupon do not learn payment ids.
    coupon = await (await client.get(f"/api/v1/coupons/{paid['coupon_reference']}")).get_json()
    assert coupon["payment_id"] is None


async def test_another_tenants_payments_are_404_and_unlisted(
    app: Quart, session: AsyncSession, debtor: Debtor
) -> None:
    ana = await _customer(app, session, debtor)
    paid = await _pay(ana, debtor, "tok_approved", "k1")
    session.add(
        Tenant(code=OTHER, name="Aguas del Sur S.A.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000001")
    )
    await session.commit()
    user = await make_user(app, role="admin", tenant_code=OTHER)
    other = ApiClient(app)
    assert (await other.login(user.email, headers={"X-Tenant-ID": OTHER})).status_code == 200
    assert (await other.get(f"/api/v1/payments/{paid['id']}")).status_code == 404
    assert await _ids(other, "") == []
    assert await _ids(other, f"?coupon_reference={paid['coupon_reference']}") == []


async def test_openapi_documents_the_payment_search(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    listed = spec["paths"]["/api/v1/payments"]["get"]
    names = {p["name"] for p in listed["parameters"]}
    assert {"coupon_reference", "invoice_id", "invoice_number", "contract_number", "customer_id", "national_id",
            "status", "channel", "from", "to", "limit", "cursor"} <= names
    assert {"200", "400", "401", "403", "422"} <= set(listed["responses"])
    assert {"200", "401", "403", "404"} <= set(spec["paths"]["/api/v1/payments/{payment_id}"]["get"]["responses"])

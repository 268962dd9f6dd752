"""Lookup, coupon, payment, webhook, collection, reversal and history routes, through the test client."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import collection_controller
from controllers.billing_run_controller import run_period
from domain.coupon_codes import coupon_fields
from models.billing_model import Invoice
from models.payment_model import Payment
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import TEST_PASSWORD, ApiClient
from tests.factories import make_customer_user, make_invoice
from tests.payment_builders import Debtor, fresh, make_debtor

# Due dates far ahead, so coupons made "now" in these tests are valid until then.
DUE = date(2099, 1, 15)


@pytest.fixture
async def debtor(session: AsyncSession, tenant: Tenant) -> Debtor:
    return await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)


@pytest.fixture
async def customer_client(app: Quart, session: AsyncSession, debtor: Debtor) -> ApiClient:
    user = await make_customer_user(session, debtor.customer)
    await session.commit()
    api = ApiClient(app)
    response = await api.login(user.email, TEST_PASSWORD)
    assert response.status_code == 200
    return api


async def json_of(response: Any) -> Any:
    return await response.get_json()


async def new_coupon(client: ApiClient, debtor: Debtor) -> dict[str, Any]:
    response = await client.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await json_of(response)


async def pay(client: ApiClient, reference: str, token: str = "tok_approved", key: str | None = "key-1") -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post("/api/v1/payments", json={"coupon_reference": reference, "card_token": token}, headers=headers)


async def test_public_lookup_shows_a_masked_name_and_unpaid_invoices(client: ApiClient, debtor: Debtor) -> None:
    response = await client.get(f"/api/v1/invoice-lookup?contract_number={debtor.contract.contract_number}")
    assert response.status_code == 200
    body = await json_of(response)
    assert body["holder_name"] == "J*** P*** G***"
    assert body["total_due"] == "97000" and body["currency"] == "COP"
    assert [set(i) for i in body["invoices"]] == [{"number", "period", "amount_due", "due_on", "status"}] * 2
    assert [i["amount_due"] for i in body["invoices"]] == ["85000", "12000"]


async def test_unknown_and_paid_up_contracts_look_the_same(client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    paid_up = await make_debtor(session, tenant, status="paid")
    unknown = await client.get("/api/v1/invoice-lookup?contract_number=000000")
    nothing = await client.get(f"/api/v1/invoice-lookup?contract_number={paid_up.contract.contract_number}")
    assert unknown.status_code == nothing.status_code == 404
    first, second = await json_of(unknown), await json_of(nothing)
    first.pop("request_id"), second.pop("request_id")
    assert first == second and first["code"] == "nothing_due"


async def test_public_lookup_is_rate_limited_per_ip(client: ApiClient) -> None:
    codes = [(await client.get("/api/v1/invoice-lookup?contract_number=1")).status_code for _ in range(31)]
    assert codes[:30] == [404] * 30
    assert codes[30] == 429


async def test_customer_lookup_of_its_own_contract(customer_client: ApiClient, debtor: Debtor, session: AsyncSession, tenant: Tenant) -> None:
    response = await customer_client.get(f"/api/v1/me/contracts/{debtor.contract.contract_number}/invoices")
    assert response.status_code == 200
    body = await json_of(response)
    assert body["holder_name"] == "Juana Pérez Gómez"
    assert [i["id"] for i in body["invoices"]] == [i.id for i in debtor.invoices]
    other = await make_debtor(session, tenant, name="Pedro Ruiz")
    missing = await customer_client.get(f"/api/v1/me/contracts/{other.contract.contract_number}/invoices")
    assert missing.status_code == 404 and (await json_of(missing))["code"] == "contract_not_found"


async def test_customer_lookup_needs_a_customer(operator_client: ApiClient, client: ApiClient, debtor: Debtor) -> None:
    path = f"/api/v1/me/contracts/{debtor.contract.contract_number}/invoices"
    assert (await operator_client.get(path)).status_code == 403
    assert (await client.get(path)).status_code == 401


async def test_anonymous_coupon_by_contract_number(client: ApiClient, debtor: Debtor) -> None:
    body = await new_coupon(client, debtor)
    assert body["holder_name"] == "J*** P*** G***"
    assert body["amount"] == "97000" and body["channel_fee"] == "0" and body["status"] == "active"
    assert [i["id"] for i in body["invoices"]] == [None, None]
    gln, reference, amount, due_on = coupon_fields(body["barcode"]["element_string"])
    assert (gln, reference, str(amount), due_on) == ("7709998000018", body["reference"], "97000", DUE)
    assert body["barcode"]["human_readable"].startswith("(415)7709998000018(8020)")
    assert body["expires_at"].endswith("Z") or body["expires_at"].endswith("+00:00")


async def test_coupon_body_needs_exactly_one_selector(client: ApiClient, customer_client: ApiClient, debtor: Debtor) -> None:
    for payload in ({}, {"invoice_ids": [debtor.invoices[0].id], "contract_number": debtor.contract.contract_number}):
        response = await customer_client.post("/api/v1/coupons", json=payload)
        assert response.status_code == 422
        assert (await json_of(response))["code"] == "validation_error"
    anonymous = await client.post("/api/v1/coupons", json={"invoice_ids": [debtor.invoices[0].id]})
    assert anonymous.status_code == 422
    assert (await json_of(anonymous))["code"] == "contract_number_required"


async def test_customer_coupon_by_invoice_ids_and_reading_it(customer_client: ApiClient, client: ApiClient, debtor: Debtor) -> None:
    response = await customer_client.post("/api/v1/coupons", json={"invoice_ids": [debtor.invoices[1].id]})
    assert response.status_code == 201
    body = await json_of(response)
    assert body["amount"] == "12000" and body["invoices"][0]["id"] == debtor.invoices[1].id
    assert body["holder_name"] == "Juana Pérez Gómez"
    reference = body["reference"]
    mine = await customer_client.get(f"/api/v1/coupons/{reference}")
    assert mine.status_code == 200 and (await json_of(mine))["reference"] == reference
    anonymous = await json_of(await client.get(f"/api/v1/coupons/{reference}"))
    assert anonymous["holder_name"] == "J*** P*** G***" and anonymous["invoices"][0]["id"] is None
    svg = await client.get(f"/api/v1/coupons/{reference}/barcode.svg")
    assert svg.status_code == 200 and svg.content_type == "image/svg+xml"
    # reportlab's SVG colours its bars with style attributes; the API's default CSP would blank them.
    assert "style-src 'unsafe-inline'" in svg.headers["Content-Security-Policy"]
    assert b"<svg" in await svg.get_data()
    pdf = await client.get(f"/api/v1/coupons/{reference}/pdf")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    assert (await pdf.get_data()).startswith(b"%PDF")
    missing = await client.get("/api/v1/coupons/999/pdf")
    assert missing.status_code == 404 and missing.content_type == "application/problem+json"


async def test_another_customer_cannot_read_my_coupon(app: Quart, session: AsyncSession, tenant: Tenant, debtor: Debtor) -> None:
    other = await make_debtor(session, tenant, name="Pedro Ruiz", due_on=DUE)
    user = await make_customer_user(session, other.customer)
    await session.commit()
    stranger = ApiClient(app)
    await stranger.login(user.email)
    reference = (await new_coupon(ApiClient(app), debtor))["reference"]
    response = await stranger.get(f"/api/v1/coupons/{reference}")
    assert response.status_code == 404 and (await json_of(response))["code"] == "coupon_not_found"
    theirs = await stranger.post("/api/v1/coupons", json={"invoice_ids": [debtor.invoices[0].id]})
    assert theirs.status_code == 404


async def test_payment_needs_an_idempotency_key(client: ApiClient, debtor: Debtor) -> None:
    reference = (await new_coupon(client, debtor))["reference"]
    response = await pay(client, reference, key=None)
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert (await json_of(response))["code"] == "idempotency_key_required"


async def test_the_whole_self_service_flow(
    customer_client: ApiClient, admin_client: ApiClient, debtor: Debtor, session: AsyncSession
) -> None:
    reference = (await new_coupon(customer_client, debtor))["reference"]
    first = await pay(customer_client, reference, key="flow-1")
    assert first.status_code == 201 and first.headers["Idempotent-Replayed"] == "false"
    payment = await json_of(first)
    assert (payment["status"], payment["amount"], payment["coupon_reference"]) == ("approved", "97000", reference)
    invoice = await fresh(session, Invoice, debtor.invoices[0].id)
    assert invoice.status == "paid"  # type: ignore[attr-defined]

    replay = await pay(customer_client, reference, key="flow-1")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert await json_of(replay) == payment
    reused = await pay(customer_client, reference, "tok_declined", key="flow-1")
    assert reused.status_code == 422 and (await json_of(reused))["code"] == "idempotency_key_reused"
    again = await pay(customer_client, reference, key="flow-2")
    assert again.status_code == 409 and (await json_of(again))["code"] == "already_paid"

    history = await json_of(await customer_client.get("/api/v1/me/transactions"))
    assert [e["kind"] for e in history["items"]] == ["payment_approved", "coupon_created"]
    assert history["items"][0]["amount"] == "97000"
    assert history["items"][0]["contract_numbers"] == [debtor.contract.contract_number]

    forbidden = await customer_client.post(f"/api/v1/payments/{payment['id']}/reversal", json={"reason": "no lo reconozco"})
    assert forbidden.status_code == 403
    reversed_ = await admin_client.post(f"/api/v1/payments/{payment['id']}/reversal", json={"reason": "no lo reconozco"})
    assert reversed_.status_code == 200
    assert (await json_of(reversed_))["status"] == "reversed"
    invoice_id = debtor.invoices[0].id
    await session.rollback()  # end the read snapshot taken above
    invoice = await fresh(session, Invoice, invoice_id)
    assert (invoice.status, invoice.amount_due) == ("issued", 85000)  # type: ignore[attr-defined]
    twice = await admin_client.post(f"/api/v1/payments/{payment['id']}/reversal", json={"reason": "no lo reconozco"})
    assert twice.status_code == 409 and (await json_of(twice))["code"] == "already_reversed"
    cancelled = await pay(customer_client, reference, key="flow-3")
    assert cancelled.status_code == 410 and (await json_of(cancelled))["code"] == "coupon_cancelled"
    kinds = [e["kind"] for e in (await json_of(await customer_client.get("/api/v1/me/transactions")))["items"]]
    assert kinds == ["payment_reversed", "payment_approved", "coupon_created"]


async def test_reversal_of_an_unknown_payment_is_404(admin_client: ApiClient) -> None:
    response = await admin_client.post("/api/v1/payments/424242/reversal", json={"reason": "por error"})
    assert response.status_code == 404


async def test_webhook_settles_a_pending_payment_once(app: Quart, client: ApiClient, debtor: Debtor, session: AsyncSession) -> None:
    reference = (await new_coupon(client, debtor))["reference"]
    pending = await json_of(await pay(client, reference, "tok_pending"))
    assert pending["status"] == "pending"
    payment = await fresh(session, Payment, pending["id"])
    gateway = app.extensions["cuponera"].payment_gateway
    body, headers = gateway.settlement_webhook(
        gateway_reference=payment.gateway_reference, merchant_reference=str(payment.id), status="approved"  # type: ignore[attr-defined]
    )
    first = await client.raw.post("/api/v1/payments/webhook", data=body, headers=headers)
    assert first.status_code == 200
    assert await json_of(first) == {"received": True, "payment_id": pending["id"], "status": "approved", "applied": True}
    replay = await client.raw.post("/api/v1/payments/webhook", data=body, headers=headers)
    assert replay.status_code == 200 and (await json_of(replay))["applied"] is False
    forged = dict(headers, **{"X-Webhook-Signature": "v1=" + "0" * 64})
    rejected = await client.raw.post("/api/v1/payments/webhook", data=body, headers=forged)
    assert rejected.status_code == 401
    assert rejected.content_type == "application/problem+json"
    assert (await json_of(rejected))["code"] == "invalid_signature"


async def test_collections_by_bank_key(client: ApiClient, debtor: Debtor, session: AsyncSession, tenant: Tenant) -> None:
    reference = (await new_coupon(client, debtor))["reference"]
    _key, raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Popular")
    payload = {"reference": reference, "amount": "97000", "paid_at": "2026-11-10T10:30:00-05:00"}
    unauthenticated = await client.post("/api/v1/collections", json=payload)
    assert unauthenticated.status_code == 401 and (await json_of(unauthenticated))["code"] == "invalid_api_key"
    auth = {"Authorization": f"Bearer {raw}"}
    mismatch = await client.post("/api/v1/collections", json=dict(payload, amount="90000"), headers=auth)
    assert mismatch.status_code == 422 and (await json_of(mismatch))["code"] == "amount_mismatch"
    naive = await client.post("/api/v1/collections", json=dict(payload, paid_at="2026-11-10T10:30:00"), headers=auth)
    assert naive.status_code == 422
    created = await client.post("/api/v1/collections", json=payload, headers=auth)
    assert created.status_code == 201
    receipt = await json_of(created)
    assert (receipt["reference"], receipt["amount"], receipt["currency"]) == (reference, "97000", "COP")
    assert receipt["paid_at"].startswith("2026-11-10T15:30:00")
    duplicate = await client.post("/api/v1/collections", json=payload, headers=auth)
    assert duplicate.status_code == 200 and await json_of(duplicate) == receipt
    # The same reference with another amount is not a repeat: a 409 instead of the first receipt.
    other = await client.post("/api/v1/collections", json=dict(payload, amount="90000"), headers=auth)
    assert other.status_code == 409 and (await json_of(other))["code"] == "collection_conflict"
    online = await pay(client, reference)
    assert online.status_code == 409 and (await json_of(online))["code"] == "already_paid"


async def test_transactions_filters_and_auth(customer_client: ApiClient, client: ApiClient, debtor: Debtor) -> None:
    await new_coupon(customer_client, debtor)
    number = debtor.contract.contract_number
    found = await json_of(await customer_client.get(f"/api/v1/me/transactions?contract_number={number}&from=2020-01-01&to=2099-12-31"))
    assert [e["kind"] for e in found["items"]] == ["coupon_created"]
    assert set(found["items"][0]) >= {"id", "kind", "amount", "currency", "reference", "created_at", "contract_numbers"}
    empty = await json_of(await customer_client.get("/api/v1/me/transactions?to=2020-01-01"))
    assert empty == {"items": [], "next_cursor": None}
    bad = await customer_client.get("/api/v1/me/transactions?from=2026-02-01&to=2026-01-01")
    assert bad.status_code == 422
    assert (await customer_client.get("/api/v1/me/transactions?cursor=garbage")).status_code == 400
    assert (await client.get("/api/v1/me/transactions")).status_code == 401


async def test_openapi_documents_the_payment_routes(client: ApiClient) -> None:
    spec = await json_of(await client.get("/openapi.json"))
    paths = spec["paths"]
    assert set(paths["/api/v1/payments"]["post"]["responses"]) >= {"201", "400", "403", "404", "409", "410", "422", "429", "500"}
    assert set(paths["/api/v1/collections"]["post"]["responses"]) >= {"200", "201", "401", "409", "410", "422"}
    assert set(paths["/api/v1/invoice-lookup"]["get"]["responses"]) >= {"200", "404", "429"}
    parameters = {p["name"] for p in paths["/api/v1/payments"]["post"].get("parameters", [])}
    assert "Idempotency-Key" in parameters
    for path in ("/api/v1/coupons/{reference}/barcode.svg", "/api/v1/coupons/{reference}/pdf", "/api/v1/me/transactions", "/api/v1/payments/webhook"):
        assert path in paths, path


async def test_openapi_marks_the_rules_the_server_enforces(client: ApiClient) -> None:
    paths = (await json_of(await client.get("/openapi.json")))["paths"]
    [lookup_param] = paths["/api/v1/invoice-lookup"]["get"]["parameters"]
    assert (lookup_param["name"], lookup_param.get("required")) == ("contract_number", True)
    [key] = [p for p in paths["/api/v1/payments"]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
    assert key.get("required") is True
    body = paths["/api/v1/coupons"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert [branch["required"] for branch in body["oneOf"]] == [["invoice_ids"], ["contract_number"]]
    svg = paths["/api/v1/coupons/{reference}/barcode.svg"]["get"]["responses"]["200"]
    pdf = paths["/api/v1/coupons/{reference}/pdf"]["get"]["responses"]["200"]
    assert list(svg["content"]) == ["image/svg+xml"] and list(pdf["content"]) == ["application/pdf"]
    for path in ("/api/v1/coupons/{reference}", "/api/v1/coupons/{reference}/barcode.svg", "/api/v1/coupons/{reference}/pdf"):
        assert "429" in paths[path]["get"]["responses"], path


async def test_a_carried_invoice_is_offered_only_through_the_invoice_that_carries_it(
    app: Quart, client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity")
    metered = await make_metered_contract(session, tenant, readings={"2026-10": (100, 100)}, name="Juana Pérez Gómez")
    september = await make_invoice(
        session, metered.contract, period="2026-09", total="50000", status="overdue", due_on=date(2026, 10, 20), number="SEP-9"
    )
    september_id = september.id
    user = await make_customer_user(session, metered.customer)
    await session.commit()
    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    await session.refresh(tenant)
    number = metered.contract.contract_number

    lookup = await json_of(await client.get(f"/api/v1/invoice-lookup?contract_number={number}"))
    assert [(i["period"], i["amount_due"]) for i in lookup["invoices"]] == [("2026-10", "135760")]
    assert lookup["total_due"] == "135760"
    coupon = await json_of(await client.post("/api/v1/coupons", json={"contract_number": number}))
    assert coupon["amount"] == "135760" and [i["period"] for i in coupon["invoices"]] == ["2026-10"]

    customer = ApiClient(app)
    assert (await customer.login(user.email, TEST_PASSWORD)).status_code == 200
    october_number = lookup["invoices"][0]["number"]
    refused = await customer.post("/api/v1/coupons", json={"invoice_ids": [september_id]})
    assert refused.status_code == 422
    problem = await json_of(refused)
    assert problem["code"] == "invoice_carried" and f"SEP-9 is carried into {october_number}" in problem["detail"]
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("invoice_ids.0", "invoice_carried")]


@pytest.mark.parametrize("suffix", ["", "/barcode.svg", "/pdf"])
async def test_anonymous_coupon_reads_are_rate_limited_per_ip(
    client: ApiClient, customer_client: ApiClient, debtor: Debtor, suffix: str
) -> None:
    reference = (await new_coupon(customer_client, debtor))["reference"]
    codes = []
    # 30 a minute refill one every 2 s, so a slow machine may serve a 31st: look for the 429 a bit further.
    while len(codes) < 60 and 429 not in codes:
        codes.append((await client.get(f"/api/v1/coupons/{reference}{suffix}")).status_code)
    assert codes[:30] == [200] * 30 and codes[-1] == 429
    limited = await client.get(f"/api/v1/coupons/{reference}{suffix}")
    assert limited.status_code == 429 and (await json_of(limited))["code"] == "rate_limited"
    # The logged-in customer is not counted with the anonymous callers of that address.
    assert (await customer_client.get(f"/api/v1/coupons/{reference}{suffix}")).status_code == 200


async def test_anonymous_payers_with_the_same_key_do_not_collide(
    app: Quart, session: AsyncSession, tenant: Tenant, debtor: Debtor
) -> None:
    other = await make_debtor(session, tenant, name="Pedro Ruiz", due_on=DUE)
    first_payer, second_payer = ApiClient(app), ApiClient(app)
    first_ref = (await new_coupon(first_payer, debtor))["reference"]
    second_ref = (await new_coupon(second_payer, other))["reference"]
    first = await pay(first_payer, first_ref, key="1")
    second = await pay(second_payer, second_ref, key="1")
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "false"
    assert (await json_of(first))["coupon_reference"] == first_ref
    assert (await json_of(second))["coupon_reference"] == second_ref
    # The same payer retrying the same coupon with the same key still gets the replay.
    replay = await pay(first_payer, first_ref, key="1")
    assert replay.headers["Idempotent-Replayed"] == "true" and await json_of(replay) == await json_of(first)

"""Payment agreements over HTTP: operators sign, list, read, print the booklet and cancel; customers only their own."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from models.account_model import Contract
from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.domain.test_barcode_scan import decode, pdf_page_png
from tests.factories import make_contract, make_customer, make_customer_user, make_invoice

DUE = date(2026, 11, 16)


async def owing_contract(session: AsyncSession, contract_id: int, *amounts: int) -> None:
    contract = await session.get_one(Contract, contract_id)
    for index, amount in enumerate(amounts):
        await make_invoice(session, contract, period=f"2026-{10 - index:02d}", total=Decimal(amount), due_on=DUE)
    await session.commit()


async def test_an_operator_signs_reads_lists_and_prints_the_booklet(
    operator_client: ApiClient, customer_client: ApiClient, session: AsyncSession, tmp_path: Path
) -> None:
    await owing_contract(session, customer_client.contract_id, 60000, 40000)  # type: ignore[attr-defined]

    response = await operator_client.post("/api/v1/agreements", json={
        "contract_id": customer_client.contract_id, "instalment_count": 7, "down_payment": "15000", "monthly_rate": "1.7",  # type: ignore[attr-defined]
    })

    assert response.status_code == 201, await response.get_data(as_text=True)
    body = await response.get_json()
    # 85 000 × 1.7 % × 7 = 10 115 financing; the instalments add up to exactly 110 115.
    assert (body["status"], body["debt"], body["down_payment"], body["financing"], body["total"], body["monthly_rate"]) == (
        "current", "100000", "15000", "10115", "110115", "1.7"
    )
    amounts = [Decimal(i["amount"]) for i in body["instalments"]]
    assert sum(amounts) == Decimal(110115) and len(amounts) == 8
    assert [i["number"] for i in body["instalments"]] == list(range(8))
    assert [(i["amount"], i["status"]) for i in body["invoices"]] == [("60000", "issued"), ("40000", "issued")]
    agreement_id = body["id"]
    one = await (await operator_client.get(f"/api/v1/agreements/{agreement_id}")).get_json()
    assert one == body
    listed = await (await operator_client.get(f"/api/v1/agreements?status=current&contract_id={customer_client.contract_id}")).get_json()  # type: ignore[attr-defined]
    assert [a["id"] for a in listed["items"]] == [agreement_id]
    assert (await (await operator_client.get("/api/v1/agreements?status=broken")).get_json())["items"] == []

    booklet = await operator_client.get(f"/api/v1/agreements/{agreement_id}/booklet.pdf")

    assert booklet.status_code == 200 and booklet.content_type == "application/pdf"
    pdf = await booklet.get_data()
    scanned = []
    page = 1
    while len(scanned) < len(amounts) and page <= len(amounts):
        scanned += [r.bytes.decode("ascii") for r in decode(pdf_page_png(pdf, tmp_path / str(page), page=page))]
        page += 1
    # One decodable barcode per instalment, each its own coupon's.
    assert sorted(scanned) == sorted(i["barcode"]["element_string"] for i in body["instalments"])

    cancelled = await operator_client.post(f"/api/v1/agreements/{agreement_id}/cancel")
    assert cancelled.status_code == 200
    assert (await cancelled.get_json())["status"] == "cancelled"
    assert (await operator_client.post(f"/api/v1/agreements/{agreement_id}/cancel")).status_code == 409


async def test_customers_sign_and_see_only_their_own(
    app: Quart, admin_client: ApiClient, customer_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    mine = customer_client.contract_id  # type: ignore[attr-defined]
    await owing_contract(session, mine, 50000)
    other = await make_customer(session, tenant, name="Beatriz Otra")
    theirs = await make_contract(session, other)
    theirs_id = theirs.id
    other_user = await make_customer_user(session, other)
    await session.commit()
    await owing_contract(session, theirs_id, 30000)
    b = ApiClient(app)
    assert (await b.login(other_user.email)).status_code == 200
    terms = {"contract_id": mine, "instalment_count": 3, "down_payment": "5000"}

    disabled = await customer_client.post("/api/v1/agreements", json=terms)
    assert disabled.status_code == 403
    assert (await disabled.get_json())["code"] == "self_service_disabled"
    patched = await admin_client.patch("/api/v1/tenant", json={
        "agreement_self_service": True, "agreement_max_instalments": 6, "agreement_min_down_payment_percent": "10",
    })
    assert patched.status_code == 200
    settings = await patched.get_json()
    assert (settings["agreement_self_service"], settings["agreement_max_instalments"], settings["agreement_min_down_payment_percent"],
            settings["agreement_monthly_rate"], settings["agreement_missed_to_break"]) == (True, 6, "10", "0", 2)

    too_many = await customer_client.post("/api/v1/agreements", json={**terms, "instalment_count": 7})
    too_little = await customer_client.post("/api/v1/agreements", json={**terms, "down_payment": "4999"})
    with_rate = await customer_client.post("/api/v1/agreements", json={**terms, "monthly_rate": "0"})
    for_b = await customer_client.post("/api/v1/agreements", json={**terms, "contract_id": theirs_id})
    signed = await customer_client.post("/api/v1/agreements", json=terms)

    assert [(r.status_code, (await r.get_json())["code"]) for r in (too_many, too_little, with_rate, for_b)] == [
        (422, "too_many_instalments"), (422, "down_payment_too_small"), (422, "rate_not_allowed"), (404, "contract_not_found"),
    ]
    assert signed.status_code == 201
    agreement_id = (await signed.get_json())["id"]
    assert (await customer_client.get(f"/api/v1/agreements/{agreement_id}")).status_code == 200
    assert (await customer_client.get(f"/api/v1/agreements/{agreement_id}/booklet.pdf")).status_code == 200
    # Customer B sees nothing of A's, and cannot cancel anything.
    assert (await b.get(f"/api/v1/agreements/{agreement_id}")).status_code == 404
    assert (await b.get(f"/api/v1/agreements/{agreement_id}/booklet.pdf")).status_code == 404
    assert (await (await b.get(f"/api/v1/agreements?customer_id={customer_client.customer_id}")).get_json())["items"] == []  # type: ignore[attr-defined]
    assert [a["id"] for a in (await (await customer_client.get("/api/v1/agreements")).get_json())["items"]] == [agreement_id]
    assert (await b.post(f"/api/v1/agreements/{agreement_id}/cancel")).status_code == 403
    # A's invoice is no longer offered for payment on its own.
    lookup = await (await customer_client.post("/api/v1/coupons", json={"contract_number": customer_client.contract_number})).get_json()  # type: ignore[attr-defined]
    assert lookup["code"] == "nothing_due"

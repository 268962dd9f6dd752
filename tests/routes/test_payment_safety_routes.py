"""Issue 11, findings 2 and 6 through the served routes: no money booked to a voided invoice, and quick-pay
never cancels the customer's coupon."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import collection_controller
from models.base_model import utcnow
from models.billing_model import Invoice
from models.notification_model import Notification
from models.payment_model import CreditBalance, Payment, PaymentAllocation
from models.tenant_model import Tenant
from tests.conftest import TEST_PASSWORD, ApiClient
from tests.factories import make_customer_user
from tests.payment_builders import Debtor, coupon_status, fresh, make_debtor

DUE = date(2099, 1, 15)
VOID = {"reason": "Lectura mal tomada"}


@pytest.fixture
async def debtor(session: AsyncSession, tenant: Tenant) -> Debtor:
    return await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)


@pytest.fixture
async def customer_client(app: Quart, session: AsyncSession, debtor: Debtor) -> ApiClient:
    user = await make_customer_user(session, debtor.customer)
    await session.commit()
    api = ApiClient(app)
    assert (await api.login(user.email, TEST_PASSWORD)).status_code == 200
    return api


async def json_of(response: Any) -> Any:
    return await response.get_json()


async def new_coupon(client: ApiClient, debtor: Debtor) -> dict[str, Any]:
    response = await client.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await json_of(response)


async def pay(client: ApiClient, reference: str, token: str = "tok_approved", key: str = "key-1") -> Any:
    return await client.post(
        "/api/v1/payments", json={"coupon_reference": reference, "card_token": token}, headers={"Idempotency-Key": key}
    )


async def settle(app: Quart, client: ApiClient, session: AsyncSession, payment_id: int, deliveries: int = 1) -> list[dict[str, Any]]:
    """Deliver the gateway's signed approval of a pending payment `deliveries` times (a retrying gateway)."""
    payment = await fresh(session, Payment, payment_id)
    gateway = app.extensions["cuponera"].payment_gateway
    answers = []
    for _ in range(deliveries):
        # Each delivery is signed anew, as a gateway retrying later would.
        body, headers = gateway.settlement_webhook(
            gateway_reference=payment.gateway_reference, merchant_reference=str(payment_id), status="approved"  # type: ignore[attr-defined]
        )
        response = await client.raw.post("/api/v1/payments/webhook", data=body, headers=headers)
        assert response.status_code == 200
        answers.append(await json_of(response))
    return answers


async def reread(session: AsyncSession, model: type, ident: int) -> Any:
    await session.rollback()  # end the read snapshot of earlier checks
    return await fresh(session, model, ident)


async def credits(session: AsyncSession) -> list[SimpleNamespace]:
    """The stored credit balances as plain values (they outlive the session's next rollback)."""
    await session.rollback()
    rows = await session.execute(select(CreditBalance.__table__).order_by(CreditBalance.id))
    return [SimpleNamespace(**row) for row in rows.mappings().all()]


async def test_voiding_an_invoice_whose_card_payment_is_pending_is_409_and_changes_nothing(
    app: Quart, client: ApiClient, operator_client: ApiClient, debtor: Debtor, session: AsyncSession
) -> None:
    reference = (await new_coupon(client, debtor))["reference"]
    pending = await json_of(await pay(client, reference, "tok_pending"))
    assert pending["status"] == "pending"
    invoice_id = debtor.invoices[0].id

    refused = await operator_client.post(f"/api/v1/invoices/{invoice_id}/void", json=VOID)
    assert refused.status_code == 409
    assert refused.content_type == "application/problem+json"
    assert (await json_of(refused))["code"] == "payment_pending"
    invoice = await reread(session, Invoice, invoice_id)
    assert (invoice.status, invoice.amount_due, invoice.void_reason, invoice.voided_at) == ("issued", Decimal(85000), None, None)
    assert await coupon_status(session, reference) == "processing"
    voided_notes = await session.scalar(select(func.count()).select_from(Notification).where(Notification.event == "invoice_voided"))
    assert voided_notes == 0

    # The approval then pays both invoices as the payer meant; the invoice is no longer voidable.
    [answer] = await settle(app, client, session, pending["id"])
    assert (answer["status"], answer["applied"]) == ("approved", True)
    invoice = await reread(session, Invoice, invoice_id)
    assert (invoice.status, invoice.amount_due) == ("paid", Decimal(0))
    assert await credits(session) == []
    again = await operator_client.post(f"/api/v1/invoices/{invoice_id}/void", json=VOID)
    assert again.status_code == 409 and (await json_of(again))["code"] == "invalid_transition"


async def test_voiding_cancels_the_invoices_active_coupon(
    client: ApiClient, operator_client: ApiClient, debtor: Debtor, session: AsyncSession
) -> None:
    reference = (await new_coupon(client, debtor))["reference"]
    voided = await operator_client.post(f"/api/v1/invoices/{debtor.invoices[0].id}/void", json=VOID)
    assert voided.status_code == 200 and (await json_of(voided))["status"] == "void"
    assert await coupon_status(session, reference) == "cancelled"
    refused = await pay(client, reference)
    assert refused.status_code == 410 and (await json_of(refused))["code"] == "coupon_cancelled"
    await session.rollback()
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_an_approval_after_a_void_is_held_as_one_credit_balance_under_replays(
    app: Quart,
    client: ApiClient,
    operator_client: ApiClient,
    customer_client: ApiClient,
    debtor: Debtor,
    session: AsyncSession,
) -> None:
    voided_id, other_id = debtor.invoices[0].id, debtor.invoices[1].id
    numbers = [i.number for i in debtor.invoices]
    contract_id, contract_number, customer_id = debtor.contract.id, debtor.contract.contract_number, debtor.customer.id
    reference = (await new_coupon(client, debtor))["reference"]
    pending = await json_of(await pay(client, reference, "tok_pending"))
    # The guard is bypassed as a race past it would: the invoice is voided straight in the database.
    await session.execute(
        update(Invoice).where(Invoice.id == voided_id).values(status="void", amount_due=0, voided_at=utcnow(), void_reason="x")
    )
    await session.commit()

    answers = await settle(app, client, session, pending["id"], deliveries=3)
    assert [(a["status"], a["applied"]) for a in answers] == [("approved", True), ("approved", False), ("approved", False)]

    voided = await reread(session, Invoice, voided_id)
    assert (voided.status, voided.amount_due, voided.paid_at) == ("void", Decimal(0), None)
    other = await reread(session, Invoice, other_id)
    assert (other.status, other.amount_due) == ("paid", Decimal(0))
    allocations = (
        await session.execute(
            select(PaymentAllocation.kind, PaymentAllocation.invoice_id, PaymentAllocation.amount).where(
                PaymentAllocation.payment_id == pending["id"]
            )
        )
    ).all()
    assert [tuple(a) for a in allocations] == [("invoice", other_id, Decimal(12000))]
    [credit] = await credits(session)
    assert (credit.status, credit.reason, credit.amount, credit.currency) == ("open", "invoice_void", Decimal(85000), "COP")
    assert (credit.payment_id, credit.invoice_id, credit.contract_id, credit.customer_id) == (
        pending["id"], voided_id, contract_id, customer_id,
    )
    # Every peso of the payment is accounted for: allocated or held.
    assert sum(amount for _, _, amount in allocations) + credit.amount == Decimal(97000)

    listed = await operator_client.get("/api/v1/payments/exceptions?status=open")
    assert listed.status_code == 200
    page = await json_of(listed)
    assert page["next_cursor"] is None
    [item] = page["items"]
    assert {k: item[k] for k in ("status", "reason", "amount", "currency", "payment_id", "invoice_id", "coupon_reference")} == {
        "status": "open", "reason": "invoice_void", "amount": "85000", "currency": "COP",
        "payment_id": pending["id"], "invoice_id": voided_id, "coupon_reference": reference,
    }
    assert (item["contract_number"], item["invoice_number"]) == (contract_number, numbers[0])
    by_contract = await json_of(await operator_client.get(f"/api/v1/payments/exceptions?contract_number={contract_number}"))
    assert [i["id"] for i in by_contract["items"]] == [item["id"]]
    assert (await json_of(await operator_client.get("/api/v1/payments/exceptions?status=reversed")))["items"] == []

    detail = await json_of(await operator_client.get(f"/api/v1/payments/{pending['id']}"))
    assert {line["number"]: (line["allocated"], line["credited"]) for line in detail["invoices"]} == {
        numbers[0]: (None, "85000"),
        numbers[1]: ("12000", None),
    }
    assert (await client.get("/api/v1/payments/exceptions")).status_code == 401
    assert (await customer_client.get("/api/v1/payments/exceptions")).status_code == 403


async def test_a_reversed_payment_takes_its_credit_balance_with_it(
    app: Quart, client: ApiClient, admin_client: ApiClient, debtor: Debtor, session: AsyncSession
) -> None:
    voided_id = debtor.invoices[0].id
    reference = (await new_coupon(client, debtor))["reference"]
    pending = await json_of(await pay(client, reference, "tok_pending"))
    await session.execute(update(Invoice).where(Invoice.id == voided_id).values(status="void", amount_due=0))
    await session.commit()
    await settle(app, client, session, pending["id"])
    reversed_ = await admin_client.post(f"/api/v1/payments/{pending['id']}/reversal", json={"reason": "contracargo"})
    assert reversed_.status_code == 200
    [credit] = await credits(session)
    assert credit.status == "reversed" and credit.closed_at is not None
    voided = await reread(session, Invoice, voided_id)
    assert voided.status == "void"
    listed = await json_of(await admin_client.get("/api/v1/payments/exceptions?status=reversed"))
    assert [i["id"] for i in listed["items"]] == [credit.id]


async def test_quick_pay_leaves_the_customers_coupon_payable_and_a_second_channel_becomes_credit(
    app: Quart, client: ApiClient, customer_client: ApiClient, debtor: Debtor, session: AsyncSession, tenant: Tenant
) -> None:
    expected = sorted((i.id, i.total, "invoice_paid") for i in debtor.invoices)
    _key, raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Popular")
    mine = (await new_coupon(customer_client, debtor))["reference"]
    quick = (await new_coupon(client, debtor))["reference"]
    assert quick != mine
    assert await coupon_status(session, mine) == "active"
    # Quick-pay again for the same invoices: the same anonymous coupon, nothing new.
    assert (await new_coupon(client, debtor))["reference"] == quick
    await session.rollback()
    emails = (await session.scalars(select(Notification.payload).where(Notification.event == "coupon_created"))).all()
    assert sorted(p["created_by"] for p in emails) == ["anonymous", "customer"]

    # The anonymous payer's card payment hangs at the gateway; the customer pays at a bank meanwhile.
    pending = await json_of(await pay(client, quick, "tok_pending"))
    collected = await client.post(
        "/api/v1/collections",
        json={"reference": mine, "amount": "97000", "paid_at": utcnow().isoformat()},
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert collected.status_code == 201, await collected.get_data(as_text=True)
    await session.rollback()
    assert await coupon_status(session, mine) == "paid"

    # The card approval arrives late: both invoices are paid already, so its money is held, once.
    await settle(app, client, session, pending["id"], deliveries=2)
    held = await credits(session)
    assert sorted((c.invoice_id, c.amount, c.reason) for c in held) == expected
    late = await session.scalar(
        select(func.count()).select_from(PaymentAllocation).where(PaymentAllocation.payment_id == pending["id"])
    )
    assert late == 0

"""Refunds through the served app (hypercorn on loopback): a coupon paid twice through two channels leaves a
credit balance, which refunds pay out exactly once, also under 20 simultaneous calls."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, true, update

from app import create_app
from controllers import collection_controller, coupon_controller, note_controller
from domain.caller import Caller
from models.payment_model import CreditBalance, LedgerEntry, Payment, Refund
from models.tenant_model import Tenant
from tests.conftest import TEST_PASSWORD, TestDatabase, app_config, make_user
from tests.payment_builders import make_debtor
from tests.routes.test_payment_concurrency import Served, sql
from tests.served_app import served_in_process

CONCURRENT = 20


@pytest.fixture(name="served")
async def served_app(database_url: str, test_database: TestDatabase, tmp_path: Path) -> AsyncIterator[Served]:
    """The app served by hypercorn on a free loopback port, as the payment concurrency tests serve it."""
    application = create_app(app_config(database_url, test_database, tmp_path, RATE_LIMIT_ENABLED=False))
    async with served_in_process(application) as base_url:
        yield Served(app=application, base_url=base_url)


@dataclass
class DoublePaid:
    """A contract whose one invoice was paid at a bank and by card: the card money is a credit balance."""

    contract_id: int
    contract_number: str
    invoice_id: int
    card_payment_id: int
    credit_id: int


async def default_tenant(session: Any) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.is_default == true()))
    assert tenant is not None
    return tenant


async def double_paid(served: Served, http: httpx.AsyncClient, amount: str = "85000") -> DoublePaid:
    """Quick-pay by card hangs at the gateway while the customer's own coupon is collected at a bank; the
    card's late approval finds the invoice paid and is held as a credit balance."""
    async with sql(served).session_scope(write=True) as session:
        tenant = await default_tenant(session)
        debtor = await make_debtor(session, tenant, amounts=(amount,), due_on=date(2099, 1, 15))
        staff = await coupon_controller.create_coupon(
            session=session, tenant=tenant, caller=Caller(role="operator"), contract_number=debtor.contract.contract_number
        )
        _key, raw_key = await collection_controller.create_bank_key(session=session, tenant=tenant, name=f"Banco {uuid.uuid4().hex[:6]}")
        staff_reference = staff.coupon.reference
        contract_id, contract_number, invoice_id = debtor.contract.id, debtor.contract.contract_number, debtor.invoices[0].id
    quick = await http.post("/api/v1/coupons", json={"contract_number": contract_number})
    assert quick.status_code == 201, quick.text
    pending = await http.post(
        "/api/v1/payments", json={"coupon_reference": quick.json()["reference"], "card_token": "tok_pending"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert pending.status_code == 201 and pending.json()["status"] == "pending", pending.text
    collected = await http.post(
        "/api/v1/collections", json={"reference": staff_reference, "amount": amount, "paid_at": "2026-11-10T10:00:00-05:00"},
        headers={"Authorization": f"Bearer {raw_key}"},
    )
    assert collected.status_code == 201, collected.text
    payment_id = pending.json()["id"]
    async with sql(served).session_scope() as session:
        gateway_reference = await session.scalar(select(Payment.gateway_reference).where(Payment.id == payment_id))
    body, headers = served.app.extensions["cuponera"].payment_gateway.settlement_webhook(
        gateway_reference=gateway_reference, merchant_reference=str(payment_id), status="approved"
    )
    settled = await http.post("/api/v1/payments/webhook", content=body, headers=headers)
    assert settled.status_code == 200, settled.text
    async with sql(served).session_scope() as session:
        credit = (await session.execute(select(CreditBalance).where(CreditBalance.payment_id == payment_id))).scalar_one()
        assert (credit.amount, credit.reason, credit.status) == (Decimal(amount), "invoice_paid", "open")
        return DoublePaid(contract_id, contract_number, invoice_id, payment_id, credit.id)


async def admin_session(served: Served, http: httpx.AsyncClient) -> dict[str, str]:
    """Log an admin in on `http` (cookie) and return the CSRF header its unsafe requests send."""
    admin = await make_user(served.app, role="admin")
    login = await http.post("/api/v1/auth/login", json={"email": admin.email, "password": TEST_PASSWORD})
    assert login.status_code == 200, login.text
    return {"X-CSRF-Token": login.json()["csrf_token"]}


def http_for(served: Served) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=served.base_url, timeout=60, limits=httpx.Limits(max_connections=CONCURRENT * 2))


async def refund(http: httpx.AsyncClient, csrf: dict[str, str], key: str, **body: Any) -> httpx.Response:
    return await http.post("/api/v1/refunds", json=body, headers={**csrf, "Idempotency-Key": key})


async def test_a_double_payment_is_refunded_once_under_twenty_simultaneous_calls(served: Served) -> None:
    async with http_for(served) as http:
        paid = await double_paid(served, http)
        csrf = await admin_session(served, http)
        first = {"credit_balance_id": paid.credit_id, "amount": "5000", "method": "gateway", "reason": "Pago doble"}
        # 20 retries of one request (same key): one refund, every answer the same.
        same_key = str(uuid.uuid4())
        answers = await asyncio.gather(*(refund(http, csrf, same_key, **first) for _ in range(CONCURRENT)))
        assert Counter(r.status_code for r in answers) == {201: CONCURRENT}, [r.text for r in answers if r.status_code != 201]
        assert len({r.json()["id"] for r in answers}) == 1
        assert Counter(r.headers["Idempotent-Replayed"] for r in answers)["false"] == 1
        made = answers[0].json()
        assert (made["status"], made["amount"], made["method"]) == ("paid", "5000", "gateway")
        assert made["gateway_reference"].startswith("sbx_rf_")
        # 20 different requests for the rest: one takes it, the others find nothing left.
        rest = {**first, "amount": "80000"}
        races = await asyncio.gather(*(refund(http, csrf, str(uuid.uuid4()), **rest) for _ in range(CONCURRENT)))
        statuses = Counter(r.status_code for r in races)
        assert statuses == {201: 1, 409: CONCURRENT - 1}, statuses
        assert {r.json()["code"] for r in races if r.status_code == 409} <= {"credit_balance_exhausted", "credit_balance_closed"}
        # Nothing is left: even a small refund is refused.
        late = await refund(http, csrf, str(uuid.uuid4()), **{**first, "amount": "1"})
        assert late.status_code == 409 and late.json()["code"] == "credit_balance_closed"
        listed = await http.get(f"/api/v1/refunds?credit_balance_id={paid.credit_id}")
        assert listed.status_code == 200
        assert sorted(i["amount"] for i in listed.json()["items"]) == ["5000", "80000"]

    async with sql(served).session_scope() as session:
        refunds = (await session.execute(select(Refund.amount, Refund.status).where(Refund.credit_balance_id == paid.credit_id))).all()
        assert sorted(refunds) == [(Decimal(5000), "paid"), (Decimal(80000), "paid")]
        credit = await session.get_one(CreditBalance, paid.credit_id)
        assert (credit.used_amount, credit.status) == (Decimal(85000), "used")
        entries = (
            await session.execute(
                select(LedgerEntry.amount, LedgerEntry.coupon_id).where(
                    LedgerEntry.kind == "refund_paid", LedgerEntry.credit_balance_id == paid.credit_id
                )
            )
        ).all()
        assert sorted(entries) == [(Decimal(5000), None), (Decimal(80000), None)]


async def test_a_bank_transfer_refund_is_pending_until_marked_paid_once(served: Served) -> None:
    async with http_for(served) as http:
        paid = await double_paid(served, http, amount="12000")
        csrf = await admin_session(served, http)
        body = {"credit_balance_id": paid.credit_id, "amount": "7000", "method": "bank_transfer", "reason": "Devolución"}
        key = str(uuid.uuid4())
        made = await refund(http, csrf, key, **body)
        assert made.status_code == 201, made.text
        assert (made.json()["status"], made.json()["contract_number"]) == ("pending", paid.contract_number)
        # The same key with another body is a 422; above what is left is a 409 naming what is.
        reused = await refund(http, csrf, key, **{**body, "amount": "6000"})
        assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
        over = await refund(http, csrf, str(uuid.uuid4()), **{**body, "amount": "5001"})
        assert over.status_code == 409 and over.json()["code"] == "credit_balance_exhausted"
        assert over.json()["refundable"] == "5000"
        refund_id = made.json()["id"]
        marked = await http.post(f"/api/v1/refunds/{refund_id}/mark-paid", json={"transfer_reference": "TRF-0001"}, headers=csrf)
        assert marked.status_code == 200, marked.text
        assert (marked.json()["status"], marked.json()["transfer_reference"]) == ("paid", "TRF-0001")
        again = await http.post(f"/api/v1/refunds/{refund_id}/mark-paid", json={"transfer_reference": "TRF-0002"}, headers=csrf)
        assert again.status_code == 409 and again.json()["code"] == "refund_not_pending"
        listed = await http.get("/api/v1/payments/exceptions?status=open")
        [held] = [i for i in listed.json()["items"] if i["id"] == paid.credit_id]
        assert (held["amount"], held["used_amount"], held["open_amount"]) == ("12000", "7000", "5000")
        pending_only = await http.get("/api/v1/refunds?status=pending")
        assert refund_id not in [i["id"] for i in pending_only.json()["items"]]
        # The refunded money cannot go back a second time with a reversal of its payment.
        reversal = await http.post(f"/api/v1/payments/{paid.card_payment_id}/reversal", json={"reason": "contracargo"}, headers=csrf)
        assert reversal.status_code == 409 and reversal.json()["code"] == "credit_balance_used"

    async with sql(served).session_scope() as session:
        credit = await session.get_one(CreditBalance, paid.credit_id)
        assert (credit.used_amount, credit.status) == (Decimal(7000), "open")
        assert await session.scalar(select(Payment.status).where(Payment.id == paid.card_payment_id)) == "approved"
        entries = (await session.scalars(select(LedgerEntry.amount).where(LedgerEntry.refund_id == refund_id))).all()
        assert entries == [Decimal(7000)]


async def test_a_credit_from_a_note_goes_back_by_transfer_and_operators_may_not_refund(served: Served) -> None:
    async with http_for(served) as http:
        paid = await double_paid(served, http, amount="30000")
        async with sql(served).session_scope(write=True) as session:
            tenant = await default_tenant(session)
            view = await note_controller.issue_note(
                session=session, tenant=tenant, caller=Caller(role="operator"), invoice_id=paid.invoice_id, kind="credit",
                amount=Decimal(4000), reason="Reclamo por lectura",
            )
            note_credit = view.credit_balance_id
        assert note_credit is not None
        csrf = await admin_session(served, http)
        body = {"credit_balance_id": note_credit, "amount": "4000", "method": "gateway", "reason": "Devolución"}
        by_card = await refund(http, csrf, str(uuid.uuid4()), **body)
        assert by_card.status_code == 422 and by_card.json()["code"] == "gateway_refund_unavailable"
        missing = await refund(http, csrf, str(uuid.uuid4()), **{**body, "credit_balance_id": 999999})
        assert missing.status_code == 404
        no_key = await http.post("/api/v1/refunds", json=body, headers=csrf)
        assert no_key.status_code == 400 and no_key.json()["code"] == "idempotency_key_required"
    async with http_for(served) as other:
        operator = await make_user(served.app, role="operator")
        login = await other.post("/api/v1/auth/login", json={"email": operator.email, "password": TEST_PASSWORD})
        headers = {"X-CSRF-Token": login.json()["csrf_token"], "Idempotency-Key": str(uuid.uuid4())}
        forbidden = await other.post("/api/v1/refunds", json={**body, "method": "bank_transfer"}, headers=headers)
        assert forbidden.status_code == 403
    async with sql(served).session_scope() as session:
        assert await session.scalar(select(func.count()).select_from(Refund)) == 0


async def test_a_refund_the_gateway_declines_is_failed_and_the_money_stays_on_the_credit(served: Served) -> None:
    async with http_for(served) as http:
        paid = await double_paid(served, http, amount="15000")
        async with sql(served).session_scope(write=True) as session:
            # A charge the sandbox did not make (say, taken before a gateway migration): it declines its refund.
            await session.execute(update(Payment).where(Payment.id == paid.card_payment_id).values(gateway_reference="ext_0001"))
            await session.commit()
        csrf = await admin_session(served, http)
        body = {"credit_balance_id": paid.credit_id, "amount": "15000", "method": "gateway", "reason": "Pago doble"}
        declined = await refund(http, csrf, str(uuid.uuid4()), **body)
        assert declined.status_code == 201, declined.text
        assert (declined.json()["status"], declined.json()["decline_code"]) == ("failed", "refund_not_possible")
        by_transfer = await refund(http, csrf, str(uuid.uuid4()), **{**body, "method": "bank_transfer"})
        assert by_transfer.status_code == 201 and by_transfer.json()["status"] == "pending"
    async with sql(served).session_scope() as session:
        credit = await session.get_one(CreditBalance, paid.credit_id)
        assert (credit.used_amount, credit.status) == (Decimal(15000), "used")
        assert await session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "refund_paid")) == 0

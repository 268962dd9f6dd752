"""Exactly once under real concurrency: a served app (hypercorn on loopback) hit by simultaneous payments and collections."""

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
from quart import Quart
from sqlalchemy import func, select, true

from app import create_app
from controllers import collection_controller, coupon_controller
from controllers.coupon_controller import Caller
from models.billing_model import Invoice
from models.payment_model import Coupon, Payment, PaymentAllocation
from models.tenant_model import Tenant
from tests.conftest import TestDatabase, app_config
from tests.payment_builders import make_debtor
from tests.served_app import served_in_process

ATTEMPTS = 50
RACES = 10


@dataclass
class Served:
    """A running app and its base URL."""

    app: Quart
    base_url: str


@pytest.fixture
async def served(database_url: str, test_database: TestDatabase, tmp_path: Path) -> AsyncIterator[Served]:
    """The app served by hypercorn on a free loopback port, on this test's database."""
    application = create_app(app_config(database_url, test_database, tmp_path, RATE_LIMIT_ENABLED=False))
    async with served_in_process(application) as base_url:
        yield Served(app=application, base_url=base_url)


def sql(served: Served) -> Any:
    return served.app.extensions["cuponera"].sql


async def coupon_for_new_debtor(served: Served, amounts: tuple[str, ...] = ("85000", "12000")) -> tuple[str, list[int]]:
    async with sql(served).session_scope(write=True) as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.is_default == true()))
        assert tenant is not None
        debtor = await make_debtor(session, tenant, amounts=amounts, due_on=date(2099, 1, 15))
        invoice_ids = [i.id for i in debtor.invoices]
        view = await coupon_controller.create_coupon(
            session=session, tenant=tenant, caller=Caller(role="operator"), contract_number=debtor.contract.contract_number
        )
        return view.coupon.reference, invoice_ids


async def pay(client: httpx.AsyncClient, reference: str) -> httpx.Response:
    return await client.post(
        "/api/v1/payments",
        json={"coupon_reference": reference, "card_token": "tok_approved"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


def http_client(served: Served) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=served.base_url, timeout=60, limits=httpx.Limits(max_connections=ATTEMPTS * 2))


async def test_fifty_simultaneous_payments_give_exactly_one_approval(served: Served) -> None:
    reference, invoice_ids = await coupon_for_new_debtor(served)
    async with http_client(served) as client:
        responses = await asyncio.gather(*(pay(client, reference) for _ in range(ATTEMPTS)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1, statuses
    assert statuses[409] == ATTEMPTS - 1, statuses
    approved = [r.json() for r in responses if r.status_code == 201]
    assert approved[0]["status"] == "approved" and approved[0]["amount"] == "97000"
    codes = Counter(r.json()["code"] for r in responses if r.status_code == 409)
    assert set(codes) <= {"already_paid", "payment_in_progress"}, codes

    async with sql(served).session_scope() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 1
        invoices = (await session.scalars(select(Invoice).where(Invoice.id.in_(invoice_ids)))).all()
        assert {(i.status, i.amount_due) for i in invoices} == {("paid", Decimal(0))}
        allocated = await session.scalar(
            select(func.sum(PaymentAllocation.amount)).where(PaymentAllocation.payment_id == approved[0]["id"])
        )
        assert allocated == Decimal(97000)
        assert await session.scalar(select(Coupon.status).where(Coupon.reference == reference)) == "paid"


async def test_a_collection_racing_an_online_payment_applies_once(served: Served) -> None:
    async with sql(served).session_scope(write=True) as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.is_default == true()))
        assert tenant is not None
        _key, raw_key = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Racer")
    coupons = [await coupon_for_new_debtor(served, ("50000",)) for _ in range(RACES)]

    async def collect(client: httpx.AsyncClient, reference: str) -> httpx.Response:
        return await client.post(
            "/api/v1/collections",
            json={"reference": reference, "amount": "50000", "paid_at": "2026-11-10T10:00:00-05:00"},
            headers={"Authorization": f"Bearer {raw_key}"},
        )

    async with http_client(served) as client:
        races = [asyncio.gather(pay(client, ref), collect(client, ref)) for ref, _ in coupons]
        results = await asyncio.gather(*races)
    for (online, bank), (reference, _) in zip(results, coupons, strict=True):
        assert sorted([online.status_code, bank.status_code]) == [201, 409], (reference, online.text, bank.text)
        loser = online if online.status_code == 409 else bank
        assert loser.json()["code"] in {"already_paid", "payment_in_progress"}
    async with sql(served).session_scope() as session:
        per_coupon = (
            await session.execute(
                select(Payment.coupon_id, func.count()).where(Payment.status == "approved").group_by(Payment.coupon_id)
            )
        ).all()
        assert len(per_coupon) == RACES and {count for _, count in per_coupon} == {1}
        paid = await session.scalar(select(func.count()).select_from(Invoice).where(Invoice.status == "paid"))
        assert paid == RACES

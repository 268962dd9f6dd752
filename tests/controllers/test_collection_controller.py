"""Bank collections: API keys, applying a collection once, mismatches, duplicates and expiry at the counter."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import SandboxGateway
from controllers import collection_controller, payment_controller
from controllers.errors import AuthenticationFailed, Conflict, DomainError, DomainValidationError, Gone, NotFound
from domain.caller import Caller
from models.billing_model import Invoice
from models.payment_model import BankApiKey, CollectionReceipt, Coupon, LedgerEntry, Payment, PaymentAllocation
from models.tenant_model import Tenant
from tests.payment_builders import BEFORE_DUE, coupon_status, fresh, make_coupon, make_debtor


async def bank_key(session: AsyncSession, tenant: Tenant) -> BankApiKey:
    key, _raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco de Bogotá")
    return key


async def collect(session: AsyncSession, tenant: Tenant, key: BankApiKey, reference: str, amount: str, paid_at: object = None, now: object = None) -> collection_controller.CollectionOutcome:
    try:
        return await collection_controller.record_collection(
            session=session, bank_key=key, reference=reference, amount=Decimal(amount),
            paid_at=paid_at or BEFORE_DUE, now=now or BEFORE_DUE + timedelta(hours=1),  # type: ignore[arg-type]
        )
    except DomainError:
        await session.refresh(tenant)
        await session.refresh(key)
        raise


async def test_bank_keys_are_stored_hashed_and_authenticate(session: AsyncSession, tenant: Tenant) -> None:
    key, raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Bancolombia")
    assert raw.startswith("cbk_") and len(raw) > 40
    assert key.key_hash == collection_controller.hash_api_key(raw) and raw not in key.key_hash
    assert key.key_prefix == raw[:12]
    found = await collection_controller.authenticate_bank(session=session, authorization=f"Bearer {raw}")
    assert found.id == key.id
    for header in (None, "", raw, f"Basic {raw}", "Bearer cbk_wrong", f"Bearer {raw}x"):
        with pytest.raises(AuthenticationFailed) as err:
            await collection_controller.authenticate_bank(session=session, authorization=header)
        assert err.value.code == "invalid_api_key"
    await session.execute(update(BankApiKey).where(BankApiKey.id == key.id).values(revoked_at=BEFORE_DUE))
    await session.commit()
    with pytest.raises(AuthenticationFailed):
        await collection_controller.authenticate_bank(session=session, authorization=f"Bearer {raw}")


async def test_a_collection_pays_the_coupon_once(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    reference = (await make_coupon(session, tenant, debtor)).coupon.reference
    key = await bank_key(session, tenant)
    first = await collect(session, tenant, key, reference, "85000")
    assert first.created and first.currency == "COP"
    assert first.receipt.paid_at == BEFORE_DUE
    assert await coupon_status(session, reference) == "paid"
    invoice = await fresh(session, Invoice, debtor.invoices[0].id)
    assert (invoice.status, invoice.paid_at) == ("paid", BEFORE_DUE)  # type: ignore[attr-defined]
    payment = await fresh(session, Payment, first.receipt.payment_id)
    assert (payment.channel, payment.status, payment.bank_api_key_id) == ("bank", "approved", key.id)  # type: ignore[attr-defined]
    again = await collect(session, tenant, key, reference, "85000")
    assert not again.created and again.receipt.id == first.receipt.id
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1
    assert await session.scalar(select(func.count()).select_from(PaymentAllocation)) == 1
    kinds = (await session.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.id))).all()
    assert list(kinds) == ["coupon_created", "payment_approved"]


async def test_amount_mismatch_is_422(session: AsyncSession, tenant: Tenant) -> None:
    reference = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon.reference
    key = await bank_key(session, tenant)
    with pytest.raises(DomainValidationError) as err:
        await collect(session, tenant, key, reference, "84999")
    assert err.value.code == "amount_mismatch"
    assert err.value.errors[0].field == "amount"
    assert await coupon_status(session, reference) == "active"


async def test_a_coupon_paid_online_is_409_already_paid(session: AsyncSession, tenant: Tenant) -> None:
    reference = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon.reference
    await payment_controller.pay_coupon(
        session=session, tenant=tenant, caller=Caller(), gateway=SandboxGateway(webhook_secret="s"),
        coupon_reference=reference, card_token="tok_approved", idempotency_key="k", now=BEFORE_DUE,
    )
    key = await bank_key(session, tenant)
    with pytest.raises(Conflict) as err:
        await collect(session, tenant, key, reference, "85000")
    assert err.value.code == "already_paid"
    assert await session.scalar(select(func.count()).select_from(CollectionReceipt)) == 0


async def test_paid_at_the_counter_before_expiry_counts_after_the_sweep(session: AsyncSession, tenant: Tenant) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    reference, expires_at, coupon_id = coupon.reference, coupon.expires_at, coupon.id
    await session.execute(update(Coupon).where(Coupon.id == coupon_id).values(status="expired"))
    await session.commit()
    key = await bank_key(session, tenant)
    late_report = expires_at + timedelta(hours=20)
    with pytest.raises(Gone) as err:
        await collect(session, tenant, key, reference, "85000", paid_at=expires_at + timedelta(minutes=1), now=late_report)
    assert err.value.code == "coupon_expired"
    outcome = await collect(session, tenant, key, reference, "85000", paid_at=expires_at - timedelta(hours=1), now=late_report)
    assert outcome.created
    assert await coupon_status(session, reference) == "paid"


async def test_unknown_reference_and_future_paid_at_are_refused(session: AsyncSession, tenant: Tenant) -> None:
    reference = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon.reference
    key = await bank_key(session, tenant)
    with pytest.raises(NotFound) as missing:
        await collect(session, tenant, key, "12345678903", "85000")
    assert missing.value.code == "coupon_not_found"
    with pytest.raises(DomainValidationError) as future:
        await collect(session, tenant, key, reference, "85000", paid_at=BEFORE_DUE + timedelta(hours=2), now=BEFORE_DUE)
    assert future.value.code == "paid_at_in_future"


async def test_a_bank_key_only_sees_its_own_tenant(session: AsyncSession, tenant: Tenant) -> None:
    reference = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon.reference
    other = Tenant(code="sur", name="Eléctrica Sur", country="CL", currency="CLP", timezone="America/Santiago", gln="7809998000014")
    session.add(other)
    await session.commit()
    key = await bank_key(session, other)
    with pytest.raises(NotFound):
        await collect(session, tenant, key, reference, "85000")

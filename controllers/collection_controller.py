"""Bank collections: per-tenant API keys, and coupons reported paid at a bank counter, applied once per reference."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.coupon_controller import UNPAID_STATUSES, create_coupon, find_coupon, invoice_payable_amount
from controllers.errors import AuthenticationFailed, Conflict, DomainValidationError, FieldError, Gone, NotFound
from controllers.payment_controller import claim_coupon, settle_approved
from domain.caller import Caller
from domain.money import round_money
from models.base_model import utcnow
from models.billing_model import Invoice
from models.payment_model import BankApiKey, CollectionReceipt, Coupon, Payment
from models.tenant_model import Tenant

KEY_PREFIX = "cbk_"
# Bank and server clocks drift; a paid_at slightly ahead of ours is not a lie.
CLOCK_SKEW = timedelta(minutes=5)
# Staff visibility: a bank sees every coupon of its tenant.
_BANK = Caller(role="operator")


@dataclass(frozen=True)
class CollectionOutcome:
    """The receipt of a collection, its currency, and whether this report created it (False for a repeat)."""

    receipt: CollectionReceipt
    currency: str
    created: bool


def hash_api_key(raw_key: str) -> str:
    """SHA-256 hex of an API key; keys are long random strings, so a fast hash is enough."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


async def create_bank_key(*, session: AsyncSession, tenant: Tenant, name: str) -> tuple[BankApiKey, str]:
    """Create a bank API key; the raw key is returned once and only its hash is stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise DomainValidationError("A key needs a name of 1 to 100 characters.", errors=[FieldError("name", "1 to 100 characters", "invalid")])
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    key = BankApiKey(tenant_id=tenant.id, name=name, key_prefix=raw_key[:12], key_hash=hash_api_key(raw_key), created_at=utcnow())
    session.add(key)
    await session.commit()
    return key, raw_key


async def authenticate_bank(*, session: AsyncSession, authorization: str | None) -> BankApiKey:
    """The bank key named by an `Authorization: Bearer <key>` header; a 401 problem otherwise."""
    scheme, _, raw_key = (authorization or "").partition(" ")
    raw_key = raw_key.strip()
    key = None
    if scheme.lower() == "bearer" and raw_key.startswith(KEY_PREFIX):
        key = await session.scalar(select(BankApiKey).where(BankApiKey.key_hash == hash_api_key(raw_key)))
    if key is None or key.revoked_at is not None:
        raise AuthenticationFailed("Send a valid bank API key as `Authorization: Bearer <key>`.", code="invalid_api_key")
    return key


async def list_bank_keys(*, session: AsyncSession, tenant: Tenant) -> list[BankApiKey]:
    """The tenant's bank keys, newest first, revoked ones included (their prefix, never the key)."""
    return list((await session.scalars(select(BankApiKey).where(BankApiKey.tenant_id == tenant.id).order_by(BankApiKey.id.desc()))).all())


async def revoke_bank_key(*, session: AsyncSession, tenant: Tenant, key_id: int, now: datetime | None = None) -> BankApiKey:
    """Revoke one of the tenant's keys, once (conditional UPDATE); the bank's next request with it is a 401."""
    key = await session.scalar(select(BankApiKey).where(BankApiKey.id == key_id, BankApiKey.tenant_id == tenant.id))
    if key is None:
        raise NotFound("No such bank key.", code="bank_key_not_found")
    revoked = await session.execute(
        update(BankApiKey)
        .where(BankApiKey.id == key.id, BankApiKey.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if revoked.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict("This bank key is already revoked.", code="bank_key_revoked")
    await session.commit()
    await session.refresh(key)
    return key


async def _receipt(session: AsyncSession, tenant_id: int, reference: str) -> CollectionOutcome | None:
    row = (
        await session.execute(
            select(CollectionReceipt, Payment.currency)
            .join(Payment, Payment.id == CollectionReceipt.payment_id)
            .where(CollectionReceipt.tenant_id == tenant_id, CollectionReceipt.reference == reference)
        )
    ).first()
    return None if row is None else CollectionOutcome(receipt=row[0], currency=row[1], created=False)


def _same_report(first: CollectionOutcome, amount: Decimal) -> CollectionOutcome:
    """A repeat gets the first receipt only when it reports the same amount; otherwise a 409 to look into."""
    if first.receipt.amount != amount:
        raise Conflict(
            f"This reference was already collected for {first.receipt.amount} {first.currency}; "
            "a repeat with another amount is not the same report.",
            code="collection_conflict",
        )
    return first


def _amount_mismatch(expected: Decimal, currency: str) -> DomainValidationError:
    expected = round_money(expected, currency)  # 97000 COP, not 97000.00 as stored
    return DomainValidationError(
        f"The reference is for {expected} {currency}; a collection pays it in full.",
        code="amount_mismatch",
        errors=[FieldError("amount", f"must be {expected}", "amount_mismatch")],
    )


async def invoice_coupon(
    session: AsyncSession, tenant: Tenant, invoice: Invoice, amount: Decimal, now: datetime, *, cashier: Caller | None = None
) -> Coupon:
    """A new coupon for exactly the invoice a bank (or an office `cashier`) collected; commits (`create_coupon` does).

    So claiming, settling and allocating stay the coupon path's; the amount is checked first, so a
    wrong report leaves the customer's own coupons untouched.
    """
    expected = invoice_payable_amount(tenant, invoice)
    if invoice.status in UNPAID_STATUSES and amount != expected:
        raise _amount_mismatch(expected, invoice.currency)
    view = await create_coupon(
        session=session, tenant=tenant, caller=cashier or _BANK, invoice_ids=[invoice.id], now=now, announce=False,
        creator_kind=None if cashier else "bank",
    )
    return view.coupon


async def payable_coupon(
    session: AsyncSession, tenant_id: int, reference: str, amount: Decimal, now: datetime, *, cashier: Caller | None = None
) -> Coupon:
    """The coupon a reference pays: a coupon's own, or a new one for exactly the invoice whose reference it is."""
    try:
        return await find_coupon(session=session, tenant_id=tenant_id, caller=cashier or _BANK, reference=reference)
    except NotFound:
        invoice_id = await session.scalar(
            select(Invoice.id).where(Invoice.tenant_id == tenant_id, Invoice.payment_reference == reference).order_by(Invoice.id).limit(1)
        )
        if invoice_id is None:
            raise
    tenant = await session.get_one(Tenant, tenant_id)
    invoice = await session.get_one(Invoice, invoice_id)
    return await invoice_coupon(session, tenant, invoice, amount, now, cashier=cashier)


def check_amount(coupon: Coupon, amount: Decimal) -> None:
    """A collection pays its coupon in full: any other amount is a 422 `amount_mismatch`."""
    if amount != coupon.amount:
        raise _amount_mismatch(coupon.amount, coupon.currency)


def check_paid_at(paid_at: datetime, now: datetime) -> None:
    """A collection paid after now (beyond the clocks' drift) is a 422."""
    if paid_at > now + CLOCK_SKEW:
        raise DomainValidationError(
            "paid_at is in the future.", code="paid_at_in_future", errors=[FieldError("paid_at", "is in the future", "paid_at_in_future")]
        )


def payment_values(
    coupon: Coupon, *, bank_key_id: int | None, now: datetime, channel: str = "bank", user_id: int | None = None, office: str | None = None
) -> dict[str, Any]:
    """The pending payment of a collected coupon (by a bank, or in `cash` at an office): it pays the coupon in full."""
    return {
        "tenant_id": coupon.tenant_id,
        "coupon_id": coupon.id,
        "customer_id": coupon.customer_id,
        "channel": channel,
        "status": "pending",
        "amount": coupon.amount,
        "currency": coupon.currency,
        "bank_api_key_id": bank_key_id,
        "user_id": user_id,
        "office": office,
        "created_at": now,
    }


async def settle_collected(session: AsyncSession, values: dict[str, Any], *, now: datetime, paid_at: datetime) -> Payment:
    """Open the payment of a claimed coupon (`payment_values`) and settle it approved, in the caller's transaction."""
    payment = Payment(**values)
    session.add(payment)
    await session.flush()
    await settle_approved(session=session, payment_id=payment.id, now=now, paid_at=paid_at)
    return payment


async def record_collection(
    *,
    session: AsyncSession,
    bank_key: BankApiKey,
    reference: str,
    amount: Decimal,
    paid_at: datetime,
    now: datetime | None = None,
) -> CollectionOutcome:
    """Apply a bank's report that a coupon was paid; a repeated report of the same reference returns the first receipt."""
    now = now or utcnow()
    # Stored and answered in UTC, so a repeated report gets exactly the first receipt back.
    paid_at = paid_at.astimezone(UTC)
    tenant_id, bank_key_id = bank_key.tenant_id, bank_key.id
    existing = await _receipt(session, tenant_id, reference)
    if existing is not None:
        return _same_report(existing, amount)
    check_paid_at(paid_at, now)
    coupon = await payable_coupon(session, tenant_id, reference, amount, now)
    check_amount(coupon, amount)
    try:
        # Paid at the counter before expiry counts, even when the report comes after the expiry sweep.
        await claim_coupon(session=session, coupon=coupon, now=now, accept_expired_before=paid_at)
    except (Conflict, Gone):
        repeated = await _receipt(session, tenant_id, reference)
        if repeated is not None:  # the same report, delivered twice at once, won the claim
            return _same_report(repeated, amount)
        raise
    payment = await settle_collected(session, payment_values(coupon, bank_key_id=bank_key_id, now=now), now=now, paid_at=paid_at)
    receipt = CollectionReceipt(
        tenant_id=tenant_id,
        bank_api_key_id=bank_key_id,
        # The reference the bank reported (a coupon's or an invoice's own), so its repeat finds this receipt.
        reference=reference,
        amount=amount,
        paid_at=paid_at,
        payment_id=payment.id,
        received_at=now,
    )
    session.add(receipt)
    await session.commit()
    return CollectionOutcome(receipt=receipt, currency=coupon.currency, created=True)

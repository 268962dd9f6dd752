"""Card payments exactly once: Idempotency-Key replay, the coupon claim, gateway settlement, webhooks and reversals.

Carried balances: an invoice carried into a later one (`invoices.carried_into_invoice_id`) is paid
through that later invoice. Settling a payment also marks `paid` every invoice carried into the
invoices it pays, transitively, without allocation rows (the carrying invoice's allocation already
covers them); reversing it puts them back to `overdue` with `amount_due` = their total, still carried.
A carried invoice is never paid on its own (coupons and claims refuse it, and the bill run does not
carry an invoice whose payment is in flight), so the paid invoices carried into a payment's invoices
are exactly the ones that payment settled: reversal derives them, nothing else is stored. Payments
always pay a coupon in full, and a coupon holds each invoice's whole `amount_due`, which for an open
invoice is always its total; so restoring the total is exact.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import PaymentGateway, verify_webhook
from clients.sql_client import retry_unit_of_work
from controllers import agreement_controller, service_order_controller, transaction_controller
from controllers.account_common import tenant_today
from controllers.coupon_controller import UNPAID_STATUSES, find_coupon
from controllers.errors import (
    AuthenticationFailed,
    BadInput,
    Conflict,
    DomainError,
    DomainValidationError,
    FieldError,
    Gone,
    NotFound,
)
from controllers.outbox_controller import (
    MESSAGE_CUSTOMERS,
    chunks,
    customer_message,
    enqueue,
    enqueue_many,
    message_to_customer,
)
from domain.caller import Caller
from domain.money import round_money
from models.account_model import Contract, Customer
from models.base_model import utcnow
from models.billing_model import Invoice
from models.payment_model import Coupon, CouponInvoice, CreditBalance, IdempotencyKey, Payment, PaymentAllocation
from models.tenant_model import Tenant

log = logging.getLogger(__name__)

# The key column's width; the route documents the same limit from here.
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class PaymentSnapshot:
    """A payment as it stood when its request completed: what the idempotency record keeps and a replay returns."""

    id: int
    status: str
    amount: Decimal
    currency: str
    coupon_reference: str
    created_at: datetime
    channel: str
    decline_code: str | None
    settled_at: datetime | None
    reversed_at: datetime | None
    reversal_reason: str | None
    # The office that took a cash payment (None for the other channels, and in records older than cash).
    office: str | None = None

    @classmethod
    def of(cls, payment: Payment, coupon_reference: str) -> PaymentSnapshot:
        """The snapshot of a loaded payment, its amount at the currency's minor unit."""
        return cls(
            id=payment.id,
            status=payment.status,
            amount=round_money(payment.amount, payment.currency),
            currency=payment.currency,
            coupon_reference=coupon_reference,
            created_at=payment.created_at,
            channel=payment.channel,
            decline_code=payment.decline_code,
            settled_at=payment.settled_at,
            reversed_at=payment.reversed_at,
            reversal_reason=payment.reversal_reason,
            office=payment.office,
        )

    def to_record(self) -> dict[str, Any]:
        """JSON values for the idempotency record (amount as a string, times in ISO 8601), exact both ways."""
        return {
            name: value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, Decimal) else value
            for name, value in asdict(self).items()
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PaymentSnapshot:
        """The snapshot a stored record holds (the inverse of `to_record`)."""
        values = dict(record)
        values["amount"] = Decimal(values["amount"])
        for name in _RECORD_TIMES:
            if values[name] is not None:
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


_RECORD_TIMES = ("created_at", "settled_at", "reversed_at")


@dataclass(frozen=True)
class PaymentResult:
    """What a payment request produced: the payment, and whether this was a replay of the first request."""

    payment: PaymentSnapshot
    replayed: bool = False


@dataclass(frozen=True)
class WebhookOutcome:
    """What a settlement webhook did: the payment, its status now, and whether this delivery changed it."""

    payment_id: int
    status: str
    applied: bool


def body_fingerprint(body: Mapping[str, Any]) -> str:
    """SHA-256 of a canonical request body (JSON values), to tell a replay from a reused key."""
    canonical = json.dumps(dict(body), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_fingerprint(coupon_reference: str, card_token: str) -> str:
    """The fingerprint of a card payment's body."""
    return body_fingerprint({"card_token": card_token, "coupon_reference": coupon_reference})


def _check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise BadInput("Send an Idempotency-Key header (a UUID is a good choice).", code="idempotency_key_required")
    key = key.strip()
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise BadInput(
            f"The Idempotency-Key must be printable ASCII of at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
            code="idempotency_key_invalid",
        )
    return key


# Built once per process: every card payment looks its key up first.
_STORED_KEY = (
    select(IdempotencyKey)
    .where(
        IdempotencyKey.tenant_id == bindparam("tenant_id"),
        IdempotencyKey.scope == bindparam("scope"),
        IdempotencyKey.key == bindparam("key"),
    )
    .execution_options(populate_existing=True)
)


async def _stored_key(session: AsyncSession, tenant_id: int, scope: str, key: str) -> IdempotencyKey | None:
    return await session.scalar(_STORED_KEY, {"tenant_id": tenant_id, "scope": scope, "key": key})


def _replay(stored: IdempotencyKey, fingerprint: str) -> PaymentResult:
    if stored.request_hash != fingerprint:
        raise DomainValidationError(
            "This Idempotency-Key was used with a different request; use a new key for a new payment.",
            code="idempotency_key_reused",
            errors=[FieldError("Idempotency-Key", "already used with another body", "idempotency_key_reused")],
        )
    if stored.status != "completed" or stored.response_body is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.", code="payment_in_progress")
    return PaymentResult(PaymentSnapshot.from_record(stored.response_body), replayed=True)


@dataclass(frozen=True)
class IdempotentRequest:
    """A payment request under an Idempotency-Key: the key (checked), its caller's scope and the body's fingerprint."""

    tenant_id: int
    scope: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, *, tenant_id: int, caller: Caller, idempotency_key: str | None, fingerprint: str) -> IdempotentRequest:
        """The request, once its key is known to be usable (400 problems otherwise)."""
        return cls(tenant_id, caller.idempotency_scope, _check_key(idempotency_key), fingerprint)

    async def replay(self, session: AsyncSession) -> PaymentResult | None:
        """The first request's result when this key was used before (or a 409/422 why not); None for a new key."""
        stored = await _stored_key(session, self.tenant_id, self.scope, self.key)
        return None if stored is None else _replay(stored, self.fingerprint)

    async def begin(self, session: AsyncSession, now: datetime) -> int | PaymentResult:
        """Remember the key (in progress) in the caller's open transaction and return its row id.

        When a concurrent request with the same key got there first, the transaction is rolled
        back and that request's result (or why not) is returned instead.
        """
        key_row = IdempotencyKey(
            tenant_id=self.tenant_id, scope=self.scope, key=self.key, request_hash=self.fingerprint, status="in_progress", created_at=now
        )
        session.add(key_row)
        try:
            await session.flush()
        except IntegrityError:
            await session.rollback()
            replayed = await self.replay(session)
            if replayed is None:
                raise
            return replayed
        return key_row.id


async def complete_idempotent_request(session: AsyncSession, key_id: int, snapshot: PaymentSnapshot, now: datetime) -> None:
    """Store the response a key's replays return (in the caller's transaction; does not commit)."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(status="completed", payment_id=snapshot.id, response_body=snapshot.to_record(), completed_at=now)
        .execution_options(synchronize_session=False)
    )


def _refusal_of(status: str, expires_at: datetime, paid_at: datetime) -> DomainError:
    """Why a coupon in this state could not be claimed for a payment made at `paid_at`."""
    if status == "paid":
        return Conflict("This coupon is already paid.", code="already_paid")
    if status == "expired" or (status == "active" and expires_at <= paid_at):
        return Gone("This coupon has expired; create a new one.", code="coupon_expired")
    if status == "cancelled":
        return Gone("This coupon was cancelled (a newer coupon replaced it, or its payment was reversed).", code="coupon_cancelled")
    return Conflict("A payment for this coupon is in progress.", code="payment_in_progress")


async def _refusal(session: AsyncSession, coupon_id: int, paid_at: datetime) -> DomainError:
    """Why a coupon could not be claimed for a payment made at `paid_at`, read fresh after the failed UPDATE."""
    status, expires_at = (await session.execute(select(Coupon.status, Coupon.expires_at).where(Coupon.id == coupon_id))).one()
    return _refusal_of(status, expires_at, paid_at)


# Of some coupons, those with an invoice voided, paid elsewhere, carried or frozen since they were made
# (built once per process: every claim runs it).
_CHANGED_COUPONS = (
    select(CouponInvoice.coupon_id)
    .join(Invoice, Invoice.id == CouponInvoice.invoice_id)
    .where(
        CouponInvoice.coupon_id.in_(bindparam("coupon_ids", expanding=True)),
        or_(
            Invoice.status.not_in(UNPAID_STATUSES),
            Invoice.carried_into_invoice_id.is_not(None),
            # Frozen by a payment agreement since: paid through its instalments only.
            Invoice.agreement_id.is_not(None),
        ),
    )
    .distinct()
)


async def _changed_coupons(session: AsyncSession, coupon_ids: Sequence[int]) -> set[int]:
    """The coupons (of these) with an invoice voided, paid elsewhere or carried into a later invoice since they were made."""
    return set((await session.scalars(_CHANGED_COUPONS, {"coupon_ids": list(coupon_ids)})).all())


async def _cancel_changed_coupons(session: AsyncSession, coupon_ids: Sequence[int], now: datetime) -> None:
    """An invoice was voided, paid elsewhere or carried into a later invoice since the coupon was made: it cannot be paid."""
    await session.execute(
        update(Coupon)
        .where(Coupon.id.in_(list(coupon_ids)), Coupon.status.in_(("active", "processing")))
        .values(status="cancelled", cancelled_at=now, cancel_reason="invoice_changed")
        .execution_options(synchronize_session=False)
    )


def _claimable(now: Any, accept_expired_before: datetime | None) -> Any:
    """The claim's condition: active and unexpired, or for a bank collection, not yet expired when paid at the counter."""
    if accept_expired_before is None:
        return (Coupon.status == "active") & (Coupon.expires_at > now)
    return Coupon.status.in_(("active", "expired")) & (Coupon.expires_at >= accept_expired_before)


def _changed_coupon() -> Gone:
    return Gone(
        "An invoice on this coupon changed (voided, paid, or carried into a later invoice); create a new coupon.",
        code="coupon_cancelled",
    )


# The card payment's claim (`_claimable` without a counter date), built once per process.
_CLAIM = (
    update(Coupon)
    .where(Coupon.id == bindparam("coupon_id"), _claimable(bindparam("claimed_at"), None))
    .values(status="processing")
    .execution_options(synchronize_session=False)
)


async def claim_coupon(
    *, session: AsyncSession, coupon: Coupon, now: datetime, accept_expired_before: datetime | None = None
) -> None:
    """Move the coupon active → processing with one conditional UPDATE; every loser gets the reason as an error.

    `accept_expired_before` lets a bank collection paid at the counter before expiry through even
    when the report arrives after the expiry sweep.
    """
    coupon_id = coupon.id
    if accept_expired_before is None:
        result = await session.execute(_CLAIM, {"coupon_id": coupon_id, "claimed_at": now})
    else:
        result = await session.execute(
            update(Coupon)
            .where(Coupon.id == coupon_id, _claimable(now, accept_expired_before))
            .values(status="processing")
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise await _refusal(session, coupon_id, accept_expired_before or now)
    if await _changed_coupons(session, [coupon_id]):
        await session.rollback()
        await _cancel_changed_coupons(session, [coupon_id], now)
        await session.commit()
        raise _changed_coupon()


async def claim_coupons_many(
    *, session: AsyncSession, coupon_ids: Sequence[int], now: datetime, accept_expired_before: datetime
) -> dict[int, DomainError]:
    """`claim_coupon` for many bank collections paid at `accept_expired_before`, set-based, in the caller's transaction.

    Claims what it can and returns the refusal of each coupon it could not claim; a coupon whose
    invoice changed is cancelled (`invoice_changed`) and refused, as `claim_coupon` does. Neither
    commits nor rolls back.
    """
    refused: dict[int, DomainError] = {}
    for chunk in chunks(sorted(set(coupon_ids))):
        claimed = set(
            (
                await session.scalars(
                    update(Coupon)
                    .where(Coupon.id.in_(chunk), _claimable(now, accept_expired_before))
                    .values(status="processing")
                    .returning(Coupon.id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
        )
        losers = [coupon_id for coupon_id in chunk if coupon_id not in claimed]
        if losers:
            rows = await session.execute(select(Coupon.id, Coupon.status, Coupon.expires_at).where(Coupon.id.in_(losers)))
            refused.update({coupon_id: _refusal_of(status, expires_at, accept_expired_before) for coupon_id, status, expires_at in rows.all()})
        changed = await _changed_coupons(session, sorted(claimed)) if claimed else set()
        if changed:
            await _cancel_changed_coupons(session, sorted(changed), now)
            refused.update({coupon_id: _changed_coupon() for coupon_id in changed})
    return refused


async def pay_coupon(
    *,
    session: AsyncSession,
    tenant: Tenant,
    caller: Caller,
    gateway: PaymentGateway,
    coupon_reference: str,
    card_token: str,
    idempotency_key: str | None,
    now: datetime | None = None,
) -> PaymentResult:
    """Pay a coupon by card exactly once; the same Idempotency-Key and body replay the first result."""
    request = IdempotentRequest.of(
        tenant_id=tenant.id, caller=caller, idempotency_key=idempotency_key, fingerprint=request_fingerprint(coupon_reference, card_token)
    )
    replayed = await request.replay(session)
    if replayed is not None:
        return replayed
    now = now or utcnow()

    # Transaction 1: remember the key, claim the coupon and open a pending payment.
    key_id = await request.begin(session, now)
    if isinstance(key_id, PaymentResult):
        return key_id
    try:
        coupon = await find_coupon(session=session, tenant_id=tenant.id, caller=caller, reference=coupon_reference)
    except NotFound:
        await session.rollback()
        raise
    # A refused claim rolls back, taking the key with it: refusals are not stored, so a retry re-checks.
    await claim_coupon(session=session, coupon=coupon, now=now)
    payment = Payment(
        tenant_id=tenant.id,
        coupon_id=coupon.id,
        customer_id=coupon.customer_id,
        channel="card",
        status="pending",
        amount=coupon.amount,
        currency=coupon.currency,
        user_id=caller.user_id,
        created_at=now,
    )
    session.add(payment)
    await session.flush()
    payment_id, amount, currency, reference = payment.id, coupon.amount, coupon.currency, coupon.reference
    await session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id).values(payment_id=payment_id))
    # Commit before calling the gateway, so no database lock is held while the card is charged.
    await session.commit()

    try:
        result = await gateway.charge(
            amount=round_money(amount, currency), currency=currency, card_token=card_token, merchant_reference=str(payment_id)
        )
        status, gateway_reference, decline_code = result.status, result.gateway_reference, result.decline_code
    except Exception:
        # The outcome is unknown; the payment stays pending and the gateway's webhook settles it.
        log.exception("payment gateway failed for payment %s", payment_id)
        status, gateway_reference, decline_code = "pending", None, None

    # Transaction 2: apply the outcome and store the response for replays. It is retried on its own
    # when it is a deadlock victim (or meets a transient Azure SQL error): the card was charged once
    # above and is never charged again; the settlement is conditional on the payment being pending.
    settled_at = utcnow()

    async def apply_outcome() -> PaymentSnapshot:
        if status == "approved":
            await settle_approved(
                session=session, payment_id=payment_id, now=settled_at, gateway_reference=gateway_reference, tenant=tenant
            )
        elif status == "declined":
            await settle_declined(
                session=session, payment_id=payment_id, now=settled_at, gateway_reference=gateway_reference, decline_code=decline_code
            )
        elif gateway_reference is not None:
            await session.execute(
                update(Payment)
                .where(Payment.id == payment_id, Payment.gateway_reference.is_(None))
                .values(gateway_reference=gateway_reference)
                .execution_options(synchronize_session=False)
            )
        current = await _load_payment(session, payment_id)
        # The snapshot, not the row, is what replays return: later changes (a reversal) do not alter them.
        snapshot = PaymentSnapshot.of(current, reference)
        await complete_idempotent_request(session, key_id, snapshot, settled_at)
        await session.commit()
        return snapshot

    return PaymentResult(await retry_unit_of_work(apply_outcome, rollback=session.rollback))


async def _load_payment(session: AsyncSession, payment_id: int) -> Payment:
    payment = await session.scalar(select(Payment).where(Payment.id == payment_id).execution_options(populate_existing=True))
    assert payment is not None
    return payment


async def settle_approved(
    *,
    session: AsyncSession,
    payment_id: int,
    now: datetime,
    gateway_reference: str | None = None,
    paid_at: datetime | None = None,
    tenant: Tenant | None = None,
) -> bool:
    """Apply an approval once (payment pending → approved): coupon paid, invoices paid, allocations, ledger, outbox.

    An invoice on the coupon that can no longer be paid (voided, paid through another channel, or
    carried into a later invoice since the claim) gets no allocation: its share becomes an open
    credit balance on its contract, which operators list as a payment exception.
    Runs inside the caller's transaction and does not commit. False when the payment was no longer
    pending (a replayed webhook, or the other settlement path got there first).
    """
    values: dict[str, Any] = {"status": "approved", "settled_at": now}
    if gateway_reference is not None:
        values["gateway_reference"] = gateway_reference
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await _apply_approvals(session, {payment_id: paid_at or now}, now, tenant)
    return True


async def settle_approved_many(*, session: AsyncSession, paid_at_by_payment: Mapping[int, datetime], now: datetime) -> None:
    """`settle_approved` for many payments at once, set-based (a bank collection file): IN lists, executemany.

    For payments the caller created `pending` in its own, uncommitted transaction, so no other
    settlement path can see them; their coupons must be claimed (`processing`). Does not commit.
    """
    for chunk in chunks(sorted(paid_at_by_payment)):
        result = await session.execute(
            update(Payment)
            .where(Payment.id.in_(chunk), Payment.status == "pending")
            .values(status="approved", settled_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != len(chunk):  # type: ignore[attr-defined]
            raise RuntimeError("settle_approved_many takes only payments pending in the caller's transaction")
        await _apply_approvals(session, {payment_id: paid_at_by_payment[payment_id] for payment_id in chunk}, now)


def _by_paid_at(paid_at_by_id: Mapping[int, datetime]) -> dict[datetime, list[int]]:
    groups: dict[datetime, list[int]] = {}
    for row_id, paid_at in paid_at_by_id.items():
        groups.setdefault(paid_at, []).append(row_id)
    return groups


# The settlement's statements, built once per process (their cache keys are computed once, not per
# payment); the lists are expanding parameters, each at most an IN list's worth (`chunks`).
_APPROVED_PAYMENTS = (
    select(Payment.id, Payment.tenant_id, Payment.customer_id, Payment.coupon_id, Payment.amount, Payment.currency,
           Coupon.reference, Coupon.channel_fee)
    .join(Coupon, Coupon.id == Payment.coupon_id)
    .where(Payment.id.in_(bindparam("payment_ids", expanding=True)))
    .order_by(Payment.id)
)
_COUPONS_PAID = (
    update(Coupon)
    .where(Coupon.id.in_(bindparam("coupon_ids", expanding=True)), Coupon.status == "processing")
    .values(status="paid", paid_at=bindparam("paid_at_value"))
    .execution_options(synchronize_session=False)
)
_COUPON_LINES = (
    select(CouponInvoice.coupon_id, CouponInvoice.invoice_id, CouponInvoice.amount, Invoice.number, Invoice.period,
           Contract.contract_number)
    .join(Invoice, Invoice.id == CouponInvoice.invoice_id)
    .join(Contract, Contract.id == Invoice.contract_id)
    .where(CouponInvoice.coupon_id.in_(bindparam("coupon_ids", expanding=True)))
    .order_by(CouponInvoice.coupon_id, Invoice.id)
)
# Conditional and read back, so an invoice voided, paid or carried meanwhile is never paid (nor allocated)
# silently; the contracts come back too, for the carried balances and the service orders.
_INVOICES_PAID = (
    update(Invoice)
    .where(
        Invoice.id.in_(bindparam("invoice_ids", expanding=True)),
        Invoice.status.in_(UNPAID_STATUSES),
        Invoice.carried_into_invoice_id.is_(None),
    )
    .values(status="paid", paid_at=bindparam("paid_at_value"), amount_due=Decimal(0))
    .returning(Invoice.id, Invoice.contract_id)
    .execution_options(synchronize_session=False)
)


async def _apply_approvals(
    session: AsyncSession, paid_at_by_payment: Mapping[int, datetime], now: datetime, tenant: Tenant | None = None
) -> None:
    """What an approval does, for payments just approved: coupons and invoices paid, allocations, ledger, outbox.

    Set-based over the payments given (at most an IN list's worth), grouped by their `paid_at`.
    `tenant`, when the caller has it, is the payments' tenant (not read again).
    """
    payments = (await session.execute(_APPROVED_PAYMENTS, {"payment_ids": list(paid_at_by_payment)})).all()
    paid_at_by_coupon = {p.coupon_id: paid_at_by_payment[p.id] for p in payments}
    for paid_at, coupon_ids in _by_paid_at(paid_at_by_coupon).items():
        moved = await session.execute(_COUPONS_PAID, {"coupon_ids": coupon_ids, "paid_at_value": paid_at})
        if moved.rowcount != len(coupon_ids):  # type: ignore[attr-defined]
            # The money is taken either way; record it and let an operator look at the coupon.
            stray = (await session.execute(select(Coupon.id, Coupon.status).where(Coupon.id.in_(coupon_ids), Coupon.status != "paid"))).all()
            for coupon_id, status in stray:
                log.error("coupon %s was %s when its payment was approved", coupon_id, status)
    lines = (await session.execute(_COUPON_LINES, {"coupon_ids": list(paid_at_by_coupon)})).all()
    paid_at_by_invoice = {line.invoice_id: paid_at_by_coupon[line.coupon_id] for line in lines}
    paid_invoices: set[int] = set()
    paid_contracts: set[int] = set()
    settled_at: list[tuple[list[int], list[int], datetime]] = []
    for paid_at, invoice_ids in _by_paid_at(paid_at_by_invoice).items():
        for invoice_chunk in chunks(invoice_ids):
            moved = {
                invoice_id: contract_id
                for invoice_id, contract_id in await session.execute(_INVOICES_PAID, {"invoice_ids": invoice_chunk, "paid_at_value": paid_at})
            }
            paid_now = sorted(moved)
            paid_invoices.update(paid_now)
            paid_contracts.update(moved.values())
            if paid_now:
                settled_at.append((paid_now, sorted(set(moved.values())), paid_at))
    payment_of_coupon = {p.coupon_id: p for p in payments}
    contracts_of_coupon: dict[int, set[str]] = {}
    paid_lines: dict[int, list[Any]] = {}
    for line in lines:
        contracts_of_coupon.setdefault(line.coupon_id, set()).add(line.contract_number)
        if line.invoice_id in paid_invoices:
            paid_lines.setdefault(line.coupon_id, []).append(line)
        else:
            await _credit_unpayable(session, payment_of_coupon[line.coupon_id], line.invoice_id, line.amount, now)
    # After the credits, which read each unpaid invoice's state: settling the invoices a paid one carried
    # must not make a carried invoice on this coupon look paid by someone else.
    for paid_now, contract_ids, paid_at in settled_at:
        await _settle_carried(session, paid_now, paid_at, contract_ids=contract_ids)
    # Suspension and reconnection: a contract whose arrears are now paid gets its reconnection order.
    await service_order_controller.after_contracts_paid(session=session, contract_ids=sorted(paid_contracts), now=now)
    # A payment agreement's instalment coupons hold no invoices (`agreement_controller` makes them with
    # `add_coupon` alone), so only coupons without lines can be one: the instalment, maybe the whole agreement.
    instalment_coupons = {coupon_id: paid_at for coupon_id, paid_at in paid_at_by_coupon.items() if coupon_id not in contracts_of_coupon}
    if instalment_coupons:
        await agreement_controller.after_coupons_paid(session=session, paid_at_by_coupon=instalment_coupons, now=now)
    allocations = []
    for p in payments:
        allocations += [
            {"tenant_id": p.tenant_id, "payment_id": p.id, "invoice_id": line.invoice_id, "kind": "invoice", "amount": line.amount}
            for line in paid_lines.get(p.coupon_id, [])
        ]
        if p.channel_fee > 0:
            allocations.append({"tenant_id": p.tenant_id, "payment_id": p.id, "invoice_id": None, "kind": "channel_fee", "amount": p.channel_fee})
    if allocations:
        await session.execute(insert(PaymentAllocation.__table__), allocations)
    await transaction_controller.record_entries(
        session=session,
        entries=[
            transaction_controller.LedgerRow(
                tenant_id=p.tenant_id, customer_id=p.customer_id, kind="payment_approved", amount=p.amount, currency=p.currency,
                reference=p.reference, coupon_id=p.coupon_id, payment_id=p.id,
                contract_numbers=sorted(contracts_of_coupon.get(p.coupon_id, ())),
            )
            for p in payments
        ],
        now=now,
    )
    tenant_ids = {p.tenant_id for p in payments}
    if tenant is not None and tenant_ids == {tenant.id}:
        tenants = {tenant.id: tenant}
    else:
        tenants = {t.id: t for t in (await session.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids)))).all()}
    customers: dict[int, Any] = {}
    for chunk in chunks(sorted({p.customer_id for p in payments})):
        customers.update((c.id, c) for c in (await session.execute(MESSAGE_CUSTOMERS, {"customer_ids": chunk})).all())
    messages = [
        customer_message(
            tenants[p.tenant_id],
            customers[p.customer_id],
            customers[p.customer_id].login_id,
            "invoice_paid",
            # Per payment, so a reversed and re-paid invoice is announced again.
            f"invoice_paid:{line.invoice_id}:{p.id}",
            {
                "invoice_id": line.invoice_id,
                "invoice_number": line.number,
                "contract_number": line.contract_number,
                "period": line.period,
                "amount_paid": str(round_money(line.amount, p.currency)),
                "paid_at": paid_at_by_payment[p.id].isoformat(),
            },
        )
        for p in payments
        for line in paid_lines.get(p.coupon_id, [])
    ]
    await enqueue_many(session=session, messages=messages)


async def _credit_unpayable(session: AsyncSession, payment: Any, invoice_id: int, amount: Decimal, now: datetime) -> None:
    """Hold an approved payment's share for an invoice that can no longer be paid as a credit balance on its contract.

    `payment` is a Payment or a row with its id, tenant_id, customer_id and currency. The invoice is
    re-read after the failed conditional UPDATE, so the reason is what stopped it.
    Exactly once: settlement runs once per payment, and (payment, invoice) is unique besides.
    """
    status, carried_into, contract_id = (
        await session.execute(
            select(Invoice.status, Invoice.carried_into_invoice_id, Invoice.contract_id)
            .where(Invoice.id == invoice_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    reason = "invoice_void" if status == "void" else "invoice_paid" if status == "paid" else "invoice_carried"
    session.add(
        CreditBalance(
            tenant_id=payment.tenant_id,
            contract_id=contract_id,
            customer_id=payment.customer_id,
            amount=amount,
            currency=payment.currency,
            status="open",
            reason=reason,
            payment_id=payment.id,
            invoice_id=invoice_id,
            created_at=now,
        )
    )
    await session.flush()
    log.warning(
        "payment %s: invoice %s is %s%s; its %s %s is held as a credit balance on contract %s",
        payment.id, invoice_id, status, " (carried)" if carried_into is not None else "", amount, payment.currency, contract_id,
    )


async def _carried_into(session: AsyncSession, invoice_ids: Sequence[int], contract_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of every invoice whose balance was carried into these ones, transitively (A into B into C).

    `contract_ids`, when the caller has them, are these invoices' contracts (not read again).
    """
    if not invoice_ids:
        return []
    # A balance is carried within its contract, so the contracts' invoices (their (contract_id, period)
    # key) are all there is to look at; there is no index on carried_into_invoice_id.
    if contract_ids is None:
        contract_ids = sorted(
            set((await session.scalars(select(Invoice.contract_id).where(Invoice.id.in_(list(invoice_ids))))).all())
        )
    found: list[int] = []
    frontier = list(invoice_ids)
    while frontier:
        frontier = list(
            (
                await session.scalars(
                    select(Invoice.id)
                    .where(Invoice.contract_id.in_(contract_ids), Invoice.carried_into_invoice_id.in_(frontier))
                    .order_by(Invoice.id)
                )
            ).all()
        )
        found += frontier
    return found


async def _settle_carried(session: AsyncSession, invoice_ids: Sequence[int], paid_at: datetime, *, contract_ids: Sequence[int]) -> None:
    """Mark paid the open invoices carried into the invoices just paid (of `contract_ids`): their balance was part of that amount."""
    carried = await _carried_into(session, invoice_ids, contract_ids)
    if carried:
        await session.execute(
            update(Invoice)
            .where(Invoice.id.in_(carried), Invoice.status.in_(UNPAID_STATUSES))
            .values(status="paid", paid_at=paid_at, amount_due=Decimal(0))
            .execution_options(synchronize_session=False)
        )


async def _reopen_carried(session: AsyncSession, invoice_ids: Sequence[int]) -> None:
    """Undo `_settle_carried` for a reversed payment: carried invoices owe their total again, still carried.

    They were past due when a run carried them, so they go back to `overdue`.
    """
    carried = await _carried_into(session, invoice_ids)
    if carried:
        await session.execute(
            update(Invoice)
            .where(Invoice.id.in_(carried), Invoice.status == "paid")
            .values(status="overdue", amount_due=Invoice.total, paid_at=None)
            .execution_options(synchronize_session=False)
        )


async def settle_declined(
    *,
    session: AsyncSession,
    payment_id: int,
    now: datetime,
    gateway_reference: str | None = None,
    decline_code: str | None = None,
) -> bool:
    """Apply a decline once: the payment is declined, the coupon is released, and a ledger entry is written."""
    values: dict[str, Any] = {"status": "declined", "settled_at": now, "decline_code": decline_code or "declined"}
    if gateway_reference is not None:
        values["gateway_reference"] = gateway_reference
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    payment = await _load_payment(session, payment_id)
    await session.execute(
        update(Coupon)
        .where(Coupon.id == payment.coupon_id, Coupon.status == "processing")
        .values(status="active")
        .execution_options(synchronize_session=False)
    )
    await _record_ledger_entry(session, payment, "payment_declined", now)
    return True


async def _record_ledger_entry(session: AsyncSession, payment: Payment, kind: str, now: datetime) -> str:
    """Append the payment's ledger entry (approved, declined or reversed); returns the coupon reference."""
    reference = await session.scalar(select(Coupon.reference).where(Coupon.id == payment.coupon_id))
    assert reference is not None
    await transaction_controller.record_entry(
        session=session,
        tenant_id=payment.tenant_id,
        customer_id=payment.customer_id,
        kind=kind,
        amount=payment.amount,
        currency=payment.currency,
        reference=reference,
        coupon_id=payment.coupon_id,
        payment_id=payment.id,
        contract_numbers=await transaction_controller.coupon_contract_numbers(session=session, coupon_id=payment.coupon_id),
        now=now,
    )
    return reference


async def handle_webhook(
    *,
    session: AsyncSession,
    secret: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    now: datetime | None = None,
) -> WebhookOutcome:
    """Verify a gateway settlement callback and apply it exactly once; replays are acknowledged without effect."""
    now = now or utcnow()
    if not verify_webhook(
        secret, timestamp_header=timestamp_header, signature_header=signature_header, body=body, now=now.timestamp()
    ):
        raise AuthenticationFailed("The webhook signature or timestamp is not valid.", code="invalid_signature")
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput("The webhook body is not valid JSON.", code="malformed_json") from exc
    status = event.get("status") if isinstance(event, dict) else None
    if status not in {"approved", "declined"}:
        raise DomainValidationError(
            "A settlement is approved or declined.", errors=[FieldError("status", "must be approved or declined", "invalid")]
        )
    payment = await _webhook_payment(session, event)
    payment_id = payment.id
    if status == "approved":
        applied = await settle_approved(
            session=session, payment_id=payment_id, now=now, gateway_reference=event.get("gateway_reference")
        )
    else:
        applied = await settle_declined(
            session=session,
            payment_id=payment_id,
            now=now,
            gateway_reference=event.get("gateway_reference"),
            decline_code=event.get("decline_code"),
        )
    await session.commit()
    current = await _load_payment(session, payment_id)
    return WebhookOutcome(payment_id=payment_id, status=current.status, applied=applied)


async def _webhook_payment(session: AsyncSession, event: dict[str, Any]) -> Payment:
    """The payment a webhook is about: by the gateway's reference, else by our own (the payment id)."""
    gateway_reference = event.get("gateway_reference")
    payment = None
    if isinstance(gateway_reference, str) and gateway_reference:
        payment = await session.scalar(select(Payment).where(Payment.gateway_reference == gateway_reference, Payment.channel == "card"))
    merchant_reference = event.get("merchant_reference")
    if payment is None and isinstance(merchant_reference, str) and merchant_reference.isdigit():
        payment = await session.scalar(select(Payment).where(Payment.id == int(merchant_reference), Payment.channel == "card"))
    if payment is None:
        raise NotFound("No payment matches this webhook.", code="payment_not_found")
    return payment


async def reverse_payment(
    *, session: AsyncSession, tenant: Tenant, admin_user_id: int, payment_id: int, reason: str, now: datetime | None = None
) -> PaymentSnapshot:
    """Reverse an approved payment once: invoices unpaid again with their amounts, coupon cancelled, ledger and outbox."""
    now = now or utcnow()
    payment = await session.scalar(
        select(Payment).where(Payment.id == payment_id, Payment.tenant_id == tenant.id).execution_options(populate_existing=True)
    )
    if payment is None:
        raise NotFound("No payment has that id.", code="payment_not_found")
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == "approved")
        .values(status="reversed", reversed_at=now, reversed_by=admin_user_id, reversal_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        current = await _load_payment(session, payment_id)
        if current.status == "reversed":
            raise Conflict("This payment is already reversed.", code="already_reversed")
        raise Conflict(f"Only an approved payment can be reversed; this one is {current.status}.", code="payment_not_approved")
    today = tenant_today(tenant, now)
    allocations = (
        await session.execute(
            select(PaymentAllocation.invoice_id, PaymentAllocation.amount, Invoice.number)
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .where(PaymentAllocation.payment_id == payment_id, PaymentAllocation.kind == "invoice")
            .order_by(Invoice.id)
        )
    ).all()
    for invoice_id, amount, _number in allocations:
        await session.execute(
            update(Invoice)
            .where(Invoice.id == invoice_id, Invoice.status == "paid")
            .values(
                status=case((Invoice.due_on < today, "overdue"), else_="issued"),
                amount_due=amount,
                paid_at=None,
            )
            .execution_options(synchronize_session=False)
        )
    await _reopen_carried(session, [invoice_id for invoice_id, _, _ in allocations])
    # Money held from this payment goes back with it.
    await session.execute(
        update(CreditBalance)
        .where(CreditBalance.payment_id == payment_id, CreditBalance.status == "open")
        .values(status="reversed", closed_at=now)
        .execution_options(synchronize_session=False)
    )
    # Money of it already refunded or applied to a later invoice cannot also go back with the payment.
    spent = await session.scalar(
        select(CreditBalance.id).where(CreditBalance.payment_id == payment_id, CreditBalance.used_amount > 0)
        .order_by(CreditBalance.id).limit(1)
    )
    if spent is not None:
        await session.rollback()
        raise Conflict(
            "Part of this payment was already refunded or applied to a later invoice as a credit balance.",
            code="credit_balance_used",
        )
    await session.execute(
        update(Coupon)
        .where(Coupon.id == payment.coupon_id, Coupon.status == "paid")
        .values(status="cancelled", cancelled_at=now, cancel_reason="reversed")
        .execution_options(synchronize_session=False)
    )
    reference = await _record_ledger_entry(session, payment, "payment_reversed", now)
    # A payment agreement's instalment is unpaid again, with a new coupon.
    await agreement_controller.after_payment_reversed(session=session, coupon_id=payment.coupon_id, now=now)
    customer = await session.get(Customer, payment.customer_id)
    assert customer is not None
    message = await message_to_customer(
        session=session,
        tenant=tenant,
        customer=customer,
        event="payment_reversed",
        dedupe_key=f"payment_reversed:{payment_id}",
        payload={
            "coupon_reference": reference,
            "amount": str(round_money(payment.amount, payment.currency)),
            "reversed_at": now.isoformat(),
            "reason": reason,
            "invoice_numbers": [number for _, _, number in allocations],
        },
    )
    await enqueue(session=session, message=message)
    await session.commit()
    return PaymentSnapshot.of(await _load_payment(session, payment_id), reference)

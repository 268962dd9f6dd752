"""Refunds of credit balances: once per Idempotency-Key, never more than the balance holds.

RULES:
1. A refund takes a positive amount (whole minor units) of one credit balance that is still `open`;
   the taking is one conditional UPDATE of `credit_balances.used_amount` that keeps it within the
   balance's `amount`, so concurrent refunds (and the bill run applying the same credit) never spend
   the same money twice. The loser gets 409 `credit_balance_exhausted` with what is still refundable.
2. The refund row carries the Idempotency-Key (unique per tenant). The same key with the same body
   returns the first refund (and finishes it if it stopped half-way); with another body it is a 422.
3. `gateway`: only for a credit that came from a card payment. The refund is committed `pending`
   first, then the gateway is asked (outside any transaction) with the refund id as its merchant
   reference; approved → `paid`; declined → `failed`, and the amount goes back to the credit balance.
4. `bank_transfer`: stays `pending` until an admin marks it paid with the transfer's reference.
5. A `refund_paid` ledger entry is written when the money leaves (paid), in that transaction. A paid
   refund is final: taking it back would be a new payment, never an edit of this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import PaymentGateway
from controllers import transaction_controller
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.pagination import Page, SortKey, paginate
from controllers.payment_controller import IdempotentRequest, body_fingerprint
from domain.caller import Caller
from domain.money import round_money
from models.account_model import Contract
from models.base_model import utcnow
from models.payment_model import CreditBalance, Payment, Refund
from models.tenant_model import Tenant


@dataclass(frozen=True)
class RefundView:
    """A refund with its contract's number."""

    refund: Refund
    contract_number: str


@dataclass(frozen=True)
class RefundOutcome:
    """A refund and whether it is the replay of an earlier request with the same key."""

    view: RefundView
    replayed: bool


def refund_fingerprint(*, credit_balance_id: int, amount: Decimal, method: str, reason: str) -> str:
    """The fingerprint of a refund request's body (amount normalised, so "5000" and "5000.00" are one)."""
    return body_fingerprint(
        {"credit_balance_id": credit_balance_id, "amount": str(amount.normalize()), "method": method, "reason": reason}
    )


def _refund_reference(refund_id: int) -> str:
    return f"RF-{refund_id:08d}"


async def get_refund(*, session: AsyncSession, tenant: Tenant, refund_id: int) -> RefundView:
    """One refund of the tenant (404 otherwise)."""
    row = (
        await session.execute(
            select(Refund, Contract.contract_number)
            .join(Contract, Contract.id == Refund.contract_id)
            .where(Refund.id == refund_id, Refund.tenant_id == tenant.id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        raise NotFound("No such refund.", code="not_found")
    return RefundView(*row)


async def _credit(session: AsyncSession, tenant: Tenant, credit_balance_id: int) -> CreditBalance:
    credit = await session.scalar(
        select(CreditBalance)
        .where(CreditBalance.id == credit_balance_id, CreditBalance.tenant_id == tenant.id)
        .execution_options(populate_existing=True)
    )
    if credit is None:
        raise NotFound("No such credit balance.", code="not_found")
    return credit


def _exhausted(credit: CreditBalance) -> Conflict:
    if credit.status != "open":
        return Conflict(f"This credit balance is {credit.status}; nothing is left to refund.", code="credit_balance_closed")
    remaining = round_money(credit.amount - credit.used_amount, credit.currency)
    return Conflict(
        f"The credit balance holds only {remaining} {credit.currency} now.",
        code="credit_balance_exhausted",
        extra={"refundable": str(remaining)},
    )


async def _replay(session: AsyncSession, tenant: Tenant, request: IdempotentRequest, gateway: PaymentGateway) -> RefundOutcome | None:
    stored = await session.scalar(
        select(Refund).where(Refund.tenant_id == tenant.id, Refund.idempotency_key == request.key)
    )
    if stored is None:
        return None
    if stored.request_hash != request.fingerprint:
        raise DomainValidationError(
            "This Idempotency-Key was used with a different request; use a new key for a new refund.",
            code="idempotency_key_reused",
            errors=[FieldError("Idempotency-Key", "already used with another body", "idempotency_key_reused")],
        )
    stored_id = stored.id
    if stored.method == "gateway" and stored.status == "pending":
        # The first request stopped after taking the money and before the gateway answered (or is still
        # waiting for it): ask again; the gateway deduplicates on the refund id, and only one answer is recorded.
        await _ask_gateway(session, gateway, stored_id, utcnow())
    return RefundOutcome(await get_refund(session=session, tenant=tenant, refund_id=stored_id), replayed=True)


async def create_refund(
    *,
    session: AsyncSession,
    tenant: Tenant,
    caller: Caller,
    gateway: PaymentGateway,
    credit_balance_id: int,
    amount: Decimal,
    method: str,
    reason: str,
    idempotency_key: str | None,
    now: datetime | None = None,
) -> RefundOutcome:
    """Refund (part of) an open credit balance once per Idempotency-Key (see the module's rules)."""
    now = now or utcnow()
    request = IdempotentRequest.of(
        tenant_id=tenant.id, caller=caller, idempotency_key=idempotency_key,
        fingerprint=refund_fingerprint(credit_balance_id=credit_balance_id, amount=amount, method=method, reason=reason),
    )
    replayed = await _replay(session, tenant, request, gateway)
    if replayed is not None:
        return replayed
    credit = await _credit(session, tenant, credit_balance_id)
    if amount <= 0 or round_money(amount, credit.currency) != amount:
        raise DomainValidationError(
            f"The amount must be positive and in whole minor units of {credit.currency}.",
            errors=[FieldError("amount", f"must be positive, in whole minor units of {credit.currency}", "invalid_amount")],
        )
    charge_reference = None
    if method == "gateway":
        charge_reference = await session.scalar(
            select(Payment.gateway_reference).where(
                Payment.id == credit.payment_id, Payment.channel == "card", Payment.gateway_reference.is_not(None)
            )
        ) if credit.payment_id is not None else None
        if charge_reference is None:
            raise DomainValidationError(
                "Only a credit that came from a card payment can be refunded through the gateway; use a bank transfer.",
                code="gateway_refund_unavailable",
                errors=[FieldError("method", "needs a credit from a card payment", "gateway_refund_unavailable")],
            )

    refund = Refund(
        tenant_id=tenant.id, credit_balance_id=credit.id, contract_id=credit.contract_id, customer_id=credit.customer_id,
        amount=amount, currency=credit.currency, method=method, status="pending", reason=reason,
        idempotency_key=request.key, request_hash=request.fingerprint, created_by=caller.user_id, created_at=now,
    )
    session.add(refund)
    try:
        # The key's unique index first: a concurrent request with the same key waits here, then replays.
        await session.flush()
    except IntegrityError:
        await session.rollback()
        replayed = await _replay(session, tenant, request, gateway)
        if replayed is None:
            raise
        return replayed
    taken = await session.execute(
        update(CreditBalance)
        .where(
            CreditBalance.id == credit.id,
            CreditBalance.status == "open",
            CreditBalance.used_amount + amount <= CreditBalance.amount,
        )
        .values(
            used_amount=CreditBalance.used_amount + amount,
            status=case((CreditBalance.used_amount + amount == CreditBalance.amount, "used"), else_="open"),
            closed_at=case((CreditBalance.used_amount + amount == CreditBalance.amount, now), else_=None),
        )
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise _exhausted(await _credit(session, tenant, credit_balance_id))
    refund_id = refund.id
    await session.commit()
    if charge_reference is not None:
        await _ask_gateway(session, gateway, refund_id, now)
    return RefundOutcome(await get_refund(session=session, tenant=tenant, refund_id=refund_id), replayed=False)


@dataclass(frozen=True)
class _Taken:
    """The refund's values the later steps need, read before a rollback expires the row."""

    id: int
    tenant_id: int
    customer_id: int
    contract_id: int
    credit_balance_id: int
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, refund: Refund) -> _Taken:
        return cls(
            refund.id, refund.tenant_id, refund.customer_id, refund.contract_id, refund.credit_balance_id,
            refund.amount, refund.currency,
        )


async def _ask_gateway(session: AsyncSession, gateway: PaymentGateway, refund_id: int, now: datetime) -> None:
    """Ask the gateway for a pending gateway refund and record the answer (paid, or failed and given back)."""
    refund = await session.scalar(select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True))
    assert refund is not None
    taken = _Taken.of(refund)
    charge_reference = await session.scalar(
        select(Payment.gateway_reference).join(CreditBalance, CreditBalance.payment_id == Payment.id).where(
            CreditBalance.id == taken.credit_balance_id
        )
    )
    await session.rollback()  # no transaction stays open across the gateway call
    answer = await gateway.refund(
        charge_reference=charge_reference or "", amount=taken.amount, currency=taken.currency,
        merchant_reference=str(taken.id),
    )
    if answer.status == "approved":
        await _mark_paid(session, taken, now, gateway_reference=answer.gateway_reference)
        return
    failed = await session.execute(
        update(Refund)
        .where(Refund.id == taken.id, Refund.status == "pending")
        .values(status="failed", decline_code=answer.decline_code)
        .execution_options(synchronize_session=False)
    )
    if failed.rowcount == 1:  # type: ignore[attr-defined]
        await session.execute(
            update(CreditBalance)
            .where(CreditBalance.id == taken.credit_balance_id)
            .values(used_amount=CreditBalance.used_amount - taken.amount, status="open", closed_at=None)
            .execution_options(synchronize_session=False)
        )
    await session.commit()


async def _mark_paid(
    session: AsyncSession, taken: _Taken, now: datetime, *, gateway_reference: str | None = None,
    transfer_reference: str | None = None, paid_by: int | None = None,
) -> bool:
    """Move a pending refund to paid with its ledger entry, exactly once; False when it was not pending."""
    values: dict[str, object] = {"status": "paid", "paid_at": now, "paid_by": paid_by}
    if gateway_reference is not None:
        values["gateway_reference"] = gateway_reference
    if transfer_reference is not None:
        values["transfer_reference"] = transfer_reference
    result = await session.execute(
        update(Refund).where(Refund.id == taken.id, Refund.status == "pending").values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        return False
    contract_number = await session.scalar(select(Contract.contract_number).where(Contract.id == taken.contract_id))
    await transaction_controller.record_entry(
        session=session, tenant_id=taken.tenant_id, customer_id=taken.customer_id, kind="refund_paid",
        amount=taken.amount, currency=taken.currency, reference=_refund_reference(taken.id), coupon_id=None,
        contract_numbers=[contract_number or ""], now=now, credit_balance_id=taken.credit_balance_id,
        refund_id=taken.id,
    )
    await session.commit()
    return True


async def mark_refund_paid(
    *, session: AsyncSession, tenant: Tenant, caller: Caller, refund_id: int, transfer_reference: str,
    now: datetime | None = None,
) -> RefundView:
    """Record that a pending bank-transfer refund was paid (409 `refund_not_pending` otherwise)."""
    now = now or utcnow()
    view = await get_refund(session=session, tenant=tenant, refund_id=refund_id)
    if view.refund.method != "bank_transfer":
        raise Conflict("Only a bank-transfer refund is marked paid by hand.", code="refund_not_bank_transfer")
    if not await _mark_paid(session, _Taken.of(view.refund), now, transfer_reference=transfer_reference, paid_by=caller.user_id):
        current = await get_refund(session=session, tenant=tenant, refund_id=refund_id)
        raise Conflict(f"This refund is {current.refund.status}, not pending.", code="refund_not_pending")
    return await get_refund(session=session, tenant=tenant, refund_id=refund_id)


async def list_refunds(
    *, session: AsyncSession, tenant: Tenant, status: str | None = None, credit_balance_id: int | None = None,
    limit: int = 50, cursor: str | None = None,
) -> Page[RefundView]:
    """The tenant's refunds, newest first, optionally by status or credit balance."""
    stmt = select(Refund).where(Refund.tenant_id == tenant.id)
    if status is not None:
        stmt = stmt.where(Refund.status == status)
    if credit_balance_id is not None:
        stmt = stmt.where(Refund.credit_balance_id == credit_balance_id)
    page = await paginate(
        session, stmt, keys=[SortKey(Refund.created_at, descending=True), SortKey(Refund.id, descending=True)],
        limit=limit, cursor=cursor,
    )
    numbers: dict[int, str] = {}
    contract_ids = sorted({r.contract_id for r in page.items})
    if contract_ids:
        numbers = dict(
            (await session.execute(select(Contract.id, Contract.contract_number).where(Contract.id.in_(contract_ids)))).all()
        )
    return Page(items=[RefundView(r, numbers[r.contract_id]) for r in page.items], next_cursor=page.next_cursor)

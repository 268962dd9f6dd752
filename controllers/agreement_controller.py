"""Payment agreements (cuponera de cuotas): signing, reading, the booklet, settling instalments, the periodic job.

An agreement freezes a contract's unpaid invoices into one debt (`invoices.agreement_id`): they leave
arrears (no overdue marking, no carried balance or late fee on the next bill, no suspension) and cannot be
paid on their own. The debt plus simple financing is paid by a down payment (instalment 0) and N monthly
instalments, **each with its own coupon** (no coupon_invoices rows): reference, GS1-128 barcode with the
instalment's due date, payable through every channel a coupon is (card, bank API, bank file, cash). The
bill run does not add instalments to invoices.

Settling goes through the payments' one path (`payment_controller._apply_approvals` calls
`after_coupons_paid`): the coupon claim already makes one payment per coupon, and the instalment moves
`pending`/`overdue` → `paid` with a conditional UPDATE. When the last one is paid the agreement is
`completed` and its frozen invoices become `paid` (no allocation rows: the instalments' payments, each with
its own ledger entries, cover them, as a carrying invoice's payment covers the invoices it carried).

Breaking: the periodic job marks instalments past due `overdue`; when `tenant.agreement_missed_to_break` are
overdue the agreement is `broken` and the rest falls due at once **on the frozen invoices**: the principal
paid so far (never the financing) is applied to them oldest first (an invoice it covers becomes paid), the
rest owes its remaining amount again as ordinary arrears (late fees, suspension, coupons), and the unpaid
instalments and their coupons are cancelled. The financing of instalments not yet paid is not charged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, false, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import holiday_controller, service_order_controller, transaction_controller
from controllers.account_common import tenant_today
from controllers.coupon_controller import UNPAID_STATUSES, add_coupon, channel_fee, creator_kind_of
from controllers.errors import Conflict, DomainValidationError, FieldError, Forbidden, NotFound
from controllers.outbox_controller import chunks, enqueue, message_to_customer
from controllers.pagination import Page, SortKey, paginate
from domain.agreement_schedule import Schedule, build_schedule
from domain.booklet_pdf import BookletCoupon, BookletDocument, render_booklet_pdf
from domain.caller import Caller
from domain.coupon_codes import MAX_BARCODE_AMOUNT
from domain.money import quantum, round_money
from models.account_model import Contract, Customer
from models.agreement_model import UNPAID_INSTALMENT_STATUSES, Agreement, AgreementInstalment, AgreementInvoice
from models.base_model import utcnow
from models.billing_model import Invoice
from models.payment_model import Coupon, CouponInvoice
from models.tenant_model import Tenant

log = logging.getLogger(__name__)

# An instalment coupon stays payable this long after the last instalment's due date (late instalments are
# still paid with their own coupon while the agreement is current).
COUPON_GRACE = timedelta(days=30)
# instalment_due_soon goes out this many days before an instalment's due date.
DUE_SOON_DAYS = 3
# The most invoices one agreement freezes (one IN list, one booklet page of rows).
MAX_INVOICES = 100


@dataclass(frozen=True)
class AgreementFilters:
    """List filters (None: any)."""

    status: str | None = None
    contract_id: int | None = None
    customer_id: int | None = None


@dataclass(frozen=True)
class FrozenInvoiceView:
    """An invoice the agreement froze, with the amount it owed then."""

    invoice_id: int
    number: str
    period: str
    due_on: date
    amount: Decimal
    status: str


@dataclass(frozen=True)
class InstalmentView:
    """An instalment with its coupon."""

    instalment: AgreementInstalment
    coupon: Coupon


@dataclass(frozen=True)
class AgreementView:
    """An agreement with its contract number, frozen invoices and instalments."""

    agreement: Agreement
    contract_number: str
    invoices: list[FrozenInvoiceView]
    instalments: list[InstalmentView]


@dataclass(frozen=True)
class AgreementSummary:
    """An agreement as a list shows it."""

    agreement: Agreement
    contract_number: str


def _field_error(message: str, code: str, field: str, detail: str) -> DomainValidationError:
    return DomainValidationError(message, code=code, errors=[FieldError(field, detail, code)])


async def _contract_for(session: AsyncSession, tenant: Tenant, caller: Caller, contract_id: int) -> Contract:
    contract = await session.scalar(select(Contract).where(Contract.tenant_id == tenant.id, Contract.id == contract_id))
    # Another customer's contract is simply not there for this caller.
    if contract is None or (not caller.is_staff and contract.customer_id != caller.customer_id):
        raise NotFound("No such contract.", code="contract_not_found")
    return contract


def _check_terms(tenant: Tenant, debt: Decimal, down_payment: Decimal, instalment_count: int) -> None:
    """The tenant's limits: at most `agreement_max_instalments`, a down payment of at least the minimum percent, less than the debt."""
    if round_money(down_payment, tenant.currency) != down_payment:
        raise _field_error(
            f"The down payment has more decimals than {tenant.currency} has.", "invalid_amount", "down_payment",
            f"more decimals than {tenant.currency} has",
        )
    if instalment_count > tenant.agreement_max_instalments:
        raise _field_error(
            f"At most {tenant.agreement_max_instalments} monthly instalments.", "too_many_instalments", "instalment_count",
            f"at most {tenant.agreement_max_instalments}",
        )
    minimum = (debt * tenant.agreement_min_down_payment_percent / 100).quantize(quantum(tenant.currency), rounding=ROUND_CEILING)
    if down_payment < minimum:
        raise _field_error(
            f"The down payment must be at least {round_money(minimum, tenant.currency)} {tenant.currency} "
            f"({tenant.agreement_min_down_payment_percent.normalize()} % of the debt).",
            "down_payment_too_small", "down_payment", f"at least {round_money(minimum, tenant.currency)}",
        )
    if down_payment >= debt:
        raise _field_error(
            "The down payment must be less than the debt; pay the invoices instead.", "down_payment_too_large", "down_payment",
            f"less than {round_money(debt, tenant.currency)}",
        )


async def _frozen_candidates(session: AsyncSession, tenant: Tenant, contract: Contract, invoice_ids: Sequence[int] | None) -> list[Invoice]:
    """The contract's invoices to freeze: unpaid, owing, not carried, not disputed, not in an agreement; all of them by default."""
    eligible = (
        Invoice.tenant_id == tenant.id,
        Invoice.contract_id == contract.id,
        Invoice.status.in_(UNPAID_STATUSES),
        Invoice.amount_due > 0,
        Invoice.carried_into_invoice_id.is_(None),
        Invoice.disputed == false(),
        Invoice.agreement_id.is_(None),
    )
    # Touch the rows first so a concurrent coupon or agreement for them queues (a portable SELECT FOR UPDATE).
    await session.execute(
        update(Invoice).where(*eligible).values(amount_due=Invoice.amount_due).execution_options(synchronize_session=False)
    )
    found = list((await session.scalars(select(Invoice).where(*eligible).order_by(Invoice.due_on, Invoice.id))).all())
    if invoice_ids is not None:
        wanted = list(dict.fromkeys(invoice_ids))
        by_id = {inv.id: inv for inv in found}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            await session.rollback()
            raise DomainValidationError(
                "Only the contract's unpaid, undisputed invoices that no agreement holds can be frozen.",
                code="invoice_not_eligible",
                errors=[FieldError(f"invoice_ids.{wanted.index(i)}", "not an unpaid invoice of this contract", "invoice_not_eligible") for i in missing],
            )
        found = [by_id[i] for i in sorted(wanted, key=lambda i: (by_id[i].due_on, i))]
    if not found:
        await session.rollback()
        raise DomainValidationError(
            "Nothing is due on this contract.", code="nothing_due",
            errors=[FieldError("contract_id", "has no unpaid invoices to put in an agreement", "nothing_due")],
        )
    if len(found) > MAX_INVOICES:
        await session.rollback()
        raise _field_error(f"An agreement holds at most {MAX_INVOICES} invoices.", "too_many", "invoice_ids", f"at most {MAX_INVOICES}")
    return found


async def create_agreement(
    *,
    session: AsyncSession,
    tenant: Tenant,
    caller: Caller,
    contract_id: int,
    instalment_count: int,
    down_payment: Decimal,
    invoice_ids: Sequence[int] | None = None,
    monthly_rate: Decimal | None = None,
    now: datetime | None = None,
) -> AgreementView:
    """Sign an agreement: freeze the invoices, make the schedule and one coupon per instalment; one transaction.

    Operators sign for any contract; a customer for its own when the tenant allows self-service, at the
    tenant's rate. Everyone is held to the tenant's limits (instalments, minimum down payment).
    """
    now = now or utcnow()
    if not caller.is_staff:
        if not tenant.agreement_self_service:
            raise Forbidden("This utility does not offer payment agreements online; please contact an office.", code="self_service_disabled")
        if monthly_rate is not None:
            raise _field_error("The financing rate is the utility's.", "rate_not_allowed", "monthly_rate", "set by the utility")
    rate = tenant.agreement_monthly_rate if monthly_rate is None else monthly_rate
    contract = await _contract_for(session, tenant, caller, contract_id)
    current = await session.scalar(select(Agreement.id).where(Agreement.contract_id == contract.id, Agreement.status == "current"))
    if current is not None:
        raise Conflict(f"Contract {contract.contract_number} already has a current agreement ({current}).", code="agreement_exists")
    invoices = await _frozen_candidates(session, tenant, contract, invoice_ids)
    ids = [inv.id for inv in invoices]
    debt = sum((inv.amount_due for inv in invoices), Decimal(0))
    try:
        _check_terms(tenant, debt, down_payment, instalment_count)
    except DomainValidationError:
        await session.rollback()
        raise
    holding = select(CouponInvoice.coupon_id).where(CouponInvoice.invoice_id.in_(ids))
    busy = await session.scalar(select(func.count()).select_from(Coupon).where(Coupon.status == "processing", Coupon.id.in_(holding)))
    if busy:
        await session.rollback()
        raise Conflict("A payment for these invoices is in progress.", code="payment_in_progress")
    signed_on = tenant_today(tenant, now)
    holidays = await holiday_controller.holidays_between(
        session=session, tenant_id=tenant.id, start=signed_on, end=signed_on + timedelta(days=31 * (instalment_count + 2))
    )
    schedule = build_schedule(
        debt=debt, down_payment=down_payment, instalment_count=instalment_count, monthly_rate=rate,
        currency=tenant.currency, signed_on=signed_on, holidays=holidays,
    )
    if max(i.amount for i in schedule.instalments) + channel_fee(tenant) > MAX_BARCODE_AMOUNT:
        await session.rollback()
        raise DomainValidationError("An instalment is too large for one coupon.", code="amount_too_large")
    agreement = Agreement(
        tenant_id=tenant.id, contract_id=contract.id, customer_id=contract.customer_id, status="current",
        currency=tenant.currency, debt=debt, down_payment=down_payment, instalment_count=instalment_count,
        monthly_rate=rate, financing=schedule.financing, total=schedule.total, missed_count=0, signed_on=signed_on,
        created_by=caller.user_id, created_at=now,
    )
    session.add(agreement)
    try:
        await session.flush()
    except IntegrityError:
        # The filtered unique index: another agreement for this contract was signed meanwhile.
        await session.rollback()
        raise Conflict(f"Contract {contract.contract_number} already has a current agreement.", code="agreement_exists") from None
    await _freeze(session, tenant, agreement, invoices, ids, now)
    await _issue_instalments(session, tenant, caller, agreement, contract, schedule, now)
    # Signing an agreement settles the arrears as far as suspension goes: a reconnection if suspended.
    await service_order_controller.after_invoices_paid(session=session, invoice_ids=ids, now=now)
    view = await _view(session, agreement, contract.contract_number)
    await _notify(session, tenant, agreement, "agreement_created", f"agreement_created:{agreement.id}", {
        "contract_number": contract.contract_number,
        "debt": _money(agreement.debt, agreement.currency),
        "financing": _money(agreement.financing, agreement.currency),
        "total": _money(agreement.total, agreement.currency),
        "down_payment": _money(agreement.down_payment, agreement.currency),
        "instalment_count": agreement.instalment_count,
        "first_due_date": view.instalments[0].instalment.due_on.isoformat(),
        "first_amount": _money(view.instalments[0].coupon.amount, agreement.currency),
    })
    await session.commit()
    return view


async def _freeze(session: AsyncSession, tenant: Tenant, agreement: Agreement, invoices: Sequence[Invoice], ids: list[int], now: datetime) -> None:
    """Link the invoices to the agreement (conditionally: none may have changed since the touch) and cancel their coupons."""
    moved = await session.execute(
        update(Invoice)
        .where(Invoice.id.in_(ids), Invoice.agreement_id.is_(None), Invoice.status.in_(UNPAID_STATUSES))
        .values(agreement_id=agreement.id)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != len(ids):  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict("An invoice changed while the agreement was being signed; try again.", code="invoice_changed")
    await session.execute(
        insert(AgreementInvoice),
        [{"agreement_id": agreement.id, "invoice_id": inv.id, "tenant_id": tenant.id, "amount": inv.amount_due} for inv in invoices],
    )
    # Their older coupons would charge them a second time.
    await session.execute(
        update(Coupon)
        .where(Coupon.tenant_id == tenant.id, Coupon.status == "active", Coupon.id.in_(select(CouponInvoice.coupon_id).where(CouponInvoice.invoice_id.in_(ids))))
        .values(status="cancelled", cancelled_at=now, cancel_reason="agreement")
        .execution_options(synchronize_session=False)
    )


def _end_of_day(tenant: Tenant, day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(tenant.timezone)).astimezone(UTC)


async def _issue_instalments(
    session: AsyncSession, tenant: Tenant, caller: Caller, agreement: Agreement, contract: Contract, schedule: Schedule, now: datetime
) -> None:
    """One coupon per instalment (reference, barcode with the instalment's due date) and its coupon_created ledger entry."""
    expires_at = _end_of_day(tenant, schedule.instalments[-1].due_on + COUPON_GRACE)
    kind = creator_kind_of(caller)
    ledger = []
    for scheduled in schedule.instalments:
        coupon = await add_coupon(
            session=session, tenant=tenant, customer_id=agreement.customer_id, currency=agreement.currency,
            invoices_total=scheduled.amount, expires_at=expires_at, created_by=caller.user_id, creator_kind=kind, now=now,
            due_on=scheduled.due_on,
        )
        session.add(AgreementInstalment(
            tenant_id=tenant.id, agreement_id=agreement.id, number=scheduled.number, principal=scheduled.principal,
            financing=scheduled.financing, amount=scheduled.amount, due_on=scheduled.due_on, status="pending", coupon_id=coupon.id,
        ))
        ledger.append(transaction_controller.LedgerRow(
            tenant_id=tenant.id, customer_id=agreement.customer_id, kind="coupon_created", amount=coupon.amount,
            currency=coupon.currency, reference=coupon.reference, coupon_id=coupon.id, contract_numbers=[contract.contract_number],
        ))
    await session.flush()
    await transaction_controller.record_entries(session=session, entries=ledger, now=now)


def _money(amount: Decimal, currency: str) -> str:
    return str(round_money(amount, currency))


async def _notify(session: AsyncSession, tenant: Tenant, agreement: Agreement, event: str, dedupe_key: str, payload: Mapping[str, Any]) -> None:
    customer = await session.get_one(Customer, agreement.customer_id)
    message = await message_to_customer(
        session=session, tenant=tenant, customer=customer, event=event, dedupe_key=dedupe_key,
        payload={"agreement_id": agreement.id, **payload},
    )
    await enqueue(session=session, message=message)


async def _view(session: AsyncSession, agreement: Agreement, contract_number: str | None = None) -> AgreementView:
    if contract_number is None:
        contract_number = await session.scalar(select(Contract.contract_number).where(Contract.id == agreement.contract_id))
        assert contract_number is not None
    invoices = (
        await session.execute(
            select(Invoice.id, Invoice.number, Invoice.period, Invoice.due_on, AgreementInvoice.amount, Invoice.status)
            .join(Invoice, Invoice.id == AgreementInvoice.invoice_id)
            .where(AgreementInvoice.agreement_id == agreement.id)
            .order_by(Invoice.due_on, Invoice.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    instalments = (
        await session.execute(
            select(AgreementInstalment, Coupon)
            .join(Coupon, Coupon.id == AgreementInstalment.coupon_id)
            .where(AgreementInstalment.agreement_id == agreement.id)
            .order_by(AgreementInstalment.number)
            .execution_options(populate_existing=True)
        )
    ).all()
    return AgreementView(
        agreement=agreement,
        contract_number=contract_number,
        invoices=[FrozenInvoiceView(*row) for row in invoices],
        instalments=[InstalmentView(instalment=i, coupon=c) for i, c in instalments],
    )


async def _load(session: AsyncSession, tenant: Tenant, caller: Caller, agreement_id: int) -> Agreement:
    agreement = await session.scalar(
        select(Agreement).where(Agreement.tenant_id == tenant.id, Agreement.id == agreement_id).execution_options(populate_existing=True)
    )
    if agreement is None or (not caller.is_staff and agreement.customer_id != caller.customer_id):
        raise NotFound("No such agreement.", code="agreement_not_found")
    return agreement


async def get_agreement(*, session: AsyncSession, tenant: Tenant, caller: Caller, agreement_id: int) -> AgreementView:
    """One agreement with its invoices and instalments; a customer sees only its own (NotFound otherwise)."""
    return await _view(session, await _load(session, tenant, caller, agreement_id))


async def list_agreements(
    *, session: AsyncSession, tenant: Tenant, caller: Caller, filters: AgreementFilters, limit: int = 50, cursor: str | None = None
) -> Page[AgreementSummary]:
    """A page of the tenant's agreements, newest first; a customer's own only, whatever it filters on."""
    stmt = select(Agreement).where(Agreement.tenant_id == tenant.id)
    if not caller.is_staff:
        stmt = stmt.where(Agreement.customer_id == (caller.customer_id or 0))
    elif filters.customer_id is not None:
        stmt = stmt.where(Agreement.customer_id == filters.customer_id)
    if filters.status is not None:
        stmt = stmt.where(Agreement.status == filters.status)
    if filters.contract_id is not None:
        stmt = stmt.where(Agreement.contract_id == filters.contract_id)
    page = await paginate(session, stmt, keys=[SortKey(Agreement.id, descending=True)], limit=limit, cursor=cursor)
    numbers = dict(
        (await session.execute(select(Contract.id, Contract.contract_number).where(Contract.id.in_({a.contract_id for a in page.items} or {0})))).all()
    )
    return Page(items=[AgreementSummary(a, numbers[a.contract_id]) for a in page.items], next_cursor=page.next_cursor)


async def booklet_pdf(*, session: AsyncSession, tenant: Tenant, caller: Caller, agreement_id: int) -> bytes:
    """The printable booklet: one coupon per instalment, each with its barcode."""
    view = await get_agreement(session=session, tenant=tenant, caller=caller, agreement_id=agreement_id)
    agreement = view.agreement
    customer = await session.get_one(Customer, agreement.customer_id)
    document = BookletDocument(
        tenant_name=tenant.name,
        tenant_gln=tenant.gln,
        currency=agreement.currency,
        locale=customer.locale or tenant.locale,
        agreement_id=agreement.id,
        contract_number=view.contract_number,
        holder_name=customer.name,
        debt=round_money(agreement.debt, agreement.currency),
        financing=round_money(agreement.financing, agreement.currency),
        total=round_money(agreement.total, agreement.currency),
        invoice_numbers=tuple(i.number for i in view.invoices),
        coupons=tuple(
            BookletCoupon(
                number=v.instalment.number,
                count=agreement.instalment_count,
                reference=v.coupon.reference,
                amount=round_money(v.coupon.amount, agreement.currency),
                due_on=v.instalment.due_on,
                status=v.instalment.status,
                barcode_human_readable=v.coupon.barcode_human_readable,
                barcode_element_string=v.coupon.barcode_element_string,
            )
            for v in view.instalments
        ),
    )
    # reportlab is CPU-bound; keep the event loop free for other requests.
    return await asyncio.to_thread(render_booklet_pdf, document)


async def cancel_agreement(*, session: AsyncSession, tenant: Tenant, caller: Caller, agreement_id: int, now: datetime | None = None) -> AgreementView:
    """Undo a current agreement nothing was paid on yet: its invoices return to arrears as they were; one transaction."""
    now = now or utcnow()
    agreement = await _load(session, tenant, caller, agreement_id)
    paid_or_busy = await session.scalar(
        select(func.count())
        .select_from(AgreementInstalment)
        .join(Coupon, Coupon.id == AgreementInstalment.coupon_id)
        .where(AgreementInstalment.agreement_id == agreement.id, (AgreementInstalment.status == "paid") | (Coupon.status == "processing"))
    )
    if paid_or_busy:
        raise Conflict("An instalment is paid or being paid; the agreement can no longer be cancelled.", code="agreement_has_payments")
    moved = await session.execute(
        update(Agreement)
        .where(Agreement.id == agreement.id, Agreement.status == "current")
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict("Only a current agreement can be cancelled.", code="agreement_not_current")
    await _close_instalments(session, agreement.id, now, "agreement_cancelled")
    # Nothing was paid: each invoice owes what it owed when frozen; the overdue sweep moves the ones now past due.
    await session.execute(
        update(Invoice).where(Invoice.agreement_id == agreement.id).values(agreement_id=None).execution_options(synchronize_session=False)
    )
    await session.commit()
    return await _view(session, await _load(session, tenant, caller, agreement_id))


async def _close_instalments(session: AsyncSession, agreement_id: int, now: datetime, reason: str) -> None:
    """Cancel the unpaid instalments and their coupons (none is being paid: the callers checked)."""
    coupon_ids = select(AgreementInstalment.coupon_id).where(
        AgreementInstalment.agreement_id == agreement_id, AgreementInstalment.status.in_(UNPAID_INSTALMENT_STATUSES)
    )
    await session.execute(
        update(Coupon)
        .where(Coupon.id.in_(coupon_ids), Coupon.status.in_(("active", "expired")))
        .values(status="cancelled", cancelled_at=now, cancel_reason=reason)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(AgreementInstalment)
        .where(AgreementInstalment.agreement_id == agreement_id, AgreementInstalment.status.in_(UNPAID_INSTALMENT_STATUSES))
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )


async def after_coupons_paid(*, session: AsyncSession, paid_at_by_coupon: Mapping[int, datetime], now: datetime) -> None:
    """Called where payments settle coupons (in the payment's transaction): each instalment coupon paid marks
    its instalment paid, exactly once; an agreement whose last instalment this was is completed."""
    found = []
    for chunk in chunks(sorted(paid_at_by_coupon)):
        found += (
            await session.execute(
                select(AgreementInstalment.id, AgreementInstalment.coupon_id, AgreementInstalment.agreement_id)
                .where(AgreementInstalment.coupon_id.in_(chunk), AgreementInstalment.status.in_(UNPAID_INSTALMENT_STATUSES))
            )
        ).all()
    touched: set[int] = set()
    for instalment_id, coupon_id, agreement_id in found:
        moved = await session.execute(
            update(AgreementInstalment)
            .where(AgreementInstalment.id == instalment_id, AgreementInstalment.status.in_(UNPAID_INSTALMENT_STATUSES))
            .values(status="paid", paid_at=paid_at_by_coupon[coupon_id])
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            touched.add(agreement_id)
    for agreement_id in sorted(touched):
        await _after_instalment_paid(session, agreement_id, now)


async def _unpaid_counts(session: AsyncSession, agreement_id: int) -> tuple[int, int]:
    """How many instalments are still unpaid, and how many of them are overdue."""
    unpaid, overdue = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(_overdue_flag()), 0))
            .select_from(AgreementInstalment)
            .where(AgreementInstalment.agreement_id == agreement_id, AgreementInstalment.status.in_(UNPAID_INSTALMENT_STATUSES))
        )
    ).one()
    return int(unpaid), int(overdue)


def _overdue_flag() -> Any:
    """1 for an overdue instalment, else 0 (to count them with SUM)."""
    return case((AgreementInstalment.status == "overdue", 1), else_=0)


async def _after_instalment_paid(session: AsyncSession, agreement_id: int, now: datetime) -> None:
    unpaid, overdue = await _unpaid_counts(session, agreement_id)
    if unpaid:
        await session.execute(
            update(Agreement).where(Agreement.id == agreement_id, Agreement.status == "current").values(missed_count=overdue)
            .execution_options(synchronize_session=False)
        )
        return
    moved = await session.execute(
        update(Agreement)
        .where(Agreement.id == agreement_id, Agreement.status == "current")
        .values(status="completed", completed_at=now, missed_count=0)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return
    frozen = list((await session.scalars(select(Invoice.id).where(Invoice.agreement_id == agreement_id).order_by(Invoice.id))).all())
    await session.execute(
        update(Invoice)
        .where(Invoice.agreement_id == agreement_id, Invoice.status.in_(UNPAID_STATUSES))
        .values(status="paid", paid_at=now, amount_due=Decimal(0))
        .execution_options(synchronize_session=False)
    )
    await service_order_controller.after_invoices_paid(session=session, invoice_ids=frozen, now=now)
    agreement = await session.scalar(select(Agreement).where(Agreement.id == agreement_id).execution_options(populate_existing=True))
    assert agreement is not None
    tenant = await session.get_one(Tenant, agreement.tenant_id)
    contract_number = await session.scalar(select(Contract.contract_number).where(Contract.id == agreement.contract_id))
    await _notify(session, tenant, agreement, "agreement_completed", f"agreement_completed:{agreement.id}", {
        "contract_number": contract_number,
        "total": _money(agreement.total, agreement.currency),
        "completed_at": now.isoformat(),
    })


async def after_payment_reversed(*, session: AsyncSession, coupon_id: int, now: datetime) -> None:
    """Called where a payment is reversed (in its transaction): a paid instalment of a current or completed
    agreement is unpaid again, with a new coupon (the reversal cancelled its own); a completed agreement is
    current again and its invoices frozen and unpaid as when it was signed. A broken agreement already gave
    what was paid to the invoices: its instalment stays paid and is logged for an operator."""
    row = (
        await session.execute(
            select(AgreementInstalment, Agreement)
            .join(Agreement, Agreement.id == AgreementInstalment.agreement_id)
            .where(AgreementInstalment.coupon_id == coupon_id, AgreementInstalment.status == "paid")
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        return
    instalment, agreement = row
    if agreement.status not in ("current", "completed"):
        log.warning("payment of instalment %s of %s agreement %s reversed; left paid", instalment.id, agreement.status, agreement.id)
        return
    tenant = await session.get_one(Tenant, agreement.tenant_id)
    if agreement.status == "completed":
        await session.execute(
            update(Agreement).where(Agreement.id == agreement.id, Agreement.status == "completed")
            .values(status="current", completed_at=None).execution_options(synchronize_session=False)
        )
        await _reopen_invoices(session, tenant, agreement.id, now)
    old = await session.get_one(Coupon, coupon_id)
    coupon = await add_coupon(
        session=session, tenant=tenant, customer_id=agreement.customer_id, currency=agreement.currency,
        invoices_total=instalment.amount, expires_at=old.expires_at, created_by=None, creator_kind="staff", now=now,
        due_on=instalment.due_on,
    )
    today = tenant_today(tenant, now)
    await session.execute(
        update(AgreementInstalment)
        .where(AgreementInstalment.id == instalment.id, AgreementInstalment.status == "paid")
        .values(status="overdue" if instalment.due_on < today else "pending", paid_at=None, coupon_id=coupon.id)
        .execution_options(synchronize_session=False)
    )
    contract_number = await session.scalar(select(Contract.contract_number).where(Contract.id == agreement.contract_id))
    await transaction_controller.record_entry(
        session=session, tenant_id=tenant.id, customer_id=agreement.customer_id, kind="coupon_created", amount=coupon.amount,
        currency=coupon.currency, reference=coupon.reference, coupon_id=coupon.id, contract_numbers=[contract_number or ""], now=now,
    )


async def _reopen_invoices(session: AsyncSession, tenant: Tenant, agreement_id: int, now: datetime) -> None:
    """A completed agreement's invoices owe again what they owed when frozen, still frozen."""
    today = tenant_today(tenant, now)
    frozen = (await session.execute(
        select(AgreementInvoice.invoice_id, AgreementInvoice.amount, Invoice.due_on)
        .join(Invoice, Invoice.id == AgreementInvoice.invoice_id)
        .where(AgreementInvoice.agreement_id == agreement_id, Invoice.agreement_id == agreement_id, Invoice.status == "paid")
    )).all()
    for invoice_id, amount, due_on in frozen:
        await session.execute(
            update(Invoice).where(Invoice.id == invoice_id, Invoice.status == "paid")
            .values(status="overdue" if due_on < today else "issued", amount_due=amount, paid_at=None)
            .execution_options(synchronize_session=False)
        )


async def run_agreements(*, session: AsyncSession, now: datetime) -> int:
    """The periodic job, per tenant on its own date: instalment_due_soon reminders, instalments past due
    marked overdue (notified), and agreements with `agreement_missed_to_break` overdue instalments broken.

    Returns how many agreements it broke; commits.
    """
    broken = 0
    for tenant in list((await session.scalars(select(Tenant).order_by(Tenant.id))).all()):
        today = tenant_today(tenant, now)
        await _remind_due_soon(session, tenant, today)
        await _mark_overdue(session, tenant, today)
        broken += await _break_missed(session, tenant, now)
        await session.commit()
    return broken


def _instalment_payload(instalment: AgreementInstalment, coupon: Coupon, contract_number: str) -> dict[str, Any]:
    return {
        "contract_number": contract_number,
        "instalment_number": instalment.number,
        "amount": _money(coupon.amount, coupon.currency),
        "due_date": instalment.due_on.isoformat(),
        "coupon_reference": coupon.reference,
    }


def _current_instalments(tenant: Tenant) -> Any:
    return (
        select(AgreementInstalment, Coupon, Agreement, Contract.contract_number)
        .join(Agreement, Agreement.id == AgreementInstalment.agreement_id)
        .join(Coupon, Coupon.id == AgreementInstalment.coupon_id)
        .join(Contract, Contract.id == Agreement.contract_id)
        .where(AgreementInstalment.tenant_id == tenant.id, Agreement.status == "current")
        .order_by(AgreementInstalment.id)
    )


async def _remind_due_soon(session: AsyncSession, tenant: Tenant, today: date) -> None:
    rows = (
        await session.execute(
            _current_instalments(tenant).where(
                AgreementInstalment.status == "pending",
                AgreementInstalment.due_on >= today,
                AgreementInstalment.due_on <= today + timedelta(days=DUE_SOON_DAYS),
            )
        )
    ).all()
    for instalment, coupon, agreement, contract_number in rows:
        # The dedupe key makes it once per instalment, however often the job runs.
        await _notify(session, tenant, agreement, "instalment_due_soon", f"instalment_due_soon:{instalment.id}",
                      _instalment_payload(instalment, coupon, contract_number))


async def _mark_overdue(session: AsyncSession, tenant: Tenant, today: date) -> None:
    rows = (
        await session.execute(
            _current_instalments(tenant).where(AgreementInstalment.status == "pending", AgreementInstalment.due_on < today)
        )
    ).all()
    for instalment, coupon, agreement, contract_number in rows:
        moved = await session.execute(
            update(AgreementInstalment)
            .where(AgreementInstalment.id == instalment.id, AgreementInstalment.status == "pending")
            .values(status="overdue")
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            await _notify(session, tenant, agreement, "instalment_overdue", f"instalment_overdue:{instalment.id}",
                          _instalment_payload(instalment, coupon, contract_number))


async def _break_missed(session: AsyncSession, tenant: Tenant, now: datetime) -> int:
    counts = (
        await session.execute(
            select(Agreement.id, func.count())
            .join(AgreementInstalment, AgreementInstalment.agreement_id == Agreement.id)
            .where(Agreement.tenant_id == tenant.id, Agreement.status == "current", AgreementInstalment.status == "overdue")
            .group_by(Agreement.id)
            .order_by(Agreement.id)
        )
    ).all()
    broken = 0
    for agreement_id, missed in counts:
        await session.execute(
            update(Agreement).where(Agreement.id == agreement_id, Agreement.status == "current").values(missed_count=missed)
            .execution_options(synchronize_session=False)
        )
        if missed >= tenant.agreement_missed_to_break and await _break(session, tenant, agreement_id, now):
            broken += 1
    return broken


async def _break(session: AsyncSession, tenant: Tenant, agreement_id: int, now: datetime) -> bool:
    """Break a current agreement: the principal paid goes to the frozen invoices oldest first, the rest is arrears again."""
    being_paid = await session.scalar(
        select(func.count())
        .select_from(AgreementInstalment)
        .join(Coupon, Coupon.id == AgreementInstalment.coupon_id)
        .where(AgreementInstalment.agreement_id == agreement_id, Coupon.status == "processing")
    )
    if being_paid:
        # A payment holds an instalment coupon right now; the next run decides with its outcome known.
        return False
    moved = await session.execute(
        update(Agreement)
        .where(Agreement.id == agreement_id, Agreement.status == "current")
        .values(status="broken", broken_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await _close_instalments(session, agreement_id, now, "agreement_broken")
    paid_principal = await session.scalar(
        select(func.coalesce(func.sum(AgreementInstalment.principal), 0))
        .where(AgreementInstalment.agreement_id == agreement_id, AgreementInstalment.status == "paid")
    )
    frozen = (
        await session.execute(
            select(Invoice.id, AgreementInvoice.amount)
            .join(AgreementInvoice, AgreementInvoice.invoice_id == Invoice.id)
            .where(AgreementInvoice.agreement_id == agreement_id, Invoice.agreement_id == agreement_id)
            .order_by(Invoice.due_on, Invoice.id)
        )
    ).all()
    covered = apply_paid_principal(Decimal(paid_principal), [(invoice_id, amount) for invoice_id, amount in frozen])
    paid_ids = [invoice_id for invoice_id, owed in covered if owed == 0]
    for invoice_id, owed in covered:
        values: dict[str, Any] = {"agreement_id": None, "amount_due": owed}
        if owed == 0:
            values |= {"status": "paid", "paid_at": now}
        await session.execute(update(Invoice).where(Invoice.id == invoice_id).values(**values).execution_options(synchronize_session=False))
    if paid_ids:
        await service_order_controller.after_invoices_paid(session=session, invoice_ids=paid_ids, now=now)
    agreement = await session.scalar(select(Agreement).where(Agreement.id == agreement_id).execution_options(populate_existing=True))
    assert agreement is not None
    contract_number = await session.scalar(select(Contract.contract_number).where(Contract.id == agreement.contract_id))
    await _notify(session, tenant, agreement, "agreement_broken", f"agreement_broken:{agreement.id}", {
        "contract_number": contract_number,
        "missed_count": agreement.missed_count,
        "amount_due": _money(sum((owed for _, owed in covered), Decimal(0)), agreement.currency),
    })
    return True


def apply_paid_principal(paid: Decimal, frozen: Sequence[tuple[int, Decimal]]) -> list[tuple[int, Decimal]]:
    """What each frozen invoice (oldest first, with the amount it owed when frozen) still owes once `paid` goes to them in order."""
    owed = []
    for invoice_id, amount in frozen:
        taken = min(paid, amount)
        paid -= taken
        owed.append((invoice_id, amount - taken))
    return owed

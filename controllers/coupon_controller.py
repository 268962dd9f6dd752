"""Payment coupons: creation from invoices or a contract, reading by reference, barcode and PDF, expiry sweeps.

A carried invoice (one whose balance a later invoice took over as "Saldo anterior", see
`invoices.carried_into_invoice_id`) is not payable on its own: a coupon by contract number leaves it
out, and naming it by id is a 422 `invoice_carried` that names the invoice carrying it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, exists, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import sequence_controller, transaction_controller
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.outbox_controller import (
    MESSAGE_CUSTOMERS,
    chunks,
    customer_login_ids,
    customer_message,
    enqueue_many,
)
from domain.caller import Caller
from domain.coupon_codes import MAX_BARCODE_AMOUNT, CouponBarcode, build_coupon_barcode, mask_name, render_barcode_svg
from domain.coupon_pdf import CouponDocument, CouponInvoiceRow, render_coupon_pdf
from domain.money import round_money
from models.account_model import Contract, Customer
from models.base_model import utcnow
from models.billing_model import Invoice
from models.notification_model import Notification
from models.payment_model import Coupon, CouponInvoice, IdempotencyKey, Payment
from models.tenant_model import Tenant

UNPAID_STATUSES = ("issued", "overdue")
MAX_INVOICES_PER_COUPON = 50
REMINDER_WINDOW = timedelta(hours=24)
# Idempotency keys are promised for 24 h; twice that leaves room for slow retries.
IDEMPOTENCY_KEY_RETENTION = timedelta(hours=48)
NOTHING_DUE = "Nothing is due on that contract number."


@dataclass(frozen=True)
class CouponInvoiceView:
    """One invoice on a coupon, as shown to the payer."""

    invoice_id: int
    number: str
    contract_number: str
    period: str
    amount_due: Decimal
    due_on: date


@dataclass(frozen=True)
class CouponView:
    """A coupon with its invoices and the holder name the caller may see."""

    coupon: Coupon
    invoices: list[CouponInvoiceView]
    holder_name: str
    status: str
    payment_id: int | None = None


def effective_status(coupon: Coupon, now: datetime) -> str:
    """The status a payer should see: an active coupon past its expiry is expired even before the sweep runs."""
    if coupon.status == "active" and coupon.expires_at <= now:
        return "expired"
    return coupon.status


def coupon_expiry(*, tenant: Tenant, due_dates: Sequence[date], any_overdue: bool, now: datetime) -> datetime:
    """End of the earliest due day in the tenant's zone, or now + the coupon validity when an invoice is overdue."""
    tz = ZoneInfo(tenant.timezone)
    today = now.astimezone(tz).date()
    earliest = min(due_dates)
    if any_overdue or earliest < today:
        return now + timedelta(hours=tenant.coupon_validity_hours)
    return datetime.combine(earliest, time(23, 59, 59), tzinfo=tz).astimezone(UTC)


def channel_fee(tenant: Tenant) -> Decimal:
    """The fee a coupon adds on top of its invoices (none when the tenant sets none)."""
    return tenant.channel_fee if tenant.channel_fee and tenant.channel_fee > 0 else Decimal(0)


def invoice_payable_amount(tenant: Tenant, invoice: Invoice) -> Decimal:
    """What a coupon for this invoice alone charges: its amount due plus the channel fee."""
    return invoice.amount_due + channel_fee(tenant)


def invoice_barcode(tenant: Tenant, invoice: Invoice, now: datetime) -> CouponBarcode:
    """The barcode printed on an open invoice: the coupon content for it alone, under its own reference."""
    assert invoice.payment_reference is not None
    expires_at = coupon_expiry(tenant=tenant, due_dates=[invoice.due_on], any_overdue=invoice.status == "overdue", now=now)
    return build_coupon_barcode(
        gln=tenant.gln,
        reference=invoice.payment_reference,
        amount=invoice_payable_amount(tenant, invoice),
        due_on=expires_at.astimezone(ZoneInfo(tenant.timezone)).date(),
    )


def _invoice_field_errors(ids: Sequence[int], message: str, code: str) -> list[FieldError]:
    return [FieldError(f"invoice_ids.{i}", message, code) for i in ids]


# Touch invoices' rows so concurrent coupon creations for them queue (a portable SELECT FOR UPDATE). By
# primary key alone: with the tenant as well, SQLite (no statistics) updates through (tenant, period), the
# tenant's every invoice. The touch writes nothing; the read that follows keeps the tenant's rows only, and
# an id of another tenant's is a 404, never committed (the request's session rolls back at its end).
_LOCK_INVOICES_BY_ID = (
    update(Invoice)
    .where(Invoice.id.in_(bindparam("invoice_ids", expanding=True)))
    .values(amount_due=Invoice.amount_due)
    .execution_options(synchronize_session=False)
)


# Quick-pay by contract number, the busiest write of the portal: its statements are built once per
# process (their cache keys computed once), each request only binds its values.
_CONTRACT_BY_NUMBER = select(Contract.id, Contract.customer_id, Contract.contract_number).where(
    Contract.tenant_id == bindparam("tenant_id"), Contract.contract_number == bindparam("contract_number")
)
# A contract's payable invoices: unpaid with an amount due, not carried into a later invoice, and not
# frozen by a current payment agreement (paid through the agreement's instalment coupons only).
# The contract was found among the tenant's, so its id alone scopes the rows: with the tenant as well,
# SQLite (no statistics) walks the tenant's every unpaid invoice through (tenant, status, due_on)
# instead of the contract's own index.
_PAYABLE_OF_CONTRACT = and_(
    # Not named after a column: an UPDATE reserves those names for its SET clause.
    Invoice.contract_id == bindparam("of_contract"),
    Invoice.status.in_(UNPAID_STATUSES),
    Invoice.amount_due > 0,
    Invoice.carried_into_invoice_id.is_(None),
    Invoice.agreement_id.is_(None),
)
_CONTRACT_NUMBERS = select(Contract.id, Contract.contract_number).where(Contract.id.in_(bindparam("contract_ids", expanding=True)))
# The coupons that ever held any of these invoices (by the lines' invoice index); bound as `invoice_ids`.
_COUPONS_HOLDING = select(CouponInvoice.coupon_id).where(CouponInvoice.invoice_id.in_(bindparam("invoice_ids", expanding=True)))
# Whether a payment is under way for any of these invoices: a coupon holding one is being paid.
_PROCESSING_COUPONS = (
    select(func.count()).select_from(Coupon).where(Coupon.status == "processing", Coupon.id.in_(_COUPONS_HOLDING))
)
# See `_LOCK_INVOICES_BY_ID`.
_LOCK_PAYABLE_OF_CONTRACT = (
    update(Invoice).where(_PAYABLE_OF_CONTRACT).values(amount_due=Invoice.amount_due).execution_options(synchronize_session=False)
)
_PAYABLE_INVOICES_OF_CONTRACT = select(Invoice).where(_PAYABLE_OF_CONTRACT).order_by(Invoice.due_on, Invoice.id)


async def _invoices_by_contract(
    session: AsyncSession, tenant: Tenant, caller: Caller, contract_number: str
) -> tuple[list[Invoice], dict[int, str]]:
    """The contract's payable invoices (locked, oldest due first) and its number by contract id."""
    contract = (
        await session.execute(_CONTRACT_BY_NUMBER, {"tenant_id": tenant.id, "contract_number": contract_number.strip()})
    ).first()
    if contract is None or (not caller.anonymous and not caller.is_staff and contract.customer_id != caller.customer_id):
        raise NotFound(NOTHING_DUE, code="nothing_due")
    which = {"of_contract": contract.id}
    await session.execute(_LOCK_PAYABLE_OF_CONTRACT, which)
    invoices = list((await session.scalars(_PAYABLE_INVOICES_OF_CONTRACT, which)).all())
    if not invoices:
        raise NotFound(NOTHING_DUE, code="nothing_due")
    return invoices, {contract.id: contract.contract_number}


async def _invoices_by_ids(session: AsyncSession, tenant: Tenant, caller: Caller, invoice_ids: Sequence[int]) -> list[Invoice]:
    ids = list(dict.fromkeys(invoice_ids))
    if not ids:
        raise DomainValidationError(
            "Name at least one invoice.", errors=[FieldError("invoice_ids", "must not be empty", "empty")]
        )
    if len(ids) > MAX_INVOICES_PER_COUPON:
        raise DomainValidationError(
            f"A coupon holds at most {MAX_INVOICES_PER_COUPON} invoices.",
            errors=[FieldError("invoice_ids", f"at most {MAX_INVOICES_PER_COUPON}", "too_many")],
        )
    await session.execute(_LOCK_INVOICES_BY_ID, {"invoice_ids": ids})
    # Fresh from the rows just touched, not from objects the session loaded before.
    stmt = select(Invoice).where(Invoice.tenant_id == tenant.id, Invoice.id.in_(ids)).execution_options(populate_existing=True)
    if not caller.is_staff:
        stmt = stmt.where(Invoice.customer_id == caller.customer_id)
    found = {invoice.id: invoice for invoice in (await session.scalars(stmt)).all()}
    missing = [i for i in ids if i not in found]
    if missing:
        # Another customer's or another tenant's invoice is simply not there for this caller.
        raise NotFound(f"No such invoice: {', '.join(map(str, missing))}.", code="invoice_not_found")
    not_payable = [i for i in ids if found[i].status not in UNPAID_STATUSES or found[i].amount_due <= 0]
    if not_payable:
        raise DomainValidationError(
            "Only issued or overdue invoices with an amount due can go on a coupon.",
            code="invoice_not_payable",
            errors=_invoice_field_errors([ids.index(i) for i in not_payable], "is paid, void or owes nothing", "invoice_not_payable"),
        )
    carried = [i for i in ids if found[i].carried_into_invoice_id is not None]
    if carried:
        carriers = await _carrying_numbers(session, tenant.id, [found[i] for i in carried])
        named = ", ".join(f"{found[i].number} is carried into {carriers[i]}" for i in carried)
        raise DomainValidationError(
            f"Its balance is billed on a later invoice; pay that one instead ({named}).",
            code="invoice_carried",
            errors=[
                FieldError(f"invoice_ids.{ids.index(i)}", f"is carried into invoice {carriers[i]}", "invoice_carried")
                for i in carried
            ],
        )
    frozen = [i for i in ids if found[i].agreement_id is not None]
    if frozen:
        raise DomainValidationError(
            "A payment agreement holds this invoice; pay the agreement's instalment coupons instead.",
            code="invoice_in_agreement",
            errors=[FieldError(f"invoice_ids.{ids.index(i)}", "is held by a payment agreement", "invoice_in_agreement") for i in frozen],
        )
    if len({found[i].customer_id for i in ids}) > 1:
        raise DomainValidationError(
            "A coupon pays invoices of one customer only.",
            code="mixed_customers",
            errors=[FieldError("invoice_ids", "belong to different customers", "mixed_customers")],
        )
    if len({found[i].currency for i in ids}) > 1:
        raise DomainValidationError(
            "A coupon pays invoices in one currency only.",
            code="mixed_currencies",
            errors=[FieldError("invoice_ids", "are in different currencies", "mixed_currencies")],
        )
    return sorted(found.values(), key=lambda inv: (inv.due_on, inv.id))


async def _carrying_numbers(session: AsyncSession, tenant_id: int, invoices: Sequence[Invoice]) -> dict[int, str]:
    """For each carried invoice, the number of the invoice whose amount due now holds its balance.

    That is the end of the chain (A carried into B carried into C names C): the only one payable.
    """
    link = {inv.id: inv.carried_into_invoice_id for inv in invoices}
    numbers: dict[int, str] = {}
    pending = {i for i in link.values() if i is not None}
    while pending:
        rows = await session.execute(
            select(Invoice.id, Invoice.number, Invoice.carried_into_invoice_id).where(
                Invoice.tenant_id == tenant_id, Invoice.id.in_(sorted(pending))
            )
        )
        pending = set()
        for invoice_id, number, carried_into in rows.all():
            link[invoice_id] = carried_into
            numbers[invoice_id] = number
            if carried_into is not None and carried_into not in link:
                pending.add(carried_into)
    heads: dict[int, str] = {}
    for inv in invoices:
        current = inv.id
        while link.get(current) is not None:
            current = link[current]  # type: ignore[assignment]
        heads[inv.id] = numbers[current]
    return heads


async def create_coupon(
    *,
    session: AsyncSession,
    tenant: Tenant,
    caller: Caller,
    invoice_ids: Sequence[int] | None = None,
    contract_number: str | None = None,
    now: datetime | None = None,
    announce: bool = True,
    creator_kind: str | None = None,
) -> CouponView:
    """Make a coupon for invoices (the payment cart) or a contract's unpaid invoices.

    A logged-in caller's coupon cancels the older active coupons of its invoices (`superseded`). An
    anonymous quick-pay cancels none: it returns the active anonymous coupon for exactly the same
    invoices and amounts if there is one, or makes its own alongside the others.
    `announce=False` skips the "coupon created" email: a bank paying an invoice's own reference makes one nobody asked for.
    `creator_kind` overrides the kind derived from the caller (the bank says `bank`).
    """
    now = now or utcnow()
    if (invoice_ids is None) == (contract_number is None):
        raise DomainValidationError(
            "Send either `invoice_ids` or `contract_number`.",
            errors=[FieldError("body", "exactly one of invoice_ids and contract_number", "one_of")],
        )
    if caller.anonymous and invoice_ids is not None:
        # Invoice ids are guessable; quick-pay without a login goes by the contract number on the bill.
        raise DomainValidationError(
            "Without a login, create the coupon from the contract number.",
            code="contract_number_required",
            errors=[FieldError("invoice_ids", "log in to pick invoices; quick-pay uses contract_number", "contract_number_required")],
        )
    if contract_number is not None:
        invoices, contract_numbers_by_id = await _invoices_by_contract(session, tenant, caller, contract_number)
    else:
        invoices = await _invoices_by_ids(session, tenant, caller, invoice_ids or [])
        contract_numbers_by_id = dict(
            (await session.execute(_CONTRACT_NUMBERS, {"contract_ids": sorted({inv.contract_id for inv in invoices})})).all()
        )
    invoice_ids = [inv.id for inv in invoices]
    kind = creator_kind or creator_kind_of(caller)
    if kind != "anonymous":
        # Supersede older active coupons first; a coupon being paid right now cannot be superseded.
        # An anonymous quick-pay supersedes nothing: whoever has a contract number must not cancel
        # the coupon its customer (or staff) made, which they may be about to pay.
        await session.execute(
            update(Coupon)
            .where(Coupon.tenant_id == tenant.id, Coupon.status == "active", Coupon.id.in_(_COUPONS_HOLDING))
            .values(status="cancelled", cancelled_at=now, cancel_reason="superseded")
            .execution_options(synchronize_session=False),
            {"invoice_ids": invoice_ids},
        )
    busy = await session.scalar(_PROCESSING_COUPONS, {"invoice_ids": invoice_ids})
    if busy:
        await session.rollback()
        raise Conflict("A payment for these invoices is in progress.", code="payment_in_progress")

    customer = (await session.execute(MESSAGE_CUSTOMERS, {"customer_ids": [invoices[0].customer_id]})).one()
    currency = invoices[0].currency
    invoices_total = sum((inv.amount_due for inv in invoices), Decimal(0))
    fee = channel_fee(tenant)
    amount = invoices_total + fee
    if amount > MAX_BARCODE_AMOUNT:
        await session.rollback()
        raise DomainValidationError("The amount is too large for one coupon.", code="amount_too_large")
    if kind == "anonymous":
        reusable = await _identical_anonymous_coupon(session, tenant.id, invoices, amount, now)
        if reusable is not None:
            # Its lines are exactly these invoices at these amounts.
            views = _views_of(invoices, contract_numbers_by_id)
            # Nothing was written but the invoices' touch; commit to release their locks.
            await session.commit()
            return CouponView(coupon=reusable, invoices=views, holder_name=_holder_name(customer, caller), status=reusable.status)
    expires_at = coupon_expiry(
        tenant=tenant,
        due_dates=[inv.due_on for inv in invoices],
        any_overdue=any(inv.status == "overdue" for inv in invoices),
        now=now,
    )
    coupon = await add_coupon(
        session=session, tenant=tenant, customer_id=customer.id, currency=currency, invoices_total=invoices_total,
        expires_at=expires_at, created_by=caller.user_id, creator_kind=kind, now=now,
    )
    reference = coupon.reference
    await session.execute(
        insert(CouponInvoice),
        [{"coupon_id": coupon.id, "invoice_id": inv.id, "tenant_id": tenant.id, "amount": inv.amount_due} for inv in invoices],
    )
    views = _views_of(invoices, contract_numbers_by_id)
    contract_numbers = sorted({v.contract_number for v in views})
    await transaction_controller.record_entry(
        session=session,
        tenant_id=tenant.id,
        customer_id=customer.id,
        kind="coupon_created",
        amount=amount,
        currency=currency,
        reference=reference,
        coupon_id=coupon.id,
        contract_numbers=contract_numbers,
        now=now,
    )
    if announce:
        message = customer_message(
            tenant,
            customer,
            customer.login_id,
            "coupon_created",
            f"coupon_created:{coupon.id}",
            {
                "coupon_reference": reference,
                "amount": str(round_money(amount, currency)),
                "expires_at": expires_at.isoformat(),
                "invoice_numbers": [v.number for v in views],
                "contract_numbers": contract_numbers,
                "created_by": kind,
            },
        )
        # The key names the coupon just inserted, so it cannot be queued already (no lookup first).
        await enqueue_many(session=session, messages=[message])
    await session.commit()
    return CouponView(coupon=coupon, invoices=views, holder_name=_holder_name(customer, caller), status=coupon.status)


async def add_coupon(
    *,
    session: AsyncSession,
    tenant: Tenant,
    customer_id: int,
    currency: str,
    invoices_total: Decimal,
    expires_at: datetime,
    created_by: int | None,
    creator_kind: str,
    now: datetime,
    due_on: date | None = None,
) -> Coupon:
    """A new active coupon for `invoices_total` plus the channel fee: its reference and GS1-128 barcode; flushed, not committed.

    The barcode's (96) date is `due_on`, by default the day of `expires_at` in the tenant's zone. An
    agreement's instalment coupon (no invoices) prints its due date and stays payable after it.
    """
    fee = channel_fee(tenant)
    amount = invoices_total + fee
    due_on = due_on or expires_at.astimezone(ZoneInfo(tenant.timezone)).date()
    reference = await sequence_controller.draw_coupon_reference(session=session, tenant_id=tenant.id)
    barcode = build_coupon_barcode(gln=tenant.gln, reference=reference, amount=amount, due_on=due_on)
    coupon = Coupon(
        tenant_id=tenant.id,
        customer_id=customer_id,
        reference=reference,
        currency=currency,
        invoices_total=invoices_total,
        channel_fee=fee,
        amount=amount,
        status="active",
        expires_at=expires_at,
        due_on=due_on,
        barcode_human_readable=barcode.human_readable,
        barcode_element_string=barcode.element_string,
        created_by=created_by,
        creator_kind=creator_kind,
        created_at=now,
    )
    session.add(coupon)
    await session.flush()
    return coupon


def creator_kind_of(caller: Caller) -> str:
    """Who a caller is as a coupon's maker: `anonymous` (quick-pay), `staff` or `customer`."""
    if caller.anonymous:
        return "anonymous"
    return "staff" if caller.is_staff else "customer"


# The coupons that ever held any of these invoices (`_COUPONS_HOLDING`), then among them the active
# quick-pay ones: asked in one statement, SQLite (no statistics) walks every active coupon of every
# tenant through (status, expires_at) instead.
_ACTIVE_ANONYMOUS = (
    select(Coupon)
    .where(
        Coupon.id.in_(bindparam("coupon_ids", expanding=True)),
        Coupon.tenant_id == bindparam("tenant_id"),
        Coupon.creator_kind == "anonymous",
        Coupon.status == "active",
        Coupon.expires_at > bindparam("now"),
        Coupon.amount == bindparam("amount"),
    )
    .order_by(Coupon.id.desc())
)
_COUPON_LINE_AMOUNTS = select(CouponInvoice.invoice_id, CouponInvoice.amount).where(CouponInvoice.coupon_id == bindparam("coupon_id"))


async def _identical_anonymous_coupon(
    session: AsyncSession, tenant_id: int, invoices: Sequence[Invoice], amount: Decimal, now: datetime
) -> Coupon | None:
    """An active, unexpired quick-pay coupon for exactly these invoices at their current amounts, newest first."""
    wanted = {inv.id: inv.amount_due for inv in invoices}
    holding = sorted(set((await session.scalars(_COUPONS_HOLDING, {"invoice_ids": list(wanted)})).all()))
    candidates = []
    for chunk in chunks(holding):
        candidates += (
            await session.scalars(_ACTIVE_ANONYMOUS, {"coupon_ids": chunk, "tenant_id": tenant_id, "now": now, "amount": amount})
        ).all()
    for coupon in sorted(candidates, key=lambda c: c.id, reverse=True):
        lines = await session.execute(_COUPON_LINE_AMOUNTS, {"coupon_id": coupon.id})
        if dict(lines.all()) == wanted:
            return coupon
    return None


def _holder_name(customer: Any, caller: Caller) -> str:
    """The holder's name as the caller may see it (`customer` is a Customer or a row with its name)."""
    return mask_name(customer.name) if caller.anonymous else customer.name


def _views_of(invoices: Sequence[Invoice], contract_numbers: Mapping[int, str]) -> list[CouponInvoiceView]:
    """A new coupon's lines as the payer sees them: each invoice at its whole amount due (what `_invoice_views` reads back)."""
    return [
        CouponInvoiceView(
            invoice_id=inv.id, number=inv.number, contract_number=contract_numbers[inv.contract_id], period=inv.period,
            amount_due=inv.amount_due, due_on=inv.due_on,
        )
        for inv in invoices
    ]


async def _invoice_views(session: AsyncSession, coupon_id: int) -> list[CouponInvoiceView]:
    rows = await session.execute(
        select(CouponInvoice.invoice_id, Invoice.number, Contract.contract_number, Invoice.period, CouponInvoice.amount, Invoice.due_on)
        .join(Invoice, Invoice.id == CouponInvoice.invoice_id)
        .join(Contract, Contract.id == Invoice.contract_id)
        .where(CouponInvoice.coupon_id == coupon_id)
        .order_by(Invoice.due_on, Invoice.id)
    )
    return [
        CouponInvoiceView(invoice_id=r[0], number=r[1], contract_number=r[2], period=r[3], amount_due=r[4], due_on=r[5])
        for r in rows.all()
    ]


def can_see(coupon: Coupon, caller: Caller) -> bool:
    """A reference is a bearer secret printed on the slip: anonymous holders and staff read it; a customer only its own."""
    return caller.anonymous or caller.is_staff or coupon.customer_id == caller.customer_id


# Built once per process: every payment and coupon page finds its coupon by reference.
_COUPON_BY_REFERENCE = (
    select(Coupon)
    .where(Coupon.tenant_id == bindparam("tenant_id"), Coupon.reference == bindparam("reference"))
    .execution_options(populate_existing=True)
)


async def find_coupon(*, session: AsyncSession, tenant_id: int, caller: Caller, reference: str) -> Coupon:
    """The tenant's coupon with this reference, if the caller may see it; NotFound otherwise."""
    coupon = None
    if reference.isascii() and reference.isdigit():
        coupon = await session.scalar(_COUPON_BY_REFERENCE, {"tenant_id": tenant_id, "reference": reference})
    if coupon is None or not can_see(coupon, caller):
        raise NotFound("No coupon has that reference.", code="coupon_not_found")
    return coupon


async def coupon_payment_id(session: AsyncSession, coupon_id: int) -> int | None:
    """The approved payment that paid this coupon, if any (a coupon is paid at most once)."""
    return await session.scalar(select(Payment.id).where(Payment.coupon_id == coupon_id, Payment.status == "approved"))


async def get_coupon(
    *, session: AsyncSession, tenant: Tenant, caller: Caller, reference: str, now: datetime | None = None
) -> CouponView:
    """A coupon by reference with its invoices."""
    coupon = await find_coupon(session=session, tenant_id=tenant.id, caller=caller, reference=reference)
    customer = await session.get(Customer, coupon.customer_id)
    assert customer is not None
    views = await _invoice_views(session, coupon.id)
    return CouponView(
        coupon=coupon,
        invoices=views,
        holder_name=_holder_name(customer, caller),
        status=effective_status(coupon, now or utcnow()),
        payment_id=await coupon_payment_id(session, coupon.id),
    )


async def coupon_barcode_svg(*, session: AsyncSession, tenant: Tenant, caller: Caller, reference: str) -> bytes:
    """The coupon's GS1-128 barcode as SVG."""
    coupon = await find_coupon(session=session, tenant_id=tenant.id, caller=caller, reference=reference)
    barcode = CouponBarcode(human_readable=coupon.barcode_human_readable, element_string=coupon.barcode_element_string)
    return await asyncio.to_thread(render_barcode_svg, barcode)


async def coupon_pdf(*, session: AsyncSession, tenant: Tenant, caller: Caller, reference: str) -> bytes:
    """The printable coupon: barcode, reference, invoices, amount and due date."""
    view = await get_coupon(session=session, tenant=tenant, caller=caller, reference=reference)
    coupon = view.coupon
    customer = await session.get(Customer, coupon.customer_id)
    assert customer is not None
    document = CouponDocument(
        tenant_name=tenant.name,
        tenant_gln=tenant.gln,
        currency=coupon.currency,
        locale=customer.locale or tenant.locale,
        reference=coupon.reference,
        amount=round_money(coupon.amount, coupon.currency),
        expires_at=coupon.expires_at.astimezone(ZoneInfo(tenant.timezone)),
        due_on=coupon.due_on,
        holder_name=view.holder_name,
        invoices=tuple(
            CouponInvoiceRow(
                number=v.number,
                contract_number=v.contract_number,
                period=v.period,
                amount_due=round_money(v.amount_due, coupon.currency),
            )
            for v in view.invoices
        ),
        barcode_human_readable=coupon.barcode_human_readable,
        barcode_element_string=coupon.barcode_element_string,
    )
    # reportlab is CPU-bound; keep the event loop free for other requests.
    return await asyncio.to_thread(render_coupon_pdf, document)


async def expire_coupons(*, session: AsyncSession, now: datetime) -> int:
    """Expire active coupons past `expires_at` (conditional bulk UPDATE), queue coupon_expired, purge old idempotency keys."""
    result = await session.execute(
        update(Coupon)
        .where(Coupon.status == "active", Coupon.expires_at < now)
        .values(status="expired", expired_at=now)
        .execution_options(synchronize_session=False)
    )
    expired = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if expired:
        # `expired_at == now` picks exactly the rows this sweep moved, without RETURNING.
        rows = await session.execute(
            select(Coupon, Customer, Tenant)
            .join(Customer, Customer.id == Coupon.customer_id)
            .join(Tenant, Tenant.id == Coupon.tenant_id)
            .where(Coupon.status == "expired", Coupon.expired_at == now)
        )
        found = rows.all()
        logins = await customer_login_ids(session, [customer.id for _, customer, _ in found])
        messages = [
            customer_message(tenant, customer, logins.get(customer.id), "coupon_expired", f"coupon_expired:{coupon.id}", _coupon_payload(coupon))
            for coupon, customer, tenant in found
        ]
        await enqueue_many(session=session, messages=messages)
    await session.execute(
        IdempotencyKey.__table__.delete().where(IdempotencyKey.created_at < now - IDEMPOTENCY_KEY_RETENTION)
    )
    await session.commit()
    return expired


def _coupon_payload(coupon: Coupon) -> dict[str, Any]:
    return {
        "coupon_reference": coupon.reference,
        "amount": str(round_money(coupon.amount, coupon.currency)),
        "expires_at": coupon.expires_at.isoformat(),
    }


async def queue_expiry_reminders(*, session: AsyncSession, now: datetime) -> int:
    """Queue coupon_expiring once for each active coupon in its last 24 h (not for coupons made inside that window).

    Coupons holding a disputed invoice (an open PQR claim) get no reminder until the claim is answered.
    """
    disputed = exists(
        select(CouponInvoice.invoice_id)
        .join(Invoice, Invoice.id == CouponInvoice.invoice_id)
        .where(CouponInvoice.coupon_id == Coupon.id, Invoice.disputed == true())
    )
    candidates = (
        await session.execute(
            select(Coupon, Customer, Tenant)
            .join(Customer, Customer.id == Coupon.customer_id)
            .join(Tenant, Tenant.id == Coupon.tenant_id)
            .where(Coupon.status == "active", Coupon.expires_at > now, Coupon.expires_at <= now + REMINDER_WINDOW)
            .where(~disputed)
            .order_by(Coupon.id)
        )
    ).all()
    # A coupon made inside the window needs no reminder: its coupon_created email said when it expires.
    rows = [row for row in candidates if row[0].created_at < row[0].expires_at - REMINDER_WINDOW]
    if not rows:
        return 0
    keys = {coupon.id: f"coupon_expiring:{coupon.id}" for coupon, _, _ in rows}
    queued: set[tuple[int, str]] = set()
    for chunk in chunks(list(keys.values())):
        rows_queued = await session.execute(
            select(Notification.tenant_id, Notification.dedupe_key).where(Notification.dedupe_key.in_(chunk))
        )
        queued.update((tenant_id, key) for tenant_id, key in rows_queued.all())
    logins = await customer_login_ids(session, [customer.id for _, customer, _ in rows])
    messages = [
        customer_message(tenant, customer, logins.get(customer.id), "coupon_expiring", keys[coupon.id], _coupon_payload(coupon))
        for coupon, customer, tenant in rows
        if (tenant.id, keys[coupon.id]) not in queued
    ]
    await enqueue_many(session=session, messages=messages)
    await session.commit()
    return len(messages)

"""Invoices after the bill run: search, one invoice with its lines, the PDF, void and the overdue sweep."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, bindparam, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.coupon_controller import invoice_barcode, invoice_payable_amount
from controllers.errors import Conflict, NotFound, TooManyRequests
from controllers.outbox_controller import enqueue, message_to_customer
from controllers.pagination import Page, PageQuery, SortKey, paginate
from domain.coupon_codes import coupon_fields
from domain.invoice_pdf import DocLine, InvoiceDocument, PaymentRequest, render_invoice_pdf
from domain.national_id import search_form
from domain.readings import split_flags
from models.account_model import SERVICE_UNITS, Contract, Customer, Meter, Reading
from models.base_model import utcnow
from models.billing_model import Invoice, InvoiceLine
from models.notification_model import Notification
from models.payment_model import Coupon, CouponInvoice, Payment, PaymentAllocation
from models.tenant_model import Tenant

OPEN_STATUSES = ("issued", "overdue")
HISTORY_MONTHS = 12


@dataclass(frozen=True)
class InvoiceView:
    """An invoice with what a reader needs beside it: contract number, lines and the reading's kind and flags.

    `invoice` and `lines` are read-only rows (columns, not ORM entities): attribute access by column name.
    """

    invoice: Row[Any]
    contract_number: str
    unit: str
    lines: tuple[Row[Any], ...]
    reading_kind: str | None
    reading_flags: tuple[str, ...]
    # The approved payment that settled it; None when unpaid (or paid through the invoice that carried it).
    payment_id: int | None = None


# The latest approved payment allocated to the invoice (a correlated subquery: one index probe per row).
_SETTLING_PAYMENT = (
    select(func.max(Payment.id))
    .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
    .where(
        PaymentAllocation.invoice_id == Invoice.id,
        PaymentAllocation.kind == "invoice",
        Payment.status == "approved",
    )
    .correlate(Invoice)
    .scalar_subquery()
    .label("payment_id")
)


# One row per invoice with its contract, reading and settling payment: columns, not entities. Built
# once per process; each request only adds its filters.
_VIEW_QUERY = (
    select(
        Invoice.id, Invoice.number, Invoice.contract_id, Invoice.customer_id, Invoice.period,
        Invoice.issued_on, Invoice.due_on, Invoice.status, Invoice.disputed, Invoice.carried_into_invoice_id,
        Invoice.consumption, Invoice.currency, Invoice.arrears, Invoice.subtotal, Invoice.tax, Invoice.total,
        Invoice.amount_due, Invoice.paid_at, Invoice.voided_at, Invoice.void_reason,
        Contract.contract_number, Contract.service,
        Reading.kind.label("reading_kind"), Reading.flags.label("reading_flags"),
        _SETTLING_PAYMENT,
    )
    .join(Contract, Contract.id == Invoice.contract_id)
    .outerjoin(Reading, Reading.id == Invoice.reading_id)
)


# The lines of a page's invoices, in order (built once; the ids are an expanding parameter).
_VIEW_LINES = (
    select(
        InvoiceLine.invoice_id, InvoiceLine.kind, InvoiceLine.description, InvoiceLine.quantity,
        InvoiceLine.unit_price, InvoiceLine.amount,
    )
    .where(InvoiceLine.invoice_id.in_(bindparam("invoice_ids", expanding=True)))
    .order_by(InvoiceLine.invoice_id, InvoiceLine.position)
)


# The keyset of invoice lists: newest period first.
_VIEW_KEYS = (SortKey(Invoice.period, descending=True), SortKey(Invoice.id, descending=True))
# The pages nearly every request asks for, built once: a customer's invoices (the portal's list, the
# operator's search by national ID), and the same within one period.
_CUSTOMER_PAGE = PageQuery(
    _VIEW_QUERY.where(Invoice.tenant_id == bindparam("tenant_id"), Invoice.customer_id == bindparam("customer_id")),
    _VIEW_KEYS,
)
_CUSTOMER_PERIOD_PAGE = PageQuery(_CUSTOMER_PAGE.stmt.where(Invoice.period == bindparam("period")), _VIEW_KEYS)
_CUSTOMERS_BY_NATIONAL_ID = select(Customer.id).where(
    Customer.tenant_id == bindparam("tenant_id"), Customer.national_id == bindparam("national_id")
)


def _view_query(tenant: Tenant) -> Select[Any]:
    """`_VIEW_QUERY` for the tenant's invoices."""
    return _VIEW_QUERY.where(Invoice.tenant_id == tenant.id)


async def _views(session: AsyncSession, rows: Sequence[Row[Any]]) -> list[InvoiceView]:
    """Attach each invoice's lines (one more query for the whole page) to rows of `_view_query`."""
    if not rows:
        return []
    # Fields read by key through each row's mapping: a Row's attribute access costs about six times as much.
    fields = [row._mapping for row in rows]
    lines: dict[int, list[Row[Any]]] = {field["id"]: [] for field in fields}
    # Column rows through the session's connection: no ORM result processing for read-only lines.
    found = await (await session.connection()).execute(_VIEW_LINES, {"invoice_ids": list(lines)})
    for line in found.all():
        lines[line[0]].append(line)  # invoice_id, first of _VIEW_LINES's columns
    return [
        InvoiceView(
            invoice=row,
            contract_number=field["contract_number"],
            unit=SERVICE_UNITS.get(field["service"], ""),
            lines=tuple(lines[field["id"]]),
            reading_kind=field["reading_kind"],
            reading_flags=tuple(split_flags(field["reading_flags"])) if field["reading_kind"] is not None else (),
            payment_id=field["payment_id"],
        )
        for row, field in zip(rows, fields, strict=True)
    ]


async def search_invoices(
    *,
    session: AsyncSession,
    tenant: Tenant,
    contract_number: str | None = None,
    national_id: str | None = None,
    period: str | None = None,
    status: str | None = None,
    customer_id: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[InvoiceView]:
    """Invoices of the tenant (or of one customer), filtered, newest period first: two queries a page."""
    customer_ids = [customer_id] if customer_id is not None else []
    if national_id:
        # Resolved first (ix_customers_tenant_id_national_id), so the page itself is one probe of
        # ix_invoices_tenant_id_customer_id_period even where the planner has no statistics (SQLite).
        found = await session.scalars(
            _CUSTOMERS_BY_NATIONAL_ID, {"tenant_id": tenant.id, "national_id": search_form(national_id)}
        )
        matches = set(found.all())
        customer_ids = sorted(matches & set(customer_ids) if customer_id is not None else matches)
        if not customer_ids:
            return Page(items=[], next_cursor=None)
    if len(customer_ids) == 1 and not contract_number and not status:
        # One customer's invoices, maybe of one period: a page built once.
        query, params = _CUSTOMER_PAGE, {"tenant_id": tenant.id, "customer_id": customer_ids[0]}
        if period:
            query, params = _CUSTOMER_PERIOD_PAGE, {**params, "period": period}
        page = await paginate(session, query, limit=limit, cursor=cursor, params=params)
        return Page(items=await _views(session, page.items), next_cursor=page.next_cursor)
    stmt = _view_query(tenant)
    if len(customer_ids) == 1:
        stmt = stmt.where(Invoice.customer_id == customer_ids[0])
    elif customer_ids:
        stmt = stmt.where(Invoice.customer_id.in_(customer_ids))
    if contract_number:
        stmt = stmt.where(Contract.tenant_id == tenant.id, Contract.contract_number == contract_number.strip())
    if period:
        stmt = stmt.where(Invoice.period == period)
    if status:
        stmt = stmt.where(Invoice.status == status)
    page = await paginate(session, stmt, keys=_VIEW_KEYS, limit=limit, cursor=cursor, rows=True)
    return Page(items=await _views(session, page.items), next_cursor=page.next_cursor)


async def _load(session: AsyncSession, tenant: Tenant, invoice_id: int, customer_id: int | None) -> Invoice:
    stmt = select(Invoice).where(Invoice.id == invoice_id, Invoice.tenant_id == tenant.id)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    invoice = await session.scalar(stmt.execution_options(populate_existing=True))
    if invoice is None:
        raise NotFound("No such invoice.", code="not_found")
    return invoice


async def get_invoice(
    *, session: AsyncSession, tenant: Tenant, invoice_id: int, customer_id: int | None = None
) -> InvoiceView:
    """One invoice with its lines; with `customer_id`, only if it is that customer's (404 otherwise)."""
    stmt = _view_query(tenant).where(Invoice.id == invoice_id)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound("No such invoice.", code="not_found")
    return (await _views(session, [row]))[0]


async def notify_invoice_customer(
    session: AsyncSession, tenant: Tenant, invoice_id: int, event: str, extra: dict[str, Any] | None = None, *, dedupe_key: str | None = None
) -> None:
    """Queue an email about an invoice to its customer, in the caller's transaction; one per invoice and event
    unless `dedupe_key` says otherwise (a note, a resend). `extra` adds to the invoice's payload or overrides it."""
    invoice = await session.get_one(Invoice, invoice_id, populate_existing=True)
    customer = await session.get_one(Customer, invoice.customer_id)
    contract_number = await session.scalar(select(Contract.contract_number).where(Contract.id == invoice.contract_id))
    payload = {
        "invoice_id": invoice.id,
        "invoice_number": invoice.number,
        "contract_number": contract_number,
        "period": invoice.period,
        "amount_due": str(invoice.amount_due),
        "due_date": invoice.due_on.isoformat(),
        **(extra or {}),
    }
    message = await message_to_customer(
        session=session, tenant=tenant, customer=customer, event=event, dedupe_key=dedupe_key or f"{event}:{invoice.id}", payload=payload
    )
    await enqueue(session=session, message=message)


# An operator may re-send an invoice email a few times a day, not flood a customer's mailbox.
MAX_RESENDS_PER_DAY = 3


async def resend_invoice(*, session: AsyncSession, tenant: Tenant, invoice_id: int, now: datetime | None = None) -> int:
    """Queue the invoice email (with its PDF) again under a new dedupe key; returns the resend's number.

    409 `invalid_transition` for a void invoice; 429 `resend_limit` after MAX_RESENDS_PER_DAY in 24 hours.
    """
    now = now or utcnow()
    invoice = await _load(session, tenant, invoice_id, None)
    if invoice.status == "void":
        raise Conflict("A void invoice is not sent again.", code="invalid_transition")
    prefix = f"invoice_issued:{invoice.id}:resend:"
    sent = await session.execute(
        select(Notification.created_at).where(Notification.tenant_id == tenant.id, Notification.dedupe_key.like(f"{prefix}%"))
    )
    times = [created for (created,) in sent.all()]
    if sum(1 for created in times if created > now - timedelta(hours=24)) >= MAX_RESENDS_PER_DAY:
        raise TooManyRequests(
            f"This invoice was re-sent {MAX_RESENDS_PER_DAY} times in the last 24 hours; try again later.", code="resend_limit"
        )
    number = len(times) + 1
    await notify_invoice_customer(session, tenant, invoice.id, "invoice_issued", dedupe_key=f"{prefix}{number}")
    try:
        await session.commit()
    except IntegrityError as exc:
        # Two operators re-sent at the same instant: the other one's email is queued.
        await session.rollback()
        raise Conflict("This invoice is being re-sent already.", code="resend_in_progress") from exc
    return number


async def cancel_invoice_coupons(
    session: AsyncSession, tenant_id: int, invoice_id: int, now: datetime, *, action: str
) -> None:
    """Cancel the invoice's active coupons (`invoice_changed`): they carry an amount the invoice no longer has.

    409 `payment_pending` (after a rollback) while a payment of a coupon holding it is in flight (a card
    payment awaiting the gateway): the money may yet arrive for the old amount. `action` completes the
    message ("void it", "issue the note").
    """
    # Cancel before looking for payments in flight: this UPDATE waits for a claim of the same coupon,
    # and a claim after it finds the coupon cancelled, so no payment can start unseen.
    holding = select(CouponInvoice.coupon_id).where(CouponInvoice.invoice_id == invoice_id)
    await session.execute(
        update(Coupon)
        .where(Coupon.tenant_id == tenant_id, Coupon.status == "active", Coupon.id.in_(holding))
        .values(status="cancelled", cancelled_at=now, cancel_reason="invoice_changed")
        .execution_options(synchronize_session=False)
    )
    in_flight = await session.scalar(
        select(Coupon.id)
        .where(
            Coupon.id.in_(holding),
            or_(Coupon.status == "processing", exists().where(Payment.coupon_id == Coupon.id, Payment.status == "pending")),
        )
        .order_by(Coupon.id)
        .limit(1)
    )
    if in_flight is not None:
        await session.rollback()
        raise Conflict(
            f"A payment for this invoice is awaiting the gateway's answer; {action} once the payment is settled.",
            code="payment_pending",
        )


async def void_invoice(*, session: AsyncSession, tenant: Tenant, invoice_id: int, reason: str) -> InvoiceView:
    """Void an issued or overdue invoice with a reason; its active coupons are cancelled (`invoice_changed`).

    409 `invalid_transition` from any other status; 409 `payment_pending` while a payment of a coupon
    holding it is in flight (a card payment awaiting the gateway): the money may yet arrive for it.
    """
    invoice = await _load(session, tenant, invoice_id, None)
    contract_id, status = invoice.contract_id, invoice.status
    if invoice.agreement_id is not None and status in OPEN_STATUSES:
        raise Conflict("A current payment agreement holds this invoice; cancel the agreement first.", code="invoice_in_agreement")
    now = utcnow()
    result = await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice_id, Invoice.tenant_id == tenant.id, Invoice.status.in_(OPEN_STATUSES), Invoice.agreement_id.is_(None))
        .values(status="void", void_reason=reason, voided_at=now, amount_due=Decimal(0))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        # Nothing was written, so there is nothing to roll back (a rollback would expire the caller's objects).
        raise Conflict(
            f"Only issued or overdue invoices can be voided; this one is {status}.", code="invalid_transition"
        )
    await cancel_invoice_coupons(session, tenant.id, invoice_id, now, action="void it")
    # Balances this invoice carried as arrears are owed again, so the next run carries them anew.
    await session.execute(
        update(Invoice)
        .where(
            Invoice.tenant_id == tenant.id,
            Invoice.contract_id == contract_id,
            Invoice.carried_into_invoice_id == invoice_id,
        )
        .values(carried_into_invoice_id=None)
        .execution_options(synchronize_session=False)
    )
    await notify_invoice_customer(session, tenant, invoice_id, "invoice_voided", {"reason": reason})
    await session.commit()
    return await get_invoice(session=session, tenant=tenant, invoice_id=invoice_id)


async def mark_overdue(
    *, session: AsyncSession, today: date | None = None, now: datetime | None = None, tenant_id: int | None = None
) -> int:
    """Move issued invoices past their due date to `overdue`; returns how many moved.

    Without `today`, each tenant's own date at `now` (default: the current time), in its time
    zone, decides what is past due.
    """
    stmt = select(Tenant).order_by(Tenant.id)
    if tenant_id is not None:
        stmt = stmt.where(Tenant.id == tenant_id)
    moved = 0
    for tenant in list((await session.scalars(stmt)).all()):
        timezone = tenant.timezone
        day = today or (now.astimezone(ZoneInfo(timezone)) if now else datetime.now(ZoneInfo(timezone))).date()
        candidates = list(
            (
                await session.scalars(
                    select(Invoice.id)
                    .where(
                        Invoice.tenant_id == tenant.id, Invoice.status == "issued", Invoice.due_on < day, Invoice.amount_due > 0,
                        # A payment agreement's frozen invoices left arrears: its instalments fall due instead.
                        Invoice.agreement_id.is_(None),
                    )
                    .order_by(Invoice.id)
                )
            ).all()
        )
        for invoice_id in candidates:
            # One conditional UPDATE per invoice: only an invoice this sweep really moved gets its notice
            # (a payment may settle it between the read and the write).
            result = await session.execute(
                update(Invoice)
                .where(Invoice.id == invoice_id, Invoice.status == "issued")
                .values(status="overdue")
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                moved += 1
                await notify_invoice_customer(session, tenant, invoice_id, "invoice_overdue")
    await session.commit()
    return moved


async def invoice_document(
    *, session: AsyncSession, tenant: Tenant, invoice_id: int, customer_id: int | None = None, now: datetime | None = None
) -> InvoiceDocument:
    """Everything the printed invoice shows, read from the database."""
    invoice = await _load(session, tenant, invoice_id, customer_id)
    contract = await session.get_one(Contract, invoice.contract_id)
    customer = await session.get_one(Customer, invoice.customer_id)
    lines = await session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.position)
    )
    reading = await session.get(Reading, invoice.reading_id) if invoice.reading_id is not None else None
    meter = None
    if reading is not None:
        meter = await session.get(Meter, reading.meter_id)
    else:
        meter = await session.scalar(
            select(Meter)
            .where(Meter.contract_id == contract.id)
            .order_by(case((Meter.status == "active", 0), else_=1), Meter.id)
        )
        if meter is not None:
            reading = await session.scalar(
                select(Reading).where(Reading.meter_id == meter.id, Reading.period == invoice.period)
            )
    previous: Decimal | None = None
    history: list[tuple[str, Decimal]] = []
    if meter is not None:
        earlier = await session.scalar(
            select(Reading.value)
            .where(Reading.meter_id == meter.id, Reading.period < invoice.period)
            .order_by(Reading.period.desc())
            .limit(1)
        )
        previous = earlier if earlier is not None else (meter.initial_value if reading is not None else None)
        recent = await session.execute(
            select(Reading.period, Reading.consumption)
            .where(Reading.meter_id == meter.id, Reading.period <= invoice.period)
            .order_by(Reading.period.desc())
            .limit(HISTORY_MONTHS)
        )
        history = [(period, consumption) for period, consumption in reversed(recent.all())]
    status = invoice.status
    payment, paid_channel = None, None
    if status in OPEN_STATUSES:
        payment = _payment_request(tenant, invoice, now or utcnow())
    elif status == "paid":
        paid_channel = await session.scalar(
            select(Payment.channel)
            .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
            .where(PaymentAllocation.invoice_id == invoice.id, Payment.status == "approved")
            .order_by(Payment.id.desc())
            .limit(1)
        )
    if invoice.disputed and status in OPEN_STATUSES:
        status = "disputed"
    zone = ZoneInfo(tenant.timezone)
    return InvoiceDocument(
        tenant_name=tenant.name,
        tenant_tax_id=tenant.legal_id,
        tenant_address=tenant.address,
        currency=invoice.currency,
        locale=customer.locale or tenant.locale,
        invoice_number=invoice.number,
        period=invoice.period,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        status=status,
        customer_name=customer.name,
        customer_national_id_display=customer.national_id_display,
        billing_address=customer.billing_address,
        contract_number=contract.contract_number,
        service=contract.service,
        unit=SERVICE_UNITS.get(contract.service, ""),
        supply_address=contract.supply_address,
        stratum=contract.stratum,
        meter_serial=meter.serial if meter is not None else "—",
        previous_reading=previous,
        current_reading=reading.value if reading is not None else Decimal(0),
        reading_kind=reading.kind if reading is not None else "actual",
        consumption=invoice.consumption,
        flags=tuple(split_flags(reading.flags)) if reading is not None else (),
        lines=tuple(
            DocLine(
                line.kind,
                line.description,
                line.quantity if line.kind == "consumption" else None,
                line.unit_price if line.kind == "consumption" else None,
                line.amount,
            )
            for line in lines
        ),
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        total=invoice.total,
        amount_due=invoice.amount_due,
        history=tuple(history),
        customer_national_id_type=customer.national_id_type,
        tenant_country=tenant.country,
        payment=payment,
        paid_on=invoice.paid_at.astimezone(zone).date() if status == "paid" and invoice.paid_at else None,
        paid_channel=paid_channel,
        void_reason=invoice.void_reason if status == "void" else None,
    )


def _payment_request(tenant: Tenant, invoice: Invoice, now: datetime) -> PaymentRequest | None:
    """The bank-payable part of an open invoice (none when its balance moved to a later invoice)."""
    if invoice.amount_due <= 0 or invoice.carried_into_invoice_id is not None or invoice.payment_reference is None:
        return None
    barcode = invoice_barcode(tenant, invoice, now)
    fields = coupon_fields(barcode.element_string)
    return PaymentRequest(
        reference=fields[1],
        amount=invoice_payable_amount(tenant, invoice),
        pay_by=fields[3],
        barcode_human_readable=barcode.human_readable,
        barcode_element_string=barcode.element_string,
    )


async def invoice_pdf(
    *, session: AsyncSession, tenant: Tenant, invoice_id: int, customer_id: int | None = None
) -> tuple[str, bytes]:
    """The invoice as a PDF: (file name, bytes). With `customer_id`, only that customer's invoice (404 otherwise)."""
    document = await invoice_document(session=session, tenant=tenant, invoice_id=invoice_id, customer_id=customer_id)
    # reportlab is CPU-bound; keep the event loop serving other requests meanwhile.
    data = await asyncio.to_thread(render_invoice_pdf, document)
    return f"{document.invoice_number}.pdf", data

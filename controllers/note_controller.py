"""Credit and debit notes: corrections of an issued invoice, each with its own number, PDF and email.

The invoice itself is never edited beyond its amount due:
- a credit note on an issued or overdue invoice lowers `amount_due` (never below zero: a credit above
  what remains is refused) and cancels its active coupons, which carried the old amount;
- a credit note on a paid invoice leaves the invoice alone and holds the money as a credit balance
  (reason `credit_note`) on its contract; the credits of a paid invoice never exceed its total plus
  its debit notes;
- a debit note on an issued or overdue invoice raises `amount_due` (and cancels its coupons too);
  on a paid invoice it is refused (409 `invoice_paid`): that would need a new receivable.
A note above ADMIN_THRESHOLD (in the invoice's currency) needs an admin. One transaction per note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import sequence_controller
from controllers.account_common import tenant_today
from controllers.errors import Conflict, DomainValidationError, FieldError, Forbidden, NotFound
from controllers.invoice_controller import OPEN_STATUSES, cancel_invoice_coupons, notify_invoice_customer
from domain.caller import Caller
from domain.money import round_money
from domain.note_pdf import NoteDocument, render_note_pdf
from models.account_model import Contract, Customer
from models.base_model import utcnow
from models.billing_model import Invoice
from models.note_model import InvoiceNote
from models.payment_model import CreditBalance
from models.pqr_model import Pqr
from models.tenant_model import Tenant

# Above these amounts a note needs an admin; operators issue the everyday corrections below them.
ADMIN_THRESHOLD: dict[str, Decimal] = {
    "COP": Decimal(1000000),
    "CLP": Decimal(250000),
    "BRL": Decimal(1500),
    "USD": Decimal(300),
}
SEQUENCES = {"credit": "credit_note", "debit": "debit_note"}
PREFIXES = {"credit": "NC", "debit": "ND"}
NOTABLE_STATUSES = ("issued", "overdue", "paid")


@dataclass(frozen=True)
class Rebill:
    """What makes a note a re-bill's: its step for the invoice and the lines before and after ({"old", "new"})."""

    seq: int
    lines: dict[str, Any]


def note_number(kind: str, year: int, sequence: int) -> str:
    """The printed note number, e.g. NC-2026-000001 (the counter is per tenant and kind, not per year)."""
    return f"{PREFIXES[kind]}-{year}-{sequence:06d}"


@dataclass(frozen=True)
class NoteView:
    """A note with the labels a reader needs: its invoice's number and period, the contract, the PQR."""

    note: InvoiceNote
    invoice_number: str
    period: str
    contract_number: str
    pqr_filing_number: str | None
    credit_balance_id: int | None


async def fresh_invoice(session: AsyncSession, tenant: Tenant, invoice_id: int) -> Invoice:
    """The tenant's invoice as stored now (404 otherwise)."""
    invoice = await session.scalar(
        select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.tenant_id == tenant.id)
        .execution_options(populate_existing=True)
    )
    if invoice is None:
        raise NotFound("No such invoice.", code="not_found")
    return invoice


async def _pqr_id(session: AsyncSession, tenant: Tenant, invoice: Invoice, filing_number: str | None) -> int | None:
    if filing_number is None:
        return None
    pqr_id = await session.scalar(
        select(Pqr.id).where(
            Pqr.tenant_id == tenant.id, Pqr.filing_number == filing_number, Pqr.customer_id == invoice.customer_id
        )
    )
    if pqr_id is None:
        raise DomainValidationError(
            "No PQR of this invoice's customer has that filing number.",
            errors=[FieldError("pqr_filing_number", "names no PQR of this invoice's customer", "unknown_pqr")],
        )
    return pqr_id


def _check_amount(amount: Decimal, currency: str, caller: Caller) -> None:
    if amount <= 0 or round_money(amount, currency) != amount:
        raise DomainValidationError(
            f"The amount must be positive and in whole minor units of {currency}.",
            errors=[FieldError("amount", f"must be positive, in whole minor units of {currency}", "invalid_amount")],
        )
    threshold = ADMIN_THRESHOLD.get(currency)
    if threshold is not None and amount > threshold and caller.role != "admin":
        raise Forbidden(
            f"A note above {threshold} {currency} needs an admin.", code="admin_required", extra={"threshold": str(threshold)}
        )


async def _paid_room(session: AsyncSession, invoice: Invoice) -> Decimal:
    """What may still be credited on a paid invoice: its total plus its debits less its credits so far."""
    rows = await session.execute(
        select(InvoiceNote.kind, func.sum(InvoiceNote.amount)).where(InvoiceNote.invoice_id == invoice.id).group_by(InvoiceNote.kind)
    )
    sums = {kind: Decimal(total or 0) for kind, total in rows.all()}
    return invoice.total + sums.get("debit", Decimal(0)) - sums.get("credit", Decimal(0))


async def issue_note(
    *,
    session: AsyncSession,
    tenant: Tenant,
    caller: Caller,
    invoice_id: int,
    kind: str,
    amount: Decimal,
    reason: str,
    pqr_filing_number: str | None = None,
    rebill: Rebill | None = None,
    now: datetime | None = None,
) -> NoteView:
    """Issue a credit or debit note against an invoice (see the module's docstring for the rules).

    `rebill`: the note is a re-bill's difference (rebill_controller), with its step and old and new lines;
    a concurrent re-bill that took the same step meanwhile is a 409 `rebill_in_progress`.

    404 for another tenant's invoice; 409 `invalid_transition` for a void invoice, `invoice_carried` for
    one a later invoice carried (credit that one), `invoice_paid` for a debit on a paid invoice,
    `payment_pending` while a payment is in flight; 422 `over_credit` above what may be credited;
    403 `admin_required` above the threshold for an operator.
    """
    now = now or utcnow()
    invoice = await fresh_invoice(session, tenant, invoice_id)
    _check_amount(amount, invoice.currency, caller)
    if invoice.status not in NOTABLE_STATUSES:
        raise Conflict(f"Notes are issued against issued, overdue or paid invoices; this one is {invoice.status}.", code="invalid_transition")
    if invoice.carried_into_invoice_id is not None:
        raise Conflict(
            "A later invoice carried this one's balance; issue the note against that invoice.", code="invoice_carried"
        )
    if invoice.agreement_id is not None and invoice.status != "paid":
        # The agreement's debt was fixed when it froze the invoice.
        raise Conflict("A current payment agreement holds this invoice; cancel the agreement first.", code="invoice_in_agreement")
    if kind == "debit" and invoice.status == "paid":
        raise Conflict("A debit note on a paid invoice is not supported yet: bill the difference instead.", code="invoice_paid")
    pqr_id = await _pqr_id(session, tenant, invoice, pqr_filing_number)

    unpaid = invoice.status in OPEN_STATUSES
    delta = -amount if kind == "credit" else amount
    # The conditional UPDATE is the guard (and the row lock) against a concurrent payment, void or note.
    guard = update(Invoice).where(
        Invoice.id == invoice.id, Invoice.status == invoice.status, Invoice.carried_into_invoice_id.is_(None)
    )
    if unpaid:
        guard = guard.where(Invoice.amount_due + delta >= 0).values(amount_due=Invoice.amount_due + delta)
    else:
        guard = guard.values(amount_due=Invoice.amount_due)
    result = await session.execute(guard.execution_options(synchronize_session=False))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        current = await fresh_invoice(session, tenant, invoice_id)
        if current.status != invoice.status:
            raise Conflict(f"The invoice changed meanwhile; it is now {current.status}.", code="invalid_transition")
        if current.carried_into_invoice_id is not None:
            raise Conflict("A later invoice carried this one's balance meanwhile; issue the note against that invoice.", code="invoice_carried")
        raise _over_credit(current.amount_due, current.currency)
    after = await session.scalar(select(Invoice.amount_due).where(Invoice.id == invoice.id).execution_options(populate_existing=True))
    assert after is not None
    before = after - delta if unpaid else after
    if not unpaid:
        room = await _paid_room(session, invoice)
        if amount > room:
            currency = invoice.currency  # the rollback expires the invoice
            await session.rollback()
            raise _over_credit(room, currency)
    if unpaid:
        await cancel_invoice_coupons(session, tenant.id, invoice.id, now, action="issue the note")

    issued_on = tenant_today(tenant, now)
    # Last before the insert: concurrent notes queue on the counter's row lock until we commit.
    sequence = await sequence_controller.reserve(session=session, tenant_id=tenant.id, name=SEQUENCES[kind])
    note = InvoiceNote(
        tenant_id=tenant.id, kind=kind, number=note_number(kind, issued_on.year, sequence), invoice_id=invoice.id,
        contract_id=invoice.contract_id, customer_id=invoice.customer_id, amount=amount, currency=invoice.currency,
        reason=reason, pqr_id=pqr_id, amount_due_before=before, amount_due_after=after, issued_on=issued_on,
        created_by=caller.user_id, created_at=now,
        rebill_seq=rebill.seq if rebill else None, rebill_lines=rebill.lines if rebill else None,
    )
    session.add(note)
    try:
        await session.flush()
    except IntegrityError:
        if rebill is None:
            raise
        await session.rollback()
        raise Conflict("Another re-bill of this invoice was issued meanwhile; look at its notes.", code="rebill_in_progress") from None
    if kind == "credit" and not unpaid:
        session.add(
            CreditBalance(
                tenant_id=tenant.id, contract_id=invoice.contract_id, customer_id=invoice.customer_id, amount=amount,
                currency=invoice.currency, status="open", reason="credit_note", payment_id=None, note_id=note.id,
                invoice_id=invoice.id, created_at=now,
            )
        )
        await session.flush()
    if kind == "credit":
        await _notify(session, tenant, note, invoice, pqr_filing_number)
    note_id = note.id
    await session.commit()
    return await get_note(session=session, tenant=tenant, note_id=note_id)


def _over_credit(room: Decimal, currency: str) -> DomainValidationError:
    return DomainValidationError(
        f"The credit is above what may still be credited on this invoice ({round_money(room, currency)} {currency}).",
        code="over_credit",
        errors=[FieldError("amount", "is above what may still be credited on this invoice", "over_credit")],
        extra={"creditable": str(round_money(room, currency))},
    )


async def _notify(session: AsyncSession, tenant: Tenant, note: InvoiceNote, invoice: Invoice, pqr_filing_number: str | None) -> None:
    """Queue the `credit_note_issued` email in the note's transaction; one per note."""
    await notify_invoice_customer(
        session, tenant, invoice.id, "credit_note_issued",
        {
            "note_id": note.id,
            "note_number": note.number,
            "amount": str(round_money(note.amount, note.currency)),
            "amount_due": str(round_money(note.amount_due_after, note.currency)),
            "to_credit_balance": invoice.status == "paid",
            "reason": note.reason,
            "pqr_filing_number": pqr_filing_number or "",
        },
        dedupe_key=f"credit_note_issued:{note.id}",
    )


_VIEW_COLUMNS = (InvoiceNote, Invoice.number, Invoice.period, Contract.contract_number, Pqr.filing_number, CreditBalance.id)


def _view_query(tenant: Tenant):  # type: ignore[no-untyped-def]
    return (
        select(*_VIEW_COLUMNS)
        .join(Invoice, Invoice.id == InvoiceNote.invoice_id)
        .join(Contract, Contract.id == InvoiceNote.contract_id)
        .outerjoin(Pqr, Pqr.id == InvoiceNote.pqr_id)
        .outerjoin(CreditBalance, CreditBalance.note_id == InvoiceNote.id)
        .where(InvoiceNote.tenant_id == tenant.id)
    )


async def get_note(*, session: AsyncSession, tenant: Tenant, note_id: int) -> NoteView:
    """One note of the tenant (404 otherwise)."""
    row = (await session.execute(_view_query(tenant).where(InvoiceNote.id == note_id))).first()
    if row is None:
        raise NotFound("No such note.", code="not_found")
    return NoteView(*row)


async def invoice_notes(*, session: AsyncSession, tenant: Tenant, invoice_id: int) -> list[NoteView]:
    """The notes of one invoice of the tenant, oldest first (404 for an unknown invoice)."""
    await fresh_invoice(session, tenant, invoice_id)
    rows = await session.execute(
        _view_query(tenant).where(InvoiceNote.invoice_id == invoice_id).order_by(InvoiceNote.created_at, InvoiceNote.id)
    )
    return [NoteView(*row) for row in rows.all()]


async def note_pdf(*, session: AsyncSession, tenant: Tenant, note_id: int) -> tuple[str, bytes]:
    """The note as a PDF in the customer's language: (file name, bytes)."""
    view = await get_note(session=session, tenant=tenant, note_id=note_id)
    note = view.note
    customer = await session.get_one(Customer, note.customer_id)
    document = NoteDocument(
        kind=note.kind,
        number=note.number,
        issued_on=note.issued_on,
        locale=customer.locale or "es",
        tenant_name=tenant.name,
        tenant_legal_id=tenant.legal_id,
        tenant_country=tenant.country,
        customer_name=customer.name,
        contract_number=view.contract_number,
        invoice_number=view.invoice_number,
        period=view.period,
        currency=note.currency,
        amount=note.amount,
        amount_due_before=note.amount_due_before,
        amount_due_after=note.amount_due_after,
        to_credit_balance=view.credit_balance_id is not None,
        reason=note.reason,
        pqr_filing_number=view.pqr_filing_number,
        rebill_lines=note.rebill_lines,
    )
    return f"{note.number}.pdf", render_note_pdf(document)

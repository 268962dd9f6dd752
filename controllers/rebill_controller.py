"""Re-billing an invoice after its reading was corrected: the difference as a credit or debit note, never a
second invoice for the period.

RULES:
1. The corrected invoice is computed for the same contract, period and tariff by the bill run's own
   computation (`domain.charges.bill_as_applied`), from the reading's current consumption, with the
   arrears, late-fee months, one-off charges and credit balances the invoice took, at the amounts it
   took them: only what was corrected changes.
2. What the invoice stands at is its total plus the differences earlier re-bills issued (manual notes
   are corrections of their own and do not count). The new difference is the corrected total less
   that: positive → a debit note, negative → a credit note (a credit balance when the invoice is
   paid), both through note_controller, so numbering, PDF, email and the admin threshold are theirs.
   Zero → 409 `nothing_to_rebill`; re-billing again without a new correction issues nothing.
3. Each re-bill note takes the invoice's next step (`rebill_seq`, unique per invoice), so two
   concurrent re-bills cannot both issue the same difference.
4. The note keeps the lines before (the invoice's, or the previous re-bill's new ones) and after,
   which its PDF prints side by side.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import note_controller, tariff_controller
from controllers.credit_balance_controller import CREDIT_DESCRIPTION
from controllers.errors import Conflict
from controllers.note_controller import NoteView, Rebill
from domain import billing_calculator as calc
from domain.caller import Caller
from domain.charges import PendingCharge, bill_as_applied
from domain.money import round_money
from models.account_model import Contract, Reading
from models.billing_model import ContractCharge, Invoice, InvoiceLine, Tariff
from models.note_model import InvoiceNote
from models.payment_model import CreditApplication
from models.tenant_model import Tenant

REBILLABLE = ("issued", "overdue", "paid")


def _line(kind: str, description: str, quantity: Decimal, unit_price: Decimal, amount: Decimal) -> dict[str, str]:
    return {
        "kind": kind, "description": description, "quantity": str(quantity), "unit_price": str(unit_price),
        "amount": str(amount),
    }


async def _late_fee_months(session: AsyncSession, invoice: Invoice, tariff: calc.PreparedTariff) -> int:
    """The months of late fee the invoice charged on its arrears (its late-fee line's factor over the monthly rate)."""
    factor = await session.scalar(
        select(InvoiceLine.unit_price).where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind == "late_fee")
    )
    if factor is None or not tariff.late_fee_factor:
        return 1
    return int((Decimal(factor) / tariff.late_fee_factor).to_integral_value())


async def _taken(session: AsyncSession, invoice: Invoice) -> list[tuple[PendingCharge, Decimal]]:
    """The one-off charges and credit balances the invoice took, at the amounts it took them (oldest first)."""
    charges = await session.execute(
        select(ContractCharge.id, ContractCharge.description, ContractCharge.billed_amount, ContractCharge.taxable)
        .where(ContractCharge.invoice_id == invoice.id)
        .order_by(ContractCharge.id)
    )
    taken = [(PendingCharge(key, description, amount, bool(taxable)), amount) for key, description, amount, taxable in charges]
    credits = await session.execute(
        select(CreditApplication.credit_balance_id, CreditApplication.amount)
        .where(CreditApplication.invoice_id == invoice.id)
        .order_by(CreditApplication.credit_balance_id)
    )
    taken += [(PendingCharge(key, CREDIT_DESCRIPTION, -amount, False), -amount) for key, amount in credits]
    return taken


async def _standing(session: AsyncSession, invoice: Invoice) -> tuple[Decimal, int, list[dict[str, str]]]:
    """What the invoice stands at after earlier re-bills, their count, and its current lines."""
    last = await session.scalar(
        select(InvoiceNote)
        .where(InvoiceNote.invoice_id == invoice.id, InvoiceNote.rebill_seq.is_not(None))
        .order_by(InvoiceNote.rebill_seq.desc())
        .limit(1)
    )
    rows = await session.execute(
        select(InvoiceNote.kind, func.sum(InvoiceNote.amount))
        .where(InvoiceNote.invoice_id == invoice.id, InvoiceNote.rebill_seq.is_not(None))
        .group_by(InvoiceNote.kind)
    )
    sums = {kind: Decimal(total or 0) for kind, total in rows.all()}
    standing = invoice.total + sums.get("debit", Decimal(0)) - sums.get("credit", Decimal(0))
    if last is not None and last.rebill_lines:
        return standing, last.rebill_seq or 0, list(last.rebill_lines["new"])
    lines = await session.execute(
        select(InvoiceLine.kind, InvoiceLine.description, InvoiceLine.quantity, InvoiceLine.unit_price, InvoiceLine.amount)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.position)
    )
    return standing, 0, [_line(*row) for row in lines.all()]


async def corrected_bill(*, session: AsyncSession, tenant: Tenant, invoice: Invoice) -> calc.Bill:
    """The invoice as the bill run would compute it now, from its reading's current consumption (rule 1)."""
    if invoice.reading_id is None or invoice.tariff_id is None:
        raise Conflict("Only an invoice the bill run computed from a reading can be re-billed.", code="not_rebillable")
    consumption = await session.scalar(select(Reading.consumption).where(Reading.id == invoice.reading_id))
    stratum = await session.scalar(select(Contract.stratum).where(Contract.id == invoice.contract_id))
    tariff_row = await session.get_one(Tariff, invoice.tariff_id)
    assert consumption is not None and stratum is not None
    tariff = calc.prepare_tariff(tariff_controller.calculator_tariff(tariff_controller.row_fields(tariff_row)))
    return bill_as_applied(
        tariff=tariff, stratum=stratum, consumption=consumption, arrears=invoice.arrears,
        arrears_months=await _late_fee_months(session, invoice, tariff), applied=await _taken(session, invoice),
    )


async def rebill_invoice(
    *, session: AsyncSession, tenant: Tenant, caller: Caller, invoice_id: int, now: datetime | None = None
) -> NoteView:
    """Issue the difference between the corrected invoice and what it stands at as one note (see RULES)."""
    invoice = await note_controller.fresh_invoice(session, tenant, invoice_id)
    if invoice.status not in REBILLABLE:
        raise Conflict(
            f"Only an issued, overdue or paid invoice is re-billed; this one is {invoice.status}.", code="invalid_transition"
        )
    bill = await corrected_bill(session=session, tenant=tenant, invoice=invoice)
    standing, steps, old_lines = await _standing(session, invoice)
    difference = bill.total - standing
    if difference == 0:
        await session.rollback()
        raise Conflict("The corrected invoice equals what this invoice stands at; nothing to re-bill.", code="nothing_to_rebill")
    new_lines = [_line(li.kind, li.description, li.quantity, li.unit_price, li.amount) for li in bill.lines]
    lines: dict[str, Any] = {"old": old_lines, "new": new_lines, "old_total": str(standing), "new_total": str(bill.total)}
    return await note_controller.issue_note(
        session=session, tenant=tenant, caller=caller, invoice_id=invoice.id,
        kind="debit" if difference > 0 else "credit", amount=abs(difference),
        reason=(
            f"Refacturación del periodo {invoice.period}: {round_money(standing, invoice.currency)} → "
            f"{round_money(bill.total, invoice.currency)} {invoice.currency}"
        ),
        rebill=Rebill(seq=steps + 1, lines=lines), now=now,
    )

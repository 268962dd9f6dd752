"""Credit and debit notes: operators correct an invoice on paper (admins above a threshold) and print the notes."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel
from quart import Blueprint, Response
from quart_schema import validate_request, validate_response

from controllers import note_controller, rebill_controller
from controllers.note_controller import NoteView
from domain.money import round_money
from routes.common import MoneyStr, current_caller, db, pdf_document, problems, request_tenant, role_required
from routes.fields import Money, ascii_code, single_line
from routes.invoice_routes import pdf_response
from routes.vocabulary import Currency, NoteKind

bp = Blueprint("notes", __name__, url_prefix="/api/v1")

Reason = single_line(500, min_length=3)
FilingNumber = ascii_code(30)


class NoteIn(BaseModel):
    """A note's amount (in the invoice's currency), why, and the PQR it answers if any.

    Above the tenant's threshold (COP 1 000 000, CLP 250 000, BRL 1 500, USD 300) only an admin may issue it.
    """

    amount: Money
    reason: Reason
    pqr_filing_number: FilingNumber | None = None


class NoteOut(BaseModel):
    """A credit or debit note and what it did to its invoice's amount due.

    `credit_balance_id`: set when a credit note on a paid invoice became a credit balance on the contract.
    `rebill_seq`: set on a re-bill's note (1 for the invoice's first re-bill, 2 for the next, ...).
    """

    id: int
    kind: NoteKind
    number: str
    invoice_id: int
    invoice_number: str
    period: str
    contract_id: int
    contract_number: str
    customer_id: int
    amount: MoneyStr
    currency: Currency
    reason: str
    pqr_filing_number: str | None
    amount_due_before: MoneyStr
    amount_due_after: MoneyStr
    credit_balance_id: int | None
    rebill_seq: int | None = None
    issued_on: date
    created_at: datetime


class NoteList(BaseModel):
    """The notes of one invoice, oldest first."""

    items: list[NoteOut]


def note_out(view: NoteView) -> NoteOut:
    """Serialise a note, money rounded to its currency's minor unit."""
    note = view.note
    currency = note.currency
    return NoteOut.model_construct(
        id=note.id, kind=note.kind, number=note.number, invoice_id=note.invoice_id, invoice_number=view.invoice_number,
        period=view.period, contract_id=note.contract_id, contract_number=view.contract_number,
        customer_id=note.customer_id, amount=round_money(note.amount, currency), currency=currency, reason=note.reason,
        pqr_filing_number=view.pqr_filing_number,
        amount_due_before=round_money(note.amount_due_before, currency),
        amount_due_after=round_money(note.amount_due_after, currency),
        credit_balance_id=view.credit_balance_id, rebill_seq=note.rebill_seq, issued_on=note.issued_on,
        created_at=note.created_at,
    )


async def _issue(invoice_id: int, data: NoteIn, kind: str) -> tuple[NoteOut, int]:
    view = await note_controller.issue_note(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), invoice_id=invoice_id, kind=kind,
        amount=data.amount, reason=data.reason.strip(), pqr_filing_number=data.pqr_filing_number,
    )
    return note_out(view), 201


@bp.post("/invoices/<int:invoice_id>/credit-notes")
@role_required("operator")
@validate_request(NoteIn)
@validate_response(NoteOut, 201)
@problems(404, 409, 422)
async def issue_credit_note(invoice_id: int, data: NoteIn) -> tuple[NoteOut, int]:
    """Credit an issued, overdue or paid invoice in full or in part.

    Unpaid: lowers its amount due (422 `over_credit` above what remains) and cancels its active coupons.
    Paid: the amount becomes a credit balance on the contract. 403 `admin_required` above the threshold.
    """
    return await _issue(invoice_id, data, "credit")


@bp.post("/invoices/<int:invoice_id>/debit-notes")
@role_required("operator")
@validate_request(NoteIn)
@validate_response(NoteOut, 201)
@problems(404, 409, 422)
async def issue_debit_note(invoice_id: int, data: NoteIn) -> tuple[NoteOut, int]:
    """Charge an issued or overdue invoice more (under-billing): raises its amount due and cancels its coupons.

    409 `invoice_paid` on a paid invoice (a new receivable is not modelled yet).
    """
    return await _issue(invoice_id, data, "debit")


@bp.post("/invoices/<int:invoice_id>/rebill")
@role_required("operator")
@validate_response(NoteOut, 201)
@problems(404, 409, 422)
async def rebill_invoice(invoice_id: int) -> tuple[NoteOut, int]:
    """Re-bill an invoice after its reading was corrected: the difference as one credit or debit note.

    409 `nothing_to_rebill` when the corrected invoice equals what the invoice stands at (also on a repeat),
    `not_rebillable` for an invoice not computed from a reading, `invalid_transition` for a void one,
    `invoice_paid` when a paid invoice would need a debit. 403 `admin_required` above the note threshold.
    """
    view = await rebill_controller.rebill_invoice(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), invoice_id=invoice_id
    )
    return note_out(view), 201


@bp.get("/invoices/<int:invoice_id>/notes")
@role_required("operator")
@validate_response(NoteList, 200)
@problems(404)
async def list_invoice_notes(invoice_id: int) -> NoteList:
    """The credit and debit notes of one invoice, oldest first."""
    views = await note_controller.invoice_notes(session=db(), tenant=await request_tenant(), invoice_id=invoice_id)
    return NoteList.model_construct(items=[note_out(v) for v in views])


@bp.get("/notes/<int:note_id>")
@role_required("operator")
@validate_response(NoteOut, 200)
@problems(404)
async def get_note(note_id: int) -> NoteOut:
    """One credit or debit note."""
    return note_out(await note_controller.get_note(session=db(), tenant=await request_tenant(), note_id=note_id))


@bp.get("/notes/<int:note_id>/pdf")
@role_required("operator")
@pdf_document
@problems(404)
async def get_note_pdf(note_id: int) -> Response:
    """The note as a printable PDF, in the customer's language."""
    filename, data = await note_controller.note_pdf(session=db(), tenant=await request_tenant(), note_id=note_id)
    return pdf_response(filename, data)

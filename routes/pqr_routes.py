"""PQR routes: customers file and follow their own; operators list, answer and move them along."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import pqr_controller
from controllers.pqr_controller import PqrFilters, PqrView
from models.pqr_model import ANSWER_MAX, DESCRIPTION_MAX, SUBJECT_MAX
from routes.common import ListQuery, db, login_required, problems, require_principal, role_required
from routes.fields import Id, single_line
from routes.vocabulary import PqrStatus, PqrType

Subject = single_line(SUBJECT_MAX)

bp = Blueprint("pqrs", __name__, url_prefix="/api/v1/pqrs")

PqrSort = Literal["due_on", "-due_on", "filed_at", "-filed_at", "filing_number", "-filing_number"]


class PqrIn(BaseModel):
    """A new PQR. `customer_id` is for staff filing at the counter; customers file for themselves."""

    type: PqrType
    subject: Subject
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=DESCRIPTION_MAX)]
    contract_id: Id | None = None
    invoice_id: Id | None = None
    customer_id: Id | None = None


class PqrPatch(BaseModel):
    """A status change; moving to `answered` needs the answer text."""

    status: PqrStatus
    answer: Annotated[str, StringConstraints(strip_whitespace=True, max_length=ANSWER_MAX)] | None = None


class PqrOut(BaseModel):
    """A PQR with its radicado, deadline and answer."""

    id: int
    filing_number: str
    type: PqrType
    subject: str
    description: str
    status: PqrStatus
    filed_at: datetime
    due_on: date
    answer: str | None
    answered_at: datetime | None
    closed_at: datetime | None
    customer_id: int
    contract_id: int | None
    invoice_id: int | None
    overdue: bool = Field(description="Open and past its due date, in the tenant's time zone.")
    days_left: int | None = Field(description="Business days left until the due date; null once answered.")


class PqrPage(BaseModel):
    """A page of PQRs."""

    items: list[PqrOut]
    next_cursor: str | None


class PqrQuery(ListQuery):
    """List filters; `due_within_days` counts business days from today and includes overdue ones."""

    status: PqrStatus | None = None
    type: PqrType | None = None
    overdue: bool | None = None
    due_within_days: int | None = Field(None, ge=0, le=60)
    contract_id: Id | None = None
    contract_number: str | None = Field(None, max_length=30)
    customer_id: Id | None = None
    sort: PqrSort = "due_on"


def pqr_out(view: PqrView) -> PqrOut:
    """Serialise a PQR view."""
    pqr = view.pqr
    return PqrOut(
        id=pqr.id,
        filing_number=pqr.filing_number,
        type=pqr.type,  # type: ignore[arg-type]
        subject=pqr.subject,
        description=pqr.description,
        status=pqr.status,  # type: ignore[arg-type]
        filed_at=pqr.filed_at,
        due_on=pqr.due_on,
        answer=pqr.answer,
        answered_at=pqr.answered_at,
        closed_at=pqr.closed_at,
        customer_id=pqr.customer_id,
        contract_id=pqr.contract_id,
        invoice_id=pqr.invoice_id,
        overdue=view.overdue,
        days_left=view.days_left,
    )


@bp.post("")
@login_required
@validate_request(PqrIn)
@validate_response(PqrOut, 201)
@problems(403, 404)
async def file_pqr(data: PqrIn) -> tuple[PqrOut, int]:
    """File a PQR; it gets a radicado and a due date 15 business days later."""
    principal = await require_principal()
    view = await pqr_controller.file_pqr(
        session=db(), tenant=principal.tenant, user=principal.user, pqr_type=data.type, subject=data.subject,
        description=data.description, customer_id=data.customer_id, contract_id=data.contract_id,
        invoice_id=data.invoice_id,
    )
    return pqr_out(view), 201


@bp.get("")
@login_required
@validate_querystring(PqrQuery)
@validate_response(PqrPage, 200)
@problems(400, 403)
async def list_pqrs(query_args: PqrQuery) -> PqrPage:
    """List PQRs (customers: their own), filtered, nearest deadline first by default."""
    principal = await require_principal()
    filters = PqrFilters(**query_args.model_dump(exclude={"limit", "cursor", "sort"}))
    page = await pqr_controller.list_pqrs(
        session=db(), tenant=principal.tenant, user=principal.user, filters=filters,
        sort=query_args.sort, limit=query_args.limit, cursor=query_args.cursor,
    )
    return PqrPage(items=[pqr_out(v) for v in page.items], next_cursor=page.next_cursor)


@bp.get("/<int:pqr_id>")
@login_required
@validate_response(PqrOut, 200)
@problems(403, 404)
async def get_pqr(pqr_id: int) -> PqrOut:
    """One PQR with its answer and dates (customers: only their own)."""
    principal = await require_principal()
    view = await pqr_controller.get_pqr(session=db(), tenant=principal.tenant, user=principal.user, pqr_id=pqr_id)
    return pqr_out(view)


@bp.patch("/<int:pqr_id>")
@role_required("operator")
@validate_request(PqrPatch)
@validate_response(PqrOut, 200)
@problems(404, 409)
async def change_pqr_status(pqr_id: int, data: PqrPatch) -> PqrOut:
    """Move a PQR to its next status; answering writes the answer and notifies the customer."""
    principal = await require_principal()
    view = await pqr_controller.change_status(
        session=db(), tenant=principal.tenant, user=principal.user, pqr_id=pqr_id, status=data.status,
        answer=data.answer,
    )
    return pqr_out(view)

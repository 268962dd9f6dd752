"""Payment agreements: sign one (operator, or a customer for itself where the tenant allows), list, read, booklet PDF, cancel."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import agreement_controller
from controllers.agreement_controller import AgreementFilters, AgreementSummary, AgreementView
from domain.money import round_money
from models.agreement_model import Agreement
from routes.common import (
    ListQuery,
    MoneyStr,
    current_caller,
    db,
    login_required,
    pdf_document,
    problems,
    request_tenant,
    role_required,
)
from routes.coupon_routes import BarcodeOut
from routes.fields import RATE_PLACES, DecimalStr, Id, Money, plain_decimal
from routes.vocabulary import AgreementStatus, Currency, InstalmentStatus, InvoiceStatus

bp = Blueprint("agreements", __name__, url_prefix="/api/v1/agreements")

MonthlyRate = Annotated[DecimalStr, Field(ge=0, le=100, decimal_places=RATE_PLACES)]


class AgreementIn(BaseModel):
    """The contract, which of its unpaid invoices (all by default), the monthly instalments and the down payment.

    `monthly_rate`: simple monthly financing in percent (`"1.5"` is 1.5 % a month) on the balance after the
    down payment; operators only, the tenant's rate by default.
    """

    contract_id: Id
    invoice_ids: list[Id] | None = Field(None, min_length=1, max_length=agreement_controller.MAX_INVOICES)
    instalment_count: int = Field(ge=1, le=120)
    down_payment: Money
    monthly_rate: MonthlyRate | None = None  # type: ignore[valid-type]


class FrozenInvoiceOut(BaseModel):
    """An invoice the agreement holds, with the amount it owed when frozen."""

    id: int
    number: str
    period: str
    due_on: date
    amount: MoneyStr
    status: InvoiceStatus


class InstalmentOut(BaseModel):
    """One instalment (number 0 is the down payment) and the coupon that pays it."""

    number: int
    principal: MoneyStr
    financing: MoneyStr
    amount: MoneyStr = Field(description="principal + financing; the coupon adds the channel fee, if any.")
    due_on: date
    status: InstalmentStatus
    paid_at: datetime | None
    coupon_reference: str
    coupon_amount: MoneyStr
    barcode: BarcodeOut


class AgreementSummaryOut(BaseModel):
    """An agreement's figures."""

    id: int
    contract_id: int
    contract_number: str
    customer_id: int
    status: AgreementStatus
    currency: Currency
    debt: MoneyStr
    down_payment: MoneyStr
    instalment_count: int
    monthly_rate: DecimalStr
    financing: MoneyStr
    total: MoneyStr = Field(description="debt + financing; the instalments add up to it exactly.")
    missed_count: int
    signed_on: date
    created_at: datetime
    completed_at: datetime | None
    broken_at: datetime | None
    cancelled_at: datetime | None


class AgreementOut(AgreementSummaryOut):
    """An agreement with its frozen invoices and its schedule."""

    invoices: list[FrozenInvoiceOut]
    instalments: list[InstalmentOut]


class AgreementPage(BaseModel):
    """A page of agreements, newest first."""

    items: list[AgreementSummaryOut]
    next_cursor: str | None


class AgreementQuery(ListQuery):
    """List filters (a customer always sees only its own)."""

    status: AgreementStatus | None = None
    contract_id: Id | None = None
    customer_id: Id | None = None


def _summary(agreement: Agreement, contract_number: str) -> dict[str, object]:
    currency = agreement.currency
    return {
        "id": agreement.id, "contract_id": agreement.contract_id, "contract_number": contract_number,
        "customer_id": agreement.customer_id, "status": agreement.status, "currency": currency,
        "debt": round_money(agreement.debt, currency), "down_payment": round_money(agreement.down_payment, currency),
        "instalment_count": agreement.instalment_count, "monthly_rate": plain_decimal(agreement.monthly_rate),
        "financing": round_money(agreement.financing, currency), "total": round_money(agreement.total, currency),
        "missed_count": agreement.missed_count, "signed_on": agreement.signed_on, "created_at": agreement.created_at,
        "completed_at": agreement.completed_at, "broken_at": agreement.broken_at, "cancelled_at": agreement.cancelled_at,
    }


def summary_out(summary: AgreementSummary) -> AgreementSummaryOut:
    """Serialise an agreement for a list."""
    return AgreementSummaryOut(**_summary(summary.agreement, summary.contract_number))  # type: ignore[arg-type]


def agreement_out(view: AgreementView) -> AgreementOut:
    """Serialise an agreement with its invoices and instalments."""
    currency = view.agreement.currency
    return AgreementOut(
        **_summary(view.agreement, view.contract_number),  # type: ignore[arg-type]
        invoices=[
            FrozenInvoiceOut(id=i.invoice_id, number=i.number, period=i.period, due_on=i.due_on,
                             amount=round_money(i.amount, currency), status=i.status)  # type: ignore[arg-type]
            for i in view.invoices
        ],
        instalments=[
            InstalmentOut(
                number=v.instalment.number, principal=round_money(v.instalment.principal, currency),
                financing=round_money(v.instalment.financing, currency), amount=round_money(v.instalment.amount, currency),
                due_on=v.instalment.due_on, status=v.instalment.status, paid_at=v.instalment.paid_at,  # type: ignore[arg-type]
                coupon_reference=v.coupon.reference, coupon_amount=round_money(v.coupon.amount, currency),
                barcode=BarcodeOut(human_readable=v.coupon.barcode_human_readable, element_string=v.coupon.barcode_element_string),
            )
            for v in view.instalments
        ],
    )


@bp.post("")
@login_required
@validate_request(AgreementIn)
@validate_response(AgreementOut, 201)
@problems(403, 404, 409, 422)
async def create_agreement(data: AgreementIn) -> tuple[AgreementOut, int]:
    """Sign a payment agreement: freeze the contract's unpaid invoices and issue one coupon per instalment."""
    view = await agreement_controller.create_agreement(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), contract_id=data.contract_id,
        invoice_ids=data.invoice_ids, instalment_count=data.instalment_count, down_payment=data.down_payment,
        monthly_rate=data.monthly_rate,
    )
    return agreement_out(view), 201


@bp.get("")
@login_required
@validate_querystring(AgreementQuery)
@validate_response(AgreementPage, 200)
@problems(400)
async def list_agreements(query_args: AgreementQuery) -> AgreementPage:
    """List agreements, newest first (operators: the tenant's, filtered; a customer: its own)."""
    page = await agreement_controller.list_agreements(
        session=db(), tenant=await request_tenant(), caller=await current_caller(),
        filters=AgreementFilters(status=query_args.status, contract_id=query_args.contract_id, customer_id=query_args.customer_id),
        limit=query_args.limit, cursor=query_args.cursor,
    )
    return AgreementPage(items=[summary_out(s) for s in page.items], next_cursor=page.next_cursor)


@bp.get("/<int:agreement_id>")
@login_required
@validate_response(AgreementOut, 200)
@problems(404)
async def get_agreement(agreement_id: int) -> AgreementOut:
    """One agreement with its frozen invoices and instalments."""
    view = await agreement_controller.get_agreement(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), agreement_id=agreement_id
    )
    return agreement_out(view)


@bp.get("/<int:agreement_id>/booklet.pdf")
@login_required
@pdf_document
@problems(404)
async def agreement_booklet(agreement_id: int) -> Response:
    """The printable booklet: one coupon per instalment, each with its GS1-128 barcode."""
    pdf = await agreement_controller.booklet_pdf(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), agreement_id=agreement_id
    )
    response = Response(pdf, content_type="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="cuponera-{agreement_id}.pdf"'
    return response


@bp.post("/<int:agreement_id>/cancel")
@role_required("operator")
@validate_response(AgreementOut, 200)
@problems(404, 409)
async def cancel_agreement(agreement_id: int) -> AgreementOut:
    """Cancel a current agreement nothing was paid on: its invoices return to arrears as they were."""
    view = await agreement_controller.cancel_agreement(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), agreement_id=agreement_id
    )
    return agreement_out(view)

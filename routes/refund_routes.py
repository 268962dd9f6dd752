"""Refund routes: an admin pays back an open credit balance (Idempotency-Key), marks bank transfers paid, lists refunds."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from quart import Blueprint, request
from quart_schema import document_headers, validate_querystring, validate_request, validate_response

from controllers import refund_controller
from controllers.refund_controller import RefundView
from domain.money import round_money
from routes.common import ListQuery, MoneyStr, current_caller, db, problems, request_tenant, role_required, services
from routes.fields import Id, Money, single_line
from routes.payment_routes import IDEMPOTENCY_HEADER, REPLAY_HEADER, PaymentHeaders
from routes.vocabulary import Currency, RefundMethod, RefundStatus

bp = Blueprint("refunds", __name__, url_prefix="/api/v1/refunds")

Reason = single_line(500, min_length=3)
TransferReference = single_line(100, min_length=1)


class RefundIn(BaseModel):
    """Which open credit balance to refund, how much of it (in its currency), how, and why.

    `gateway` refunds to the card of the payment the credit came from; `bank_transfer` stays pending
    until an admin marks it paid.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"credit_balance_id": 12, "amount": "85000", "method": "gateway", "reason": "Pago doble por dos canales"},
    ]})

    credit_balance_id: Id
    amount: Money
    method: RefundMethod
    reason: Reason


class MarkPaidIn(BaseModel):
    """The reference of the bank transfer that paid the refund."""

    transfer_reference: TransferReference


class RefundOut(BaseModel):
    """A refund: `pending` (a bank transfer to make), `paid`, or `failed` (the gateway refused; the money is back on the credit)."""

    id: int
    credit_balance_id: int
    contract_id: int
    contract_number: str
    customer_id: int
    amount: MoneyStr
    currency: Currency
    method: RefundMethod
    status: RefundStatus
    reason: str
    gateway_reference: str | None
    decline_code: str | None
    transfer_reference: str | None
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, view: RefundView) -> RefundOut:
        """Serialise a refund."""
        r = view.refund
        return cls(
            id=r.id, credit_balance_id=r.credit_balance_id, contract_id=r.contract_id, contract_number=view.contract_number,
            customer_id=r.customer_id, amount=round_money(r.amount, r.currency), currency=r.currency, method=r.method,
            status=r.status, reason=r.reason, gateway_reference=r.gateway_reference, decline_code=r.decline_code,
            transfer_reference=r.transfer_reference, created_at=r.created_at, paid_at=r.paid_at,
        )


class RefundQuery(ListQuery):
    """Filters: status and credit balance."""

    status: RefundStatus | None = None
    credit_balance_id: int | None = None


class RefundPage(BaseModel):
    """A page of refunds, newest first."""

    items: list[RefundOut]
    next_cursor: str | None


@bp.post("")
@role_required("admin")
@document_headers(PaymentHeaders)
@validate_request(RefundIn)
@validate_response(RefundOut, 201)
@problems(400, 403, 404, 409, 422)
async def create_refund(data: RefundIn) -> tuple[RefundOut, int, dict[str, str]]:
    """Refund (part of) an open credit balance (admin), exactly once per Idempotency-Key."""
    outcome = await refund_controller.create_refund(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), gateway=services().payment_gateway,
        credit_balance_id=data.credit_balance_id, amount=data.amount, method=data.method, reason=data.reason,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    return RefundOut.of(outcome.view), 201, {REPLAY_HEADER: "true" if outcome.replayed else "false"}


@bp.get("")
@role_required("admin")
@validate_querystring(RefundQuery)
@validate_response(RefundPage, 200)
@problems(400, 403)
async def list_refunds(query_args: RefundQuery) -> RefundPage:
    """The tenant's refunds (admin), newest first."""
    page = await refund_controller.list_refunds(
        session=db(), tenant=await request_tenant(), status=query_args.status,
        credit_balance_id=query_args.credit_balance_id, limit=query_args.limit, cursor=query_args.cursor,
    )
    return RefundPage(items=[RefundOut.of(view) for view in page.items], next_cursor=page.next_cursor)


@bp.post("/<int:refund_id>/mark-paid")
@role_required("admin")
@validate_request(MarkPaidIn)
@validate_response(RefundOut, 200)
@problems(403, 404, 409)
async def mark_refund_paid(refund_id: int, data: MarkPaidIn) -> RefundOut:
    """Record that a pending bank-transfer refund was paid (admin), with the transfer's reference."""
    view = await refund_controller.mark_refund_paid(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), refund_id=refund_id,
        transfer_reference=data.transfer_reference,
    )
    return RefundOut.of(view)

"""Office cash payment routes: an operator records cash taken for a coupon or an invoice (Idempotency-Key), and prints its receipt."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from quart import Blueprint, Response, request
from quart_schema import document_headers, validate_request, validate_response

from controllers import cash_payment_controller
from routes.common import current_caller, db, pdf_document, problems, request_tenant, role_required
from routes.fields import Id, Money, ReferenceText, single_line
from routes.payment_routes import IDEMPOTENCY_HEADER, REPLAY_HEADER, PaymentHeaders, PaymentOut

bp = Blueprint("cash_payments", __name__, url_prefix="/api/v1/cash-payments")

Office = single_line(60)


class CashPaymentIn(BaseModel):
    """What the cashier scanned or typed (a coupon's or an invoice's reference, or an invoice id), the cash received and the office.

    The amount must be exactly what the coupon or invoice asks (a 422 `amount_mismatch` otherwise).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["coupon_reference"], "properties": {"coupon_reference": {"type": "string"}, "invoice_id": {"type": "null"}}},
                {"required": ["invoice_id"], "properties": {"invoice_id": {"type": "integer"}, "coupon_reference": {"type": "null"}}},
            ],
            "examples": [
                {"coupon_reference": "4818305526094617", "amount": "85000", "office": "Sede Centro"},
                {"invoice_id": 1201, "amount": "85000", "office": "Sede Centro"},
            ],
        }
    )

    coupon_reference: ReferenceText | None = None
    invoice_id: Id | None = None
    amount: Money = Field(gt=0)
    office: Office

    @model_validator(mode="after")
    def exactly_one(self) -> CashPaymentIn:
        """Exactly one of the two ways to name what is paid."""
        if (self.coupon_reference is None) == (self.invoice_id is None):
            raise ValueError("send either coupon_reference or invoice_id")
        return self


class CashPaymentOut(PaymentOut):
    """The cash payment (channel `cash`, approved at once), the office that took it and where its receipt is."""

    office: str
    receipt_url: str


@bp.post("")
@role_required("operator")
@document_headers(PaymentHeaders)
@validate_request(CashPaymentIn)
@validate_response(CashPaymentOut, 201)
@problems(404, 409, 410)
async def record_cash_payment(data: CashPaymentIn) -> tuple[CashPaymentOut, int, dict[str, str]]:
    """Record cash received at an office (operator, admin), exactly once per Idempotency-Key; settles like a bank collection."""
    outcome = await cash_payment_controller.record_cash_payment(
        session=db(),
        tenant=await request_tenant(),
        caller=await current_caller(),
        coupon_reference=data.coupon_reference,
        invoice_id=data.invoice_id,
        amount=data.amount,
        office=data.office,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    payment = outcome.payment
    assert payment.office is not None
    body = CashPaymentOut(
        **PaymentOut.of(payment).model_dump(), office=payment.office, receipt_url=f"{bp.url_prefix}/{payment.id}/receipt.pdf"
    )
    # As for cards: 201 for the first request and its replays alike, a replay marked as such.
    return body, 201, {REPLAY_HEADER: "true" if outcome.replayed else "false"}


@bp.get("/<int:payment_id>/receipt.pdf")
@role_required("operator")
@pdf_document
@problems(404)
async def get_cash_payment_receipt(payment_id: int) -> Response:
    """The printable receipt of a cash payment (operator, admin): reference, amount, office, invoices; marked if reversed."""
    pdf = await cash_payment_controller.cash_receipt_pdf(session=db(), tenant=await request_tenant(), payment_id=payment_id)
    response = Response(pdf, content_type="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="recibo-{payment_id}.pdf"'
    return response

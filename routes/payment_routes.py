"""Payment routes: pay a coupon by card (Idempotency-Key), the gateway's signed webhook, and admin reversal."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints
from quart import Blueprint, request
from quart_rate_limiter import rate_limit
from quart_schema import (
    document_headers,
    document_request,
    validate_request,
    validate_response,
)

from controllers import payment_controller
from controllers.payment_controller import PaymentSnapshot
from domain.payment_webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from routes.common import (
    MoneyStr,
    current_caller,
    db,
    problems,
    request_tenant,
    require_principal,
    role_required,
    services,
)
from routes.rate_limits import LOOKUP_PER_MINUTE, client_ip
from routes.security import csrf_exempt
from routes.fields import ReferenceText

bp = Blueprint("payments", __name__, url_prefix="/api/v1/payments")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"


class PaymentIn(BaseModel):
    """The coupon to pay and the gateway's card token (sandbox: tok_approved, tok_declined, tok_insufficient_funds, tok_pending)."""

    coupon_reference: ReferenceText
    card_token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PaymentHeaders(BaseModel):
    """Required on payment creation: a unique key per payment intent (e.g. a UUID); retries reuse it."""

    # quart-schema marks a header required only from the property's own "required".
    idempotency_key: str = Field(
        alias=IDEMPOTENCY_HEADER,
        max_length=payment_controller.MAX_IDEMPOTENCY_KEY_LENGTH,
        json_schema_extra={"required": True},
    )


class PaymentOut(BaseModel):
    """A payment: `status` is approved, declined, pending, or reversed after an admin reversal."""

    id: int
    status: str
    amount: MoneyStr
    currency: str
    coupon_reference: str
    created_at: datetime
    channel: str
    decline_code: str | None = None
    settled_at: datetime | None = None
    reversed_at: datetime | None = None
    reversal_reason: str | None = None

    @classmethod
    def of(cls, payment: PaymentSnapshot) -> PaymentOut:
        """The API shape of a payment snapshot (a first response and its replays are built the same way)."""
        return cls(**asdict(payment))


class WebhookIn(BaseModel):
    """A settlement, signed with HMAC-SHA256 over `<X-Webhook-Timestamp>.<raw body>` in `X-Webhook-Signature: v1=<hex>`."""

    type: str = "payment.settled"
    gateway_reference: str | None = None
    merchant_reference: str | None = None
    status: str
    decline_code: str | None = None


class WebhookHeaders(BaseModel):
    """The webhook's timestamp (Unix seconds, within 300 s of ours) and signature."""

    timestamp: str = Field(alias=TIMESTAMP_HEADER)
    signature: str = Field(alias=SIGNATURE_HEADER)


class WebhookOut(BaseModel):
    """The acknowledgement: the payment, its status now, and whether this delivery changed it."""

    received: bool
    payment_id: int
    status: str
    applied: bool


class ReversalIn(BaseModel):
    """Why the payment is reversed."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


@bp.post("")
@rate_limit(LOOKUP_PER_MINUTE, timedelta(minutes=1), key_function=client_ip)
@document_headers(PaymentHeaders)
@validate_request(PaymentIn)
@validate_response(PaymentOut, 201)
@problems(403, 404, 409, 410, 429)
async def create_payment(data: PaymentIn) -> tuple[PaymentOut, int, dict[str, str]]:
    """Pay a coupon by card, exactly once per Idempotency-Key."""
    caller = await current_caller()
    if caller.anonymous:
        caller = replace(caller, anonymous_namespace=data.coupon_reference)
    outcome = await payment_controller.pay_coupon(
        session=db(),
        tenant=await request_tenant(),
        caller=caller,
        gateway=services().payment_gateway,
        coupon_reference=data.coupon_reference,
        card_token=data.card_token,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    # 201 for the first request and its replays alike: a replay is the same response, marked as such.
    return PaymentOut.of(outcome.payment), 201, {REPLAY_HEADER: "true" if outcome.replayed else "false"}


@bp.post("/webhook")
@csrf_exempt
@document_headers(WebhookHeaders)
@document_request(WebhookIn)
@validate_response(WebhookOut, 200)
@problems(400, 401, 404, 422)
async def payment_webhook() -> WebhookOut:
    """The gateway's signed settlement of a pending payment; replays are acknowledged without effect."""
    outcome = await payment_controller.handle_webhook(
        session=db(),
        secret=services().settings.payment_webhook_secret,
        body=await request.get_data(),
        timestamp_header=request.headers.get(TIMESTAMP_HEADER),
        signature_header=request.headers.get(SIGNATURE_HEADER),
    )
    return WebhookOut(received=True, payment_id=outcome.payment_id, status=outcome.status, applied=outcome.applied)


@bp.post("/<int:payment_id>/reversal")
@role_required("admin")
@validate_request(ReversalIn)
@validate_response(PaymentOut, 200)
@problems(404, 409)
async def reverse_payment(payment_id: int, data: ReversalIn) -> PaymentOut:
    """Reverse an approved payment (admin): its invoices are unpaid again and its coupon is cancelled."""
    principal = await require_principal()
    reversed_payment = await payment_controller.reverse_payment(
        session=db(), tenant=principal.tenant, admin_user_id=principal.user.id, payment_id=payment_id, reason=data.reason
    )
    return PaymentOut.of(reversed_payment)

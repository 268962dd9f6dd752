"""Payment routes: pay a coupon by card (Idempotency-Key), the gateway's signed webhook, admin reversal, staff search and exceptions."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from quart import Blueprint, request
from quart_rate_limiter import rate_limit
from quart_schema import (
    document_headers,
    document_request,
    validate_querystring,
    validate_request,
    validate_response,
)

from controllers import payment_controller, payment_search_controller
from controllers.payment_controller import PaymentSnapshot
from controllers.payment_search_controller import CreditBalanceRow, PaymentDetail, PaymentRow
from domain.money import round_money
from domain.payment_webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from routes.common import (
    ListQuery,
    MoneyStr,
    current_caller,
    db,
    problems,
    request_tenant,
    require_principal,
    role_required,
    services,
)
from routes.fields import Id, ReferenceText
from routes.rate_limits import LOOKUP_PER_MINUTE, client_ip
from routes.security import csrf_exempt
from routes.transaction_routes import TransactionOut, transaction_out
from routes.vocabulary import (
    CouponStatus,
    CreditBalanceReason,
    CreditBalanceStatus,
    Currency,
    InvoiceStatus,
    PaymentChannel,
    PaymentStatus,
)

bp = Blueprint("payments", __name__, url_prefix="/api/v1/payments")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"


class PaymentIn(BaseModel):
    """The coupon to pay and the gateway's card token (sandbox: tok_approved, tok_declined, tok_insufficient_funds, tok_pending)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"coupon_reference": "4818305526094617", "card_token": "tok_approved"},
    ]})

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

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 901, "status": "approved", "amount": "85000", "currency": "COP",
        "coupon_reference": "4818305526094617", "created_at": "2026-12-06T15:03:40Z", "channel": "card",
        "decline_code": None, "settled_at": "2026-12-06T15:03:41Z", "reversed_at": None, "reversal_reason": None,
    }]})

    id: int
    status: PaymentStatus
    amount: MoneyStr
    currency: Currency
    coupon_reference: str
    created_at: datetime
    channel: PaymentChannel
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


SearchText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]


class PaymentQuery(ListQuery):
    """Staff filters; `from`/`to` are whole days of `created_at` in the tenant's time zone, both included."""

    model_config = ConfigDict(populate_by_name=True)

    coupon_reference: SearchText | None = None
    invoice_id: Id | None = None
    invoice_number: SearchText | None = None
    contract_number: SearchText | None = None
    customer_id: Id | None = None
    national_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None = None
    status: PaymentStatus | None = None
    channel: PaymentChannel | None = None
    date_from: date | None = Field(None, alias="from")
    date_to: date | None = Field(None, alias="to")


class StaffPaymentOut(PaymentOut):
    """A payment as staff see it: with the customer who paid, and the office that took it if it was paid in cash."""

    customer_id: int
    office: str | None = None

    @classmethod
    def of_row(cls, row: PaymentRow) -> StaffPaymentOut:
        """The API shape of a listed payment."""
        return cls(**asdict(row.payment), customer_id=row.customer_id)


class PaymentPage(BaseModel):
    """A page of payments, newest first."""

    items: list[StaffPaymentOut]
    next_cursor: str | None


class PaymentCouponOut(BaseModel):
    """The coupon a payment paid."""

    reference: str
    status: CouponStatus
    amount: MoneyStr
    invoices_total: MoneyStr
    channel_fee: MoneyStr
    expires_at: datetime


class PaymentInvoiceOut(BaseModel):
    """An invoice on the payment's coupon; `allocated` is what this payment settled on it (null if it settled nothing).

    `credited` is its share held as a credit balance instead (see GET /payments/exceptions), else null.
    """

    id: int
    number: str
    contract_number: str
    period: str
    status: InvoiceStatus
    amount_due_on_coupon: MoneyStr
    allocated: MoneyStr | None
    credited: MoneyStr | None = None


class ReversalOut(BaseModel):
    """Who reversed the payment, when and why."""

    reversed_at: datetime
    reversed_by: int | None
    reason: str | None


class PaymentDetailOut(StaffPaymentOut):
    """One payment in full: its coupon, invoices, ledger entries and reversal (null unless reversed)."""

    coupon: PaymentCouponOut
    invoices: list[PaymentInvoiceOut]
    ledger_entries: list[TransactionOut]
    reversal: ReversalOut | None

    @classmethod
    def of_detail(cls, detail: PaymentDetail) -> PaymentDetailOut:
        """The API shape of a payment with everything around it."""
        payment, coupon = detail.row.payment, detail.coupon
        currency = payment.currency
        return cls(
            **asdict(payment),
            customer_id=detail.row.customer_id,
            coupon=PaymentCouponOut(
                reference=coupon.reference,
                status=coupon.status,
                amount=round_money(coupon.amount, currency),
                invoices_total=round_money(coupon.invoices_total, currency),
                channel_fee=round_money(coupon.channel_fee, currency),
                expires_at=coupon.expires_at,
            ),
            invoices=[
                PaymentInvoiceOut(
                    id=line.invoice_id,
                    number=line.number,
                    contract_number=line.contract_number,
                    period=line.period,
                    status=line.status,
                    amount_due_on_coupon=round_money(line.coupon_amount, currency),
                    allocated=None if line.allocated is None else round_money(line.allocated, currency),
                    credited=None if line.credited is None else round_money(line.credited, currency),
                )
                for line in detail.invoices
            ],
            ledger_entries=[transaction_out(entry) for entry in detail.ledger],
            reversal=None
            if payment.reversed_at is None
            else ReversalOut(reversed_at=payment.reversed_at, reversed_by=detail.reversed_by, reason=payment.reversal_reason),
        )




class PaymentExceptionQuery(ListQuery):
    """Filters: `open` credits still held (the default lists every status), one contract."""

    status: CreditBalanceStatus | None = None
    contract_number: SearchText | None = None


class PaymentExceptionOut(BaseModel):
    """An approved payment's share that no invoice could take, held as a credit balance on the contract.

    `reason`: the invoice was voided, already paid through another channel, or carried into a later
    invoice by the time the approval arrived. `status`: `open` (held), `used` (all of it refunded or applied
    to later invoices), `reversed` (its payment was reversed). `used_amount`: what refunds and bill runs
    took so far; `open_amount` = `amount` - `used_amount` while open, else 0.
    """

    id: int
    status: CreditBalanceStatus
    reason: CreditBalanceReason
    amount: MoneyStr
    used_amount: MoneyStr
    open_amount: MoneyStr
    currency: Currency
    contract_number: str
    customer_id: int
    payment_id: int | None
    coupon_reference: str | None
    note_number: str | None = None
    invoice_id: int
    invoice_number: str
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def of_row(cls, row: CreditBalanceRow) -> PaymentExceptionOut:
        """The API shape of a listed credit balance."""
        credit = row.credit
        return cls(
            id=credit.id,
            status=credit.status,
            reason=credit.reason,
            amount=round_money(credit.amount, credit.currency),
            used_amount=round_money(credit.used_amount, credit.currency),
            open_amount=round_money(credit.amount - credit.used_amount if credit.status == "open" else Decimal(0), credit.currency),
            currency=credit.currency,
            contract_number=row.contract_number,
            customer_id=credit.customer_id,
            payment_id=credit.payment_id,
            coupon_reference=row.coupon_reference,
            note_number=row.note_number,
            invoice_id=credit.invoice_id,
            invoice_number=row.invoice_number,
            created_at=credit.created_at,
            closed_at=credit.closed_at,
        )


class PaymentExceptionPage(BaseModel):
    """A page of payment exceptions, newest first."""

    items: list[PaymentExceptionOut]
    next_cursor: str | None


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
        session=db(short_writes=True),  # a few rows by key: see SqlClient.session
        tenant=await request_tenant(),
        caller=caller,
        gateway=services().payment_gateway,
        coupon_reference=data.coupon_reference,
        card_token=data.card_token,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    # 201 for the first request and its replays alike: a replay is the same response, marked as such.
    return PaymentOut.of(outcome.payment), 201, {REPLAY_HEADER: "true" if outcome.replayed else "false"}


@bp.get("")
@role_required("operator")
@validate_querystring(PaymentQuery)
@validate_response(PaymentPage, 200)
@problems(400, 422)
async def search_payments(query_args: PaymentQuery) -> PaymentPage:
    """Find payments (operator, admin) by coupon, invoice, contract, customer, status, channel and dates; newest first."""
    page = await payment_search_controller.search_payments(
        session=db(), tenant=await request_tenant(), **query_args.model_dump(exclude={"limit", "cursor"}),
        limit=query_args.limit, cursor=query_args.cursor,
    )
    return PaymentPage(items=[StaffPaymentOut.of_row(row) for row in page.items], next_cursor=page.next_cursor)


@bp.get("/exceptions")
@role_required("operator")
@validate_querystring(PaymentExceptionQuery)
@validate_response(PaymentExceptionPage, 200)
@problems(400, 422)
async def list_payment_exceptions(query_args: PaymentExceptionQuery) -> PaymentExceptionPage:
    """Approved money no invoice could take (operator, admin): credit balances on contracts, newest first."""
    page = await payment_search_controller.search_payment_exceptions(
        session=db(), tenant=await request_tenant(), status=query_args.status, contract_number=query_args.contract_number,
        limit=query_args.limit, cursor=query_args.cursor,
    )
    return PaymentExceptionPage(items=[PaymentExceptionOut.of_row(row) for row in page.items], next_cursor=page.next_cursor)


@bp.get("/<int:payment_id>")
@role_required("operator")
@validate_response(PaymentDetailOut, 200)
@problems(404)
async def get_payment(payment_id: int) -> PaymentDetailOut:
    """One payment (operator, admin) with its coupon, invoices, ledger entries and any reversal."""
    detail = await payment_search_controller.get_payment(session=db(), tenant=await request_tenant(), payment_id=payment_id)
    return PaymentDetailOut.of_detail(detail)


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

"""Coupon routes: create a payment coupon, read it by reference, its barcode SVG and its printable PDF."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator
from quart import Blueprint, Response
from quart_rate_limiter import rate_limit
from quart_schema import validate_request, validate_response

from controllers import coupon_controller
from controllers.coupon_controller import CouponView
from domain.caller import Caller
from domain.money import round_money
from routes.common import (
    MoneyStr,
    current_caller,
    db,
    optional_principal,
    pdf_document,
    problems,
    request_tenant,
    svg_image,
)
from routes.fields import ContractNumberText
from routes.rate_limits import LOOKUP_PER_MINUTE, client_ip
from routes.vocabulary import CouponStatus, Currency

bp = Blueprint("coupons", __name__, url_prefix="/api/v1/coupons")

ContractNumber = ContractNumberText
# The SVG's bars are drawn with inline styles; everything else stays forbidden.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


class CouponIn(BaseModel):
    """What to pay: invoice ids (the payment cart, logged in) or a contract number (its unpaid invoices)."""

    # The document says what `exactly_one` enforces, so clients and fuzzers send one of the two.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["invoice_ids"], "properties": {"invoice_ids": {"type": "array"}, "contract_number": {"type": "null"}}},
                {"required": ["contract_number"], "properties": {"contract_number": {"type": "string"}, "invoice_ids": {"type": "null"}}},
            ],
            "examples": [{"invoice_ids": [1201, 1187]}, {"contract_number": "100234"}],
        }
    )

    invoice_ids: list[int] | None = Field(None, min_length=1, max_length=coupon_controller.MAX_INVOICES_PER_COUPON)
    contract_number: ContractNumber | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> CouponIn:
        """Exactly one of the two ways to name the invoices."""
        if (self.invoice_ids is None) == (self.contract_number is None):
            raise ValueError("send either invoice_ids or contract_number")
        return self


class BarcodeOut(BaseModel):
    """The GS1-128 data: as printed under the bars, and as scanned (FNC1 as the GS character)."""

    human_readable: str
    element_string: str


class CouponInvoiceOut(BaseModel):
    """An invoice the coupon pays; `id` is null for anonymous quick-pay."""

    id: int | None
    number: str
    contract_number: str
    period: str
    amount_due: MoneyStr
    due_on: date


class CouponOut(BaseModel):
    """A payment coupon. `amount` = `invoices_total` + `channel_fee`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "reference": "4818305526094617",
        "amount": "85000",
        "currency": "COP",
        "expires_at": "2026-12-15T04:59:59Z",
        "due_on": "2026-12-14",
        "status": "active",
        "invoices_total": "85000",
        "channel_fee": "0",
        "holder_name": "A*** P***",
        "invoices": [{"id": None, "number": "FE-2026-000123", "contract_number": "100234", "period": "2026-11",
                      "amount_due": "85000", "due_on": "2026-12-14"}],
        "barcode": {
            "human_readable": "(415)7709998000018(8020)4818305526094617(3900)85000(96)20261214",
            "element_string": "415770999800001880204818305526094617\u001d390085000\u001d9620261214",
        },
        "created_at": "2026-12-06T15:02:11Z",
        "payment_id": None,
    }]})

    reference: str
    amount: MoneyStr
    currency: Currency
    expires_at: datetime
    due_on: date
    status: CouponStatus
    invoices_total: MoneyStr
    channel_fee: MoneyStr
    holder_name: str
    invoices: list[CouponInvoiceOut]
    barcode: BarcodeOut
    created_at: datetime
    # The approved payment that paid it; null when unpaid, and always null for anonymous quick-pay.
    payment_id: int | None


async def logged_in() -> bool:
    """Skip the per-IP read limit for users with a session: only anonymous reads can count references."""
    return await optional_principal() is not None


def coupon_out(view: CouponView, caller: Caller) -> CouponOut:
    """Serialise a coupon for this caller."""
    coupon = view.coupon
    currency = coupon.currency
    return CouponOut(
        reference=coupon.reference,
        amount=round_money(coupon.amount, currency),
        currency=currency,
        expires_at=coupon.expires_at,
        due_on=coupon.due_on,
        status=view.status,
        invoices_total=round_money(coupon.invoices_total, currency),
        channel_fee=round_money(coupon.channel_fee, currency),
        holder_name=view.holder_name,
        invoices=[
            CouponInvoiceOut(
                id=None if caller.anonymous else line.invoice_id,
                number=line.number,
                contract_number=line.contract_number,
                period=line.period,
                amount_due=round_money(line.amount_due, currency),
                due_on=line.due_on,
            )
            for line in view.invoices
        ],
        barcode=BarcodeOut(human_readable=coupon.barcode_human_readable, element_string=coupon.barcode_element_string),
        created_at=coupon.created_at,
        payment_id=None if caller.anonymous else view.payment_id,
    )


@bp.post("")
@rate_limit(LOOKUP_PER_MINUTE, timedelta(minutes=1), key_function=client_ip)
@validate_request(CouponIn)
@validate_response(CouponOut, 201)
@problems(403, 404, 409, 429)
async def create_coupon(data: CouponIn) -> tuple[CouponOut, int]:
    """Create a payment coupon for invoice ids or a contract number's unpaid invoices."""
    caller = await current_caller()
    view = await coupon_controller.create_coupon(
        session=db(short_writes=True),  # a few rows by key: see SqlClient.session
        tenant=await request_tenant(),
        caller=caller,
        invoice_ids=data.invoice_ids,
        contract_number=data.contract_number,
    )
    return coupon_out(view, caller), 201


@bp.get("/<reference>")
@rate_limit(LOOKUP_PER_MINUTE, timedelta(minutes=1), key_function=client_ip, skip_function=logged_in)
@validate_response(CouponOut, 200)
@problems(404, 429)
async def get_coupon(reference: str) -> CouponOut:
    """A coupon by its reference (its customer, staff, or anyone holding the reference)."""
    caller = await current_caller()
    view = await coupon_controller.get_coupon(session=db(), tenant=await request_tenant(), caller=caller, reference=reference)
    return coupon_out(view, caller)


@bp.get("/<reference>/barcode.svg")
@svg_image
@rate_limit(LOOKUP_PER_MINUTE, timedelta(minutes=1), key_function=client_ip, skip_function=logged_in)
@problems(404, 429)
async def coupon_barcode(reference: str) -> Response:
    """The coupon's GS1-128 barcode as an SVG image."""
    svg = await coupon_controller.coupon_barcode_svg(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), reference=reference
    )
    response = Response(svg, content_type="image/svg+xml")
    response.headers["Content-Security-Policy"] = SVG_CSP
    return response


@bp.get("/<reference>/pdf")
@pdf_document
@rate_limit(LOOKUP_PER_MINUTE, timedelta(minutes=1), key_function=client_ip, skip_function=logged_in)
@problems(404, 429)
async def coupon_pdf(reference: str) -> Response:
    """The printable coupon as a PDF: barcode, reference, invoices, amount and due date."""
    pdf = await coupon_controller.coupon_pdf(
        session=db(), tenant=await request_tenant(), caller=await current_caller(), reference=reference
    )
    response = Response(pdf, content_type="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="cupon-{reference}.pdf"'
    return response

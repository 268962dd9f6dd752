"""Invoice routes: operators search, read, print and void invoices; customers read and print their own."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import document_response, validate_querystring, validate_request, validate_response

from controllers import invoice_controller
from controllers.errors import NotFound
from controllers.invoice_controller import InvoiceView
from controllers.pagination import Page
from domain.money import money_rounder
from routes.common import (
    ListQuery,
    MoneyStr,
    PeriodStr,
    customer_required,
    db,
    pdf_document,
    problems,
    request_tenant,
    require_principal,
    role_required,
)
from routes.fields import plain_decimal_text
from routes.vocabulary import Currency, InvoiceLineKind, InvoiceStatus

bp = Blueprint("invoices", __name__, url_prefix="/api/v1")



class InvoiceLineOut(BaseModel):
    """One line of an invoice; amount = quantity x unit_price rounded to the currency."""

    kind: InvoiceLineKind
    description: str
    quantity: MoneyStr
    unit_price: MoneyStr
    amount: MoneyStr


class InvoiceOut(BaseModel):
    """An invoice with its lines and totals; money is a decimal string in `currency`."""

    id: int
    number: str
    contract_id: int
    contract_number: str
    customer_id: int
    period: str
    issued_on: date
    due_on: date
    status: InvoiceStatus
    disputed: bool
    consumption: MoneyStr
    unit: str
    reading_kind: str | None
    reading_flags: list[str]
    lines: list[InvoiceLineOut]
    arrears: MoneyStr
    subtotal: MoneyStr
    tax: MoneyStr
    total: MoneyStr
    amount_due: MoneyStr
    currency: Currency
    paid_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None
    # Set when a later invoice carried this one's balance as arrears: pay that invoice instead.
    carried_into_invoice_id: int | None
    # The approved payment that settled it (see GET /api/v1/payments/{id}); null when unpaid.
    payment_id: int | None


class InvoiceList(BaseModel):
    """A page of invoices, newest period first."""

    items: list[InvoiceOut]
    next_cursor: str | None


class MyInvoiceQuery(ListQuery):
    """Filters for a customer's own invoices."""

    contract_number: str | None = Field(None, max_length=30)
    period: PeriodStr | None = None
    status: InvoiceStatus | None = None


class InvoiceQuery(MyInvoiceQuery):
    """Filters for the operator's invoice search."""

    national_id: str | None = Field(None, max_length=20)


class VoidIn(BaseModel):
    """Why the invoice is voided."""

    reason: str = Field(min_length=3, max_length=500)


def _moment(value: datetime | None) -> str | None:
    """A timestamp as pydantic writes it in JSON: ISO 8601, UTC as `Z`."""
    if value is None:
        return None
    text = value.isoformat()
    return f"{text[:-6]}Z" if text.endswith("+00:00") else text


def invoice_json(view: InvoiceView) -> dict[str, Any]:
    """An invoice as its JSON object (`InvoiceOut`'s fields), money rounded to its currency's minor unit
    ("20870", "1520.50").

    Built straight from the typed database values into JSON values, once: list pages dump a page of
    these without a model per invoice and per line (see `invoice_page_response`).
    """
    # By key through the row's mapping: a Row's attribute access costs about six times as much, and
    # a page reads two dozen fields of each of its invoices.
    invoice = view.invoice._mapping
    currency = invoice["currency"]
    rounded = money_rounder(currency)  # looked up once for the invoice's dozens of amounts
    plain = plain_decimal_text  # as DecimalStr writes it

    return {
        "id": invoice["id"],
        "number": invoice["number"],
        "contract_id": invoice["contract_id"],
        "contract_number": view.contract_number,
        "customer_id": invoice["customer_id"],
        "period": invoice["period"],
        "issued_on": invoice["issued_on"].isoformat(),
        "due_on": invoice["due_on"].isoformat(),
        "status": invoice["status"],
        "disputed": invoice["disputed"],
        "consumption": plain(invoice["consumption"]),
        "unit": view.unit,
        "reading_kind": view.reading_kind,
        "reading_flags": list(view.reading_flags),
        # Rows of invoice_controller's `_VIEW_LINES`, unpacked by position: cheaper than reading each
        # row's fields by name, which showed in the profile of a 12-invoice page.
        "lines": [
            {
                "kind": kind,
                "description": description,
                "quantity": plain(quantity),
                "unit_price": plain(unit_price),
                "amount": str(rounded(amount)),
            }
            for _invoice_id, kind, description, quantity, unit_price, amount in view.lines
        ],
        "arrears": str(rounded(invoice["arrears"])),
        "subtotal": str(rounded(invoice["subtotal"])),
        "tax": str(rounded(invoice["tax"])),
        "total": str(rounded(invoice["total"])),
        "amount_due": str(rounded(invoice["amount_due"])),
        "currency": currency,
        "paid_at": _moment(invoice["paid_at"]),
        "voided_at": _moment(invoice["voided_at"]),
        "void_reason": invoice["void_reason"],
        "carried_into_invoice_id": invoice["carried_into_invoice_id"],
        "payment_id": view.payment_id,
    }


def invoice_out(view: InvoiceView) -> InvoiceOut:
    """An invoice as the `InvoiceOut` model, for the routes that answer one invoice through `validate_response`."""
    return InvoiceOut.model_validate(invoice_json(view))


def invoice_page_response(page: Page[InvoiceView]) -> Response:
    """A page of invoices as `InvoiceList` JSON, dumped once (the route documents the model with
    `document_response`; the contract test checks the answers against it). `orjson`: every value is
    already a JSON value, so the app provider's key sorting and fallbacks have nothing to add, and it
    dumps several times faster than `json.dumps` (UTF-8, compact, as before)."""
    body = {"items": [invoice_json(view) for view in page.items], "next_cursor": page.next_cursor}
    return Response(orjson.dumps(body), content_type="application/json")


def pdf_response(filename: str, data: bytes) -> Response:
    """A PDF shown inline by browsers, saved under the invoice number."""
    return Response(
        data, content_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )


async def _own_customer_id() -> int:
    """The customer record behind this login; a login not linked to one owns no invoices."""
    customer_id = (await require_principal()).user.customer_id
    if customer_id is None:
        raise NotFound("No such invoice.", code="not_found")
    return customer_id


@bp.get("/invoices")
@role_required("operator")
@validate_querystring(InvoiceQuery)
@document_response(InvoiceList, 200)
@problems(400)
async def search_invoices(query_args: InvoiceQuery) -> Response:
    """Search invoices by contract number, national ID, period and status."""
    # By national ID the page is index probes (see search_invoices); other filters may scan, off the loop.
    page = await invoice_controller.search_invoices(
        session=db(short_reads=bool(query_args.national_id)), tenant=await request_tenant(),
        **query_args.model_dump(exclude={"limit", "cursor"}),
        limit=query_args.limit, cursor=query_args.cursor,
    )
    return invoice_page_response(page)


@bp.get("/invoices/<int:invoice_id>")
@role_required("operator")
@validate_response(InvoiceOut, 200)
@problems(404)
async def get_invoice(invoice_id: int) -> InvoiceOut:
    """Get one invoice with its lines."""
    view = await invoice_controller.get_invoice(session=db(short_reads=True), tenant=await request_tenant(), invoice_id=invoice_id)
    return invoice_out(view)


@bp.get("/invoices/<int:invoice_id>/pdf")
@role_required("operator")
@pdf_document
@problems(404)
async def get_invoice_pdf(invoice_id: int) -> Response:
    """The invoice as a printable PDF."""
    filename, data = await invoice_controller.invoice_pdf(
        session=db(short_reads=True), tenant=await request_tenant(), invoice_id=invoice_id
    )
    return pdf_response(filename, data)


@bp.post("/invoices/<int:invoice_id>/void")
@role_required("operator")
@validate_request(VoidIn)
@validate_response(InvoiceOut, 200)
@problems(404, 409)
async def void_invoice(invoice_id: int, data: VoidIn) -> InvoiceOut:
    """Void an issued or overdue invoice, with a reason."""
    view = await invoice_controller.void_invoice(
        session=db(), tenant=await request_tenant(), invoice_id=invoice_id, reason=data.reason.strip()
    )
    return invoice_out(view)


class ResendOut(BaseModel):
    """The invoice email was queued again; `resend` counts this invoice's re-sends."""

    queued: bool
    resend: int


@bp.post("/invoices/<int:invoice_id>/resend")
@role_required("operator")
@validate_response(ResendOut, 202)
@problems(404, 409, 429)
async def resend_invoice(invoice_id: int) -> tuple[ResendOut, int]:
    """Queue the invoice email (with its PDF) to the customer again; at most 3 times in 24 hours."""
    number = await invoice_controller.resend_invoice(session=db(), tenant=await request_tenant(), invoice_id=invoice_id)
    return ResendOut(queued=True, resend=number), 202


@bp.get("/me/invoices")
@customer_required
@validate_querystring(MyInvoiceQuery)
@document_response(InvoiceList, 200)
@problems(400)
async def my_invoices(query_args: MyInvoiceQuery) -> Response:
    """The logged-in customer's invoices, newest period first."""
    customer_id = (await require_principal()).user.customer_id
    if customer_id is None:
        return invoice_page_response(Page(items=[], next_cursor=None))
    page = await invoice_controller.search_invoices(  # one customer's: index probes
        session=db(short_reads=True), tenant=await request_tenant(), customer_id=customer_id,
        **query_args.model_dump(exclude={"limit", "cursor"}), limit=query_args.limit, cursor=query_args.cursor,
    )
    return invoice_page_response(page)


@bp.get("/me/invoices/<int:invoice_id>")
@customer_required
@validate_response(InvoiceOut, 200)
@problems(404)
async def my_invoice(invoice_id: int) -> InvoiceOut:
    """One of the logged-in customer's invoices."""
    view = await invoice_controller.get_invoice(
        session=db(short_reads=True), tenant=await request_tenant(), invoice_id=invoice_id,
        customer_id=await _own_customer_id(),
    )
    return invoice_out(view)


@bp.get("/me/invoices/<int:invoice_id>/pdf")
@customer_required
@pdf_document
@problems(404)
async def my_invoice_pdf(invoice_id: int) -> Response:
    """One of the logged-in customer's invoices as a PDF."""
    filename, data = await invoice_controller.invoice_pdf(
        session=db(short_reads=True), tenant=await request_tenant(), invoice_id=invoice_id,
        customer_id=await _own_customer_id(),
    )
    return pdf_response(filename, data)

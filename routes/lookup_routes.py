"""Invoice lookup routes: public quick-pay by contract number (masked, rate limited) and the customer's own lookup."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_rate_limiter import rate_limit
from quart_schema import validate_querystring, validate_response

from controllers import lookup_controller
from controllers.lookup_controller import LookupResult
from domain.money import round_money
from routes.common import (
    MoneyStr,
    customer_required,
    db,
    problems,
    request_tenant,
    require_principal,
)
from routes.fields import ContractNumberText
from routes.rate_limits import LOOKUP_PER_MINUTE, client_ip
from routes.vocabulary import Currency, InvoiceStatus

bp = Blueprint("lookup", __name__, url_prefix="/api/v1")


class LookupQuery(BaseModel):
    """The contract number printed on the bill."""

    # quart-schema marks a parameter required only from the property's own "required".
    contract_number: ContractNumberText = Field(json_schema_extra={"required": True})


class PublicInvoiceOut(BaseModel):
    """An unpaid invoice, as quick-pay shows it."""

    number: str
    period: str
    amount_due: MoneyStr
    due_on: date
    status: InvoiceStatus


class PublicLookupOut(BaseModel):
    """The masked holder name and the unpaid invoices of a contract."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "contract_number": "100234", "holder_name": "A*** P***", "currency": "COP", "total_due": "85000",
        "invoices": [{"number": "FE-2026-000123", "period": "2026-11", "amount_due": "85000",
                      "due_on": "2026-12-14", "status": "issued"}],
    }]})

    contract_number: str
    holder_name: str
    currency: Currency
    total_due: MoneyStr
    invoices: list[PublicInvoiceOut]


class OwnInvoiceOut(PublicInvoiceOut):
    """An unpaid invoice of the customer's own contract, with its id for `POST /api/v1/coupons`."""

    id: int


class OwnLookupOut(BaseModel):
    """The customer's own contract: full holder name and unpaid invoices (possibly none)."""

    contract_number: str
    holder_name: str
    currency: Currency
    total_due: MoneyStr
    invoices: list[OwnInvoiceOut]


def _invoices(result: LookupResult, *, with_ids: bool) -> list[dict[str, object]]:
    return [
        {
            **({"id": i.invoice_id} if with_ids else {}),
            "number": i.number,
            "period": i.period,
            "amount_due": round_money(i.amount_due, result.currency),
            "due_on": i.due_on,
            "status": i.status,
        }
        for i in result.invoices
    ]


@bp.get("/invoice-lookup")
@rate_limit(LOOKUP_PER_MINUTE, timedelta(minutes=1), key_function=client_ip)
@validate_querystring(LookupQuery)
@validate_response(PublicLookupOut, 200)
@problems(404, 429)
async def public_lookup(query_args: LookupQuery) -> PublicLookupOut:
    """Quick-pay lookup: masked holder name and unpaid invoices of a contract number."""
    result = await lookup_controller.public_lookup(
        session=db(short_reads=True), tenant=await request_tenant(), contract_number=query_args.contract_number
    )
    return PublicLookupOut(
        contract_number=result.contract_number,
        holder_name=result.holder_name,
        currency=result.currency,
        total_due=round_money(result.total_due, result.currency),
        invoices=[PublicInvoiceOut(**i) for i in _invoices(result, with_ids=False)],  # type: ignore[arg-type]
    )


@bp.get("/me/contracts/<contract_number>/invoices")
@customer_required
@validate_response(OwnLookupOut, 200)
@problems(404)
async def own_lookup(contract_number: str) -> OwnLookupOut:
    """The unpaid invoices of one of the customer's own contracts."""
    principal = await require_principal()
    result = await lookup_controller.customer_lookup(
        session=db(short_reads=True), tenant=principal.tenant, customer_id=principal.user.customer_id,
        contract_number=contract_number,
    )
    return OwnLookupOut(
        contract_number=result.contract_number,
        holder_name=result.holder_name,
        currency=result.currency,
        total_due=round_money(result.total_due, result.currency),
        invoices=[OwnInvoiceOut(**i) for i in _invoices(result, with_ids=True)],  # type: ignore[arg-type]
    )

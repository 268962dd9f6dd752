"""One-off charges and credits on a contract (operator), and billing one contract on demand."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import billing_run_controller, charge_controller
from domain.money import round_money
from models.billing_model import ContractCharge
from routes.common import ListQuery, PeriodStr, db, problems, request_tenant, require_principal, role_required
from routes.fields import SignedMoney, single_line
from routes.invoice_routes import InvoiceOut, invoice_out
from routes.vocabulary import ChargeStatus

bp = Blueprint("charges", __name__, url_prefix="/api/v1/contracts")

Description = single_line(200)


class ChargeIn(BaseModel):
    """A one-off charge (amount > 0) or credit (amount < 0) for the contract's next bill."""

    description: Description = Field(examples=["Cambio de medidor"])
    amount: SignedMoney = Field(
        description="Positive: a charge; negative: a credit. Not zero; in whole minor units of the tenant's currency.",
        examples=["45000"],
    )
    taxable: bool = Field(False, description="Taxed by the tariff's tax rules that list `adjustment` lines.")


class ChargeOut(BaseModel):
    """A charge or credit: `pending` until a bill applies it, then `billed` with that invoice.

    `billed_amount` is what the invoice applied: the amount, or for a credit larger than the bill the
    part it took; the rest is a new pending credit whose `carried_from_id` names this one.
    """

    id: int
    contract_id: int
    description: str
    amount: SignedMoney
    taxable: bool
    status: ChargeStatus
    invoice_id: int | None
    billed_amount: SignedMoney | None
    carried_from_id: int | None
    created_at: datetime
    billed_at: datetime | None


class ChargeList(BaseModel):
    """A page of a contract's charges, oldest first."""

    items: list[ChargeOut]
    next_cursor: str | None


class BillIn(BaseModel):
    """The period to bill the contract for; `final` terminates the contract with this bill."""

    period: PeriodStr = Field(examples=["2026-10"])
    final: bool = Field(False, description="A move-out's final bill: the contract becomes `terminated`.")


def charge_out(charge: ContractCharge, currency: str) -> ChargeOut:
    """Serialise a charge, money rounded to the currency's minor unit ("45000", "-1520.50")."""
    out = ChargeOut.model_validate(charge, from_attributes=True)
    out.amount = round_money(charge.amount, currency)
    if charge.billed_amount is not None:
        out.billed_amount = round_money(charge.billed_amount, currency)
    return out


@bp.post("/<int:contract_id>/charges")
@role_required("operator")
@validate_request(ChargeIn)
@validate_response(ChargeOut, 201)
@problems(404, 409)
async def add_charge(contract_id: int, data: ChargeIn) -> tuple[ChargeOut, int]:
    """Put a one-off charge or credit on a contract; its next bill applies it once as an `adjustment` line.

    A credit never makes an invoice negative: the part the bill cannot take stays pending for the next one.
    A terminated contract takes no charge (409 `contract_terminated`).
    """
    principal = await require_principal()
    tenant = await request_tenant()
    charge = await charge_controller.add_charge(
        session=db(), tenant=tenant, contract_id=contract_id, created_by=principal.user.id,
        **data.model_dump(),
    )
    return charge_out(charge, tenant.currency), 201


@bp.get("/<int:contract_id>/charges")
@role_required("operator")
@validate_querystring(ListQuery)
@validate_response(ChargeList, 200)
@problems(404)
async def list_charges(contract_id: int, query_args: ListQuery) -> ChargeList:
    """A contract's charges and credits, pending and billed (with the invoice that billed each)."""
    tenant = await request_tenant()
    page = await charge_controller.list_charges(
        session=db(), tenant=tenant, contract_id=contract_id, **query_args.model_dump()
    )
    return ChargeList(items=[charge_out(c, tenant.currency) for c in page.items], next_cursor=page.next_cursor)


@bp.post("/<int:contract_id>/bill")
@role_required("operator")
@validate_request(BillIn)
@validate_response(InvoiceOut, 201)
@problems(404, 409)
async def bill_contract(contract_id: int, data: BillIn) -> tuple[InvoiceOut, int]:
    """Bill one contract for a period now, with the bill run's own code (a move-out's final bill).

    409 `already_billed` if the contract has that period's invoice, `contract_not_active` if it is
    not active, `cannot_bill` (with the reason) if the run could not bill it either.
    """
    principal = await require_principal()
    view = await billing_run_controller.bill_contract(
        session=db(), tenant=await request_tenant(), contract_id=contract_id, started_by=principal.user.id,
        **data.model_dump(),
    )
    return invoice_out(view), 201

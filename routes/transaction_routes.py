"""Transaction history route: the customer's own ledger, newest first."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from controllers import transaction_controller
from domain.money import round_money
from models.payment_model import LedgerEntry
from routes.common import (
    ListQuery,
    MoneyStr,
    customer_required,
    db,
    problems,
    require_principal,
)
from routes.fields import BusinessDate
from routes.vocabulary import Currency, LedgerKind

bp = Blueprint("transactions", __name__, url_prefix="/api/v1/me/transactions")


class TransactionQuery(ListQuery):
    """Filters: one contract (by number or id) and a date range in the tenant's time zone (both ends included)."""

    model_config = ConfigDict(populate_by_name=True)

    contract_number: str | None = Field(None, max_length=30)
    contract_id: int | None = None
    date_from: BusinessDate | None = Field(None, alias="from")
    date_to: BusinessDate | None = Field(None, alias="to")


class TransactionOut(BaseModel):
    """One ledger entry: coupon_created, payment_approved, payment_declined, payment_reversed, credit_applied (a
    credit balance taken off a new invoice, `reference` its number) or refund_paid (`reference` RF-…)."""

    id: int
    kind: LedgerKind
    amount: MoneyStr
    currency: Currency
    reference: str
    contract_numbers: list[str]
    created_at: datetime


class TransactionPage(BaseModel):
    """A page of entries and the cursor of the next one."""

    items: list[TransactionOut]
    next_cursor: str | None


def transaction_out(entry: LedgerEntry) -> TransactionOut:
    """Serialise a ledger entry."""
    return TransactionOut(
        id=entry.id,
        kind=entry.kind,
        amount=round_money(entry.amount, entry.currency),
        currency=entry.currency,
        reference=entry.reference,
        contract_numbers=list(entry.contract_numbers),
        created_at=entry.created_at,
    )


@bp.get("")
@customer_required
@validate_querystring(TransactionQuery)
@validate_response(TransactionPage, 200)
@problems(400)
async def list_transactions(query_args: TransactionQuery) -> TransactionPage:
    """The customer's transaction history, newest first."""
    principal = await require_principal()
    page = await transaction_controller.list_transactions(
        session=db(),
        tenant=principal.tenant,
        customer_id=principal.user.customer_id,
        contract_number=query_args.contract_number,
        contract_id=query_args.contract_id,
        date_from=query_args.date_from,
        date_to=query_args.date_to,
        limit=query_args.limit,
        cursor=query_args.cursor,
    )
    return TransactionPage(items=[transaction_out(e) for e in page.items], next_cursor=page.next_cursor)

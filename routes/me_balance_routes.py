"""Self-service routes: what the customer owes over all its contracts, and its coupons."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from controllers import self_service_controller
from domain.money import round_money
from routes.common import (
    ListQuery,
    MoneyStr,
    customer_required,
    db,
    problems,
    require_principal,
)
from routes.vocabulary import CouponStatus, Currency, Service

bp = Blueprint("me_balance", __name__, url_prefix="/api/v1/me")



class ContractBalanceOut(BaseModel):
    """One contract: every unpaid invoice (`total_due`) and the part past its due date (`overdue`)."""

    contract_id: int
    contract_number: str
    service: Service
    total_due: MoneyStr
    overdue: MoneyStr
    open_invoices: int


class BalanceOut(BaseModel):
    """What the customer owes, per contract and overall; exact decimal strings in `currency`."""

    currency: Currency
    total_due: MoneyStr
    overdue: MoneyStr
    contracts: list[ContractBalanceOut]


class MyCouponQuery(ListQuery):
    """Filter by the status the payer sees."""

    status: CouponStatus | None = None


class MyCouponOut(BaseModel):
    """One of the customer's coupons."""

    reference: str
    status: CouponStatus
    amount: MoneyStr
    currency: Currency
    due_on: date
    expires_at: datetime
    created_at: datetime
    paid_at: datetime | None


class MyCouponList(BaseModel):
    """A page of coupons, newest first."""

    items: list[MyCouponOut]
    next_cursor: str | None


@bp.get("/balance")
@customer_required
@validate_response(BalanceOut, 200)
async def my_balance() -> BalanceOut:
    """Total due and overdue over the customer's contracts, and per contract."""
    principal = await require_principal()
    balance = await self_service_controller.customer_balance(
        session=db(), tenant=principal.tenant, customer_id=principal.user.customer_id
    )
    return BalanceOut(
        currency=balance.currency,
        total_due=balance.total_due,
        overdue=balance.overdue,
        contracts=[ContractBalanceOut(**vars(c)) for c in balance.contracts],
    )


@bp.get("/coupons")
@customer_required
@validate_querystring(MyCouponQuery)
@validate_response(MyCouponList, 200)
@problems(400)
async def my_coupons(query_args: MyCouponQuery) -> MyCouponList:
    """The customer's coupons with their status, newest first."""
    principal = await require_principal()
    page = await self_service_controller.my_coupons(
        session=db(),
        tenant=principal.tenant,
        customer_id=principal.user.customer_id,
        status=query_args.status,
        limit=query_args.limit,
        cursor=query_args.cursor,
    )
    return MyCouponList(
        items=[
            MyCouponOut(
                reference=row.coupon.reference,
                status=row.status,
                amount=round_money(row.coupon.amount, row.coupon.currency),
                currency=row.coupon.currency,
                due_on=row.coupon.due_on,
                expires_at=row.coupon.expires_at,
                created_at=row.coupon.created_at,
                paid_at=row.coupon.paid_at,
            )
            for row in page.items
        ],
        next_cursor=page.next_cursor,
    )

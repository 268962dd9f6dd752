"""A customer's own view across contracts: what it owes (due and overdue) and its coupons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import tenant_today
from controllers.coupon_controller import UNPAID_STATUSES, effective_status
from controllers.pagination import Page, SortKey, paginate
from domain.money import round_money
from models.account_model import Contract
from models.base_model import utcnow
from models.billing_model import Invoice
from models.payment_model import Coupon
from models.tenant_model import Tenant


@dataclass(frozen=True)
class ContractBalance:
    """What one contract owes: every unpaid invoice (`total_due`), and the part past its due date (`overdue`)."""

    contract_id: int
    contract_number: str
    service: str
    total_due: Decimal
    overdue: Decimal
    open_invoices: int


@dataclass(frozen=True)
class Balance:
    """What the customer owes over all its contracts, in the tenant's currency."""

    currency: str
    total_due: Decimal
    overdue: Decimal
    contracts: list[ContractBalance]


async def customer_balance(*, session: AsyncSession, tenant: Tenant, customer_id: int | None, now: datetime | None = None) -> Balance:
    """Total due and overdue per contract and overall; a carried invoice counts once, in the invoice that carries it."""
    currency = tenant.currency
    if customer_id is None:
        return Balance(currency=currency, total_due=Decimal(0), overdue=Decimal(0), contracts=[])
    today = tenant_today(tenant, now or utcnow())
    contracts = (
        await session.execute(
            select(Contract.id, Contract.contract_number, Contract.service)
            .where(Contract.tenant_id == tenant.id, Contract.customer_id == customer_id)
            .order_by(Contract.contract_number, Contract.id)
        )
    ).all()
    invoices = (
        await session.execute(
            select(Invoice.contract_id, Invoice.amount_due, Invoice.status, Invoice.due_on).where(
                Invoice.tenant_id == tenant.id,
                Invoice.customer_id == customer_id,
                Invoice.status.in_(UNPAID_STATUSES),
                # Its balance is part of a later invoice's arrears; counting both would double it.
                Invoice.carried_into_invoice_id.is_(None),
            )
        )
    ).all()
    due: dict[int, list[Decimal]] = {}
    late: dict[int, Decimal] = {}
    for contract_id, amount_due, status, due_on in invoices:
        due.setdefault(contract_id, []).append(amount_due)
        # Overdue by date even before the nightly sweep moves the status.
        if status == "overdue" or due_on < today:
            late[contract_id] = late.get(contract_id, Decimal(0)) + amount_due
    rows = [
        ContractBalance(
            contract_id=cid,
            contract_number=number,
            service=service,
            total_due=round_money(sum(due.get(cid, []), Decimal(0)), currency),
            overdue=round_money(late.get(cid, Decimal(0)), currency),
            open_invoices=len(due.get(cid, [])),
        )
        for cid, number, service in contracts
    ]
    return Balance(
        currency=currency,
        total_due=sum((r.total_due for r in rows), Decimal(0)),
        overdue=sum((r.overdue for r in rows), Decimal(0)),
        contracts=rows,
    )


@dataclass(frozen=True)
class CouponRow:
    """One of the customer's coupons with the status a payer should see."""

    coupon: Coupon
    status: str


async def my_coupons(
    *,
    session: AsyncSession,
    tenant: Tenant,
    customer_id: int | None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    now: datetime | None = None,
) -> Page[CouponRow]:
    """The customer's coupons, newest first; `status` filters on what the payer sees (an overdue active one is expired)."""
    if customer_id is None:
        return Page(items=[], next_cursor=None)
    now = now or utcnow()
    stmt = select(Coupon).where(Coupon.tenant_id == tenant.id, Coupon.customer_id == customer_id)
    if status == "active":
        stmt = stmt.where(Coupon.status == "active", Coupon.expires_at > now)
    elif status == "expired":
        stmt = stmt.where(or_(Coupon.status == "expired", (Coupon.status == "active") & (Coupon.expires_at <= now)))
    elif status:
        stmt = stmt.where(Coupon.status == status)
    page = await paginate(
        session, stmt, keys=[SortKey(Coupon.created_at, descending=True), SortKey(Coupon.id, descending=True)], limit=limit, cursor=cursor
    )
    return Page(items=[CouponRow(coupon=c, status=effective_status(c, now)) for c in page.items], next_cursor=page.next_cursor)

"""Builders for payment tests: a customer with unpaid invoices, and coupons made through the controller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import coupon_controller
from controllers.coupon_controller import Caller, CouponView
from models.account_model import Contract, Customer
from models.billing_model import Invoice
from models.payment_model import Coupon
from models.tenant_model import Tenant
from tests.factories import make_contract, make_customer, make_invoice

# Before every due date the builders use, so coupons expire at the end of the earliest due day.
BEFORE_DUE = datetime.fromisoformat("2026-11-05T15:00:00+00:00")


@dataclass
class Debtor:
    """A customer, one contract and its unpaid invoices."""

    customer: Customer
    contract: Contract
    invoices: list[Invoice]


async def make_debtor(
    session: AsyncSession,
    tenant: Tenant,
    *,
    amounts: tuple[str, ...] = ("85000",),
    due_on: date = date(2026, 11, 16),
    name: str = "Juana Pérez Gómez",
    customer: Customer | None = None,
    status: str = "issued",
) -> Debtor:
    """A customer (or another contract of `customer`) with one unpaid invoice per amount, periods 2026-10 backwards."""
    customer = customer or await make_customer(session, tenant, name=name)
    contract = await make_contract(session, customer)
    invoices = []
    for index, amount in enumerate(amounts):
        invoices.append(
            await make_invoice(session, contract, period=f"2026-{10 - index:02d}", total=Decimal(amount), due_on=due_on, status=status)
        )
    await session.commit()
    return Debtor(customer=customer, contract=contract, invoices=invoices)


async def make_coupon(
    session: AsyncSession, tenant: Tenant, debtor: Debtor, *, now: datetime = BEFORE_DUE, caller: Caller | None = None
) -> CouponView:
    """A coupon for all of the debtor's contract's unpaid invoices, made as staff unless told otherwise."""
    return await coupon_controller.create_coupon(
        session=session,
        tenant=tenant,
        caller=caller or Caller(user_id=None, role="operator"),
        contract_number=debtor.contract.contract_number,
        now=now,
    )


async def fresh(session: AsyncSession, model: type, ident: int) -> object:
    """Re-read a row from the database, ignoring the identity map."""
    return await session.scalar(select(model).where(model.id == ident).execution_options(populate_existing=True))


async def coupon_status(session: AsyncSession, reference: str) -> str:
    """The stored status of a coupon."""
    status = await session.scalar(select(Coupon.status).where(Coupon.reference == reference))
    assert status is not None
    return status

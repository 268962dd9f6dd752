"""Invoice lookup by contract number: the public quick-pay view (masked) and the customer's own view.

Both list what can be paid: issued or overdue invoices with an amount due, except carried ones
(their balance is on the later invoice that carried it, which is listed instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.coupon_controller import NOTHING_DUE, UNPAID_STATUSES
from controllers.errors import NotFound
from domain.coupon_codes import mask_name
from models.account_model import Contract, Customer
from models.billing_model import Invoice
from models.tenant_model import Tenant


@dataclass(frozen=True)
class LookupInvoice:
    """An unpaid invoice as the lookup shows it."""

    invoice_id: int
    number: str
    period: str
    amount_due: Decimal
    due_on: date
    status: str


@dataclass(frozen=True)
class LookupResult:
    """A contract's holder name and unpaid invoices."""

    contract_number: str
    holder_name: str
    currency: str
    invoices: list[LookupInvoice]
    total_due: Decimal


@dataclass(frozen=True)
class _Holder:
    """A contract and its holder's name: what the lookup reads besides the invoices."""

    id: int
    contract_number: str
    holder_name: str


def _contract_query(tenant: Tenant, contract_number: str) -> Select[Any]:
    """The tenant's contract with that number and its holder's name: one indexed query of columns."""
    return (
        select(Contract.id, Contract.contract_number, Customer.name)
        .join(Customer, Customer.id == Contract.customer_id)
        .where(Contract.tenant_id == tenant.id, Contract.contract_number == contract_number.strip())
    )


async def _contract(session: AsyncSession, stmt: Select[Any]) -> _Holder | None:
    row = (await session.execute(stmt)).first()
    return _Holder(row.id, row.contract_number, row.name) if row is not None else None


async def _unpaid(session: AsyncSession, contract: _Holder) -> list[LookupInvoice]:
    # By contract alone (the contract is the tenant's): a tenant filter here would lead SQLite, which
    # has no statistics, to walk ix_invoices_tenant_id_status_due_on through every unpaid invoice.
    rows = await session.execute(
        select(Invoice.id, Invoice.number, Invoice.period, Invoice.amount_due, Invoice.due_on, Invoice.status)
        .where(
            Invoice.contract_id == contract.id,
            Invoice.status.in_(UNPAID_STATUSES),
            Invoice.amount_due > 0,
            Invoice.carried_into_invoice_id.is_(None),
            # Held by a payment agreement: paid with its instalment coupons, not offered here.
            Invoice.agreement_id.is_(None),
        )
        .order_by(Invoice.due_on, Invoice.id)
    )
    return [
        LookupInvoice(invoice_id=i.id, number=i.number, period=i.period, amount_due=i.amount_due, due_on=i.due_on, status=i.status)
        for i in rows.all()
    ]


def _result(contract: _Holder, holder_name: str, currency: str, invoices: list[LookupInvoice]) -> LookupResult:
    return LookupResult(
        contract_number=contract.contract_number,
        holder_name=holder_name,
        currency=currency,
        invoices=invoices,
        total_due=sum((i.amount_due for i in invoices), Decimal(0)),
    )


async def public_lookup(*, session: AsyncSession, tenant: Tenant, contract_number: str) -> LookupResult:
    """Quick-pay: the masked holder and unpaid invoices; unknown and fully paid contracts give the same 404."""
    contract = await _contract(session, _contract_query(tenant, contract_number))
    invoices = await _unpaid(session, contract) if contract is not None else []
    if contract is None or not invoices:
        raise NotFound(NOTHING_DUE, code="nothing_due")
    return _result(contract, mask_name(contract.holder_name), tenant.currency, invoices)


async def customer_lookup(
    *, session: AsyncSession, tenant: Tenant, customer_id: int | None, contract_number: str
) -> LookupResult:
    """A customer's own contract with its full holder name and unpaid invoices (possibly none)."""
    own = _contract_query(tenant, contract_number).where(Contract.customer_id == customer_id)
    contract = await _contract(session, own)
    if contract is None:
        raise NotFound("No contract of yours has that number.", code="contract_not_found")
    return _result(contract, contract.holder_name, tenant.currency, await _unpaid(session, contract))

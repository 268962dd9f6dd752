"""One-off charges and credits on a contract, which its next bill applies (billing_run_controller bills them)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.pagination import Page, SortKey, paginate
from domain.money import quantum
from models.account_model import Contract
from models.billing_model import ContractCharge
from models.tenant_model import Tenant


async def _contract(session: AsyncSession, tenant: Tenant, contract_id: int) -> Contract:
    contract = await session.scalar(
        select(Contract).where(Contract.id == contract_id, Contract.tenant_id == tenant.id)
    )
    if contract is None:
        raise NotFound("No such contract.", code="not_found")
    return contract


def _amount_problem(amount: Decimal, currency: str) -> str | None:
    if amount == 0:
        return "must not be zero"
    if amount % quantum(currency):
        return f"must be a whole number of the {currency} minor unit"
    return None


async def add_charge(
    *,
    session: AsyncSession,
    tenant: Tenant,
    contract_id: int,
    description: str,
    amount: Decimal,
    taxable: bool,
    created_by: int | None = None,
) -> ContractCharge:
    """Put a charge (amount > 0) or credit (amount < 0) on a contract for its next bill.

    A terminated contract gets no more bills, so it takes no charge (409 `contract_terminated`).
    """
    contract = await _contract(session, tenant, contract_id)
    problem = _amount_problem(amount, tenant.currency)
    if problem is not None:
        raise DomainValidationError(
            f"The amount {problem}.", code="invalid_amount",
            errors=[FieldError("amount", problem, "invalid_amount")],
        )
    if contract.status == "terminated":
        raise Conflict("The contract is terminated: no bill would apply the charge.", code="contract_terminated")
    charge = ContractCharge(
        tenant_id=tenant.id, contract_id=contract.id, description=description, amount=amount,
        taxable=taxable, status="pending", created_by=created_by,
    )
    session.add(charge)
    await session.commit()
    await session.refresh(charge)
    return charge


async def list_charges(
    *, session: AsyncSession, tenant: Tenant, contract_id: int, limit: int = 50, cursor: str | None = None
) -> Page[ContractCharge]:
    """A contract's charges and credits, oldest first, pending and billed (with the invoice that billed each)."""
    await _contract(session, tenant, contract_id)
    return await paginate(
        session,
        select(ContractCharge).where(ContractCharge.contract_id == contract_id, ContractCharge.tenant_id == tenant.id),
        keys=[SortKey(ContractCharge.id)],
        limit=limit,
        cursor=cursor,
    )

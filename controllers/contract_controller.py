"""Contracts: operator CRUD within one tenant, and a customer's view of its own contracts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import (
    commit_or_conflict,
    delete_and_commit,
    ensure_no_dependents,
    unique_conflict,
)
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.list_ordering import paginate_ordered, sort_keys
from controllers.pagination import Page, SortKey
from models.account_model import Contract, Customer, Meter
from models.billing_model import Invoice
from models.tenant_model import Tenant

ORDER_COLUMNS = {"contract_number": Contract.contract_number, "created_at": Contract.created_at}
RESIDENTIAL_STRATA = ("1", "2", "3", "4", "5", "6")


def normalize_contract_number(raw: str) -> str:
    """Contract numbers compare without surrounding spaces and case, as customers type them."""
    return raw.strip().upper()


def default_tariff_class(stratum: str) -> str:
    """`residential` for strata 1-6, otherwise the stratum itself (commercial, industrial, official)."""
    return "residential" if stratum in RESIDENTIAL_STRATA else stratum


def _number_conflict() -> Conflict:
    return unique_conflict(
        code="contract_number_exists", field="contract_number", detail="A contract with that number already exists."
    )


async def _ensure_number_free(session: AsyncSession, tenant: Tenant, number: str, *, except_id: int | None = None) -> None:
    stmt = select(Contract.id).where(Contract.tenant_id == tenant.id, Contract.contract_number == number)
    if except_id is not None:
        stmt = stmt.where(Contract.id != except_id)
    if await session.scalar(stmt) is not None:
        raise _number_conflict()


async def _ensure_customer(session: AsyncSession, tenant: Tenant, customer_id: int) -> None:
    found = await session.scalar(select(Customer.id).where(Customer.id == customer_id, Customer.tenant_id == tenant.id))
    if found is None:
        raise DomainValidationError(
            "No customer has that id.",
            code="customer_not_found",
            errors=[FieldError("customer_id", "no such customer", "customer_not_found")],
        )


async def create_contract(
    *,
    session: AsyncSession,
    tenant: Tenant,
    contract_number: str,
    customer_id: int,
    service: str,
    supply_address: str,
    stratum: str,
    tariff_class: str | None = None,
    status: str = "active",
) -> Contract:
    """Create a contract for an existing customer; the number is unique per tenant."""
    number = normalize_contract_number(contract_number)
    await _ensure_customer(session, tenant, customer_id)
    await _ensure_number_free(session, tenant, number)
    contract = Contract(
        tenant_id=tenant.id,
        customer_id=customer_id,
        contract_number=number,
        service=service,
        supply_address=supply_address,
        stratum=stratum,
        tariff_class=tariff_class or default_tariff_class(stratum),
        status=status,
    )
    session.add(contract)
    await commit_or_conflict(session, _number_conflict())
    return contract


async def get_contract(*, session: AsyncSession, tenant: Tenant, contract_id: int) -> Contract:
    """One contract of the tenant; 404 otherwise."""
    contract = await session.scalar(select(Contract).where(Contract.id == contract_id, Contract.tenant_id == tenant.id))
    if contract is None:
        raise NotFound("No such contract.")
    return contract


async def list_contracts(
    *,
    session: AsyncSession,
    tenant: Tenant,
    customer_id: int | None = None,
    contract_number: str | None = None,
    status: str | None = None,
    service: str | None = None,
    order: str = "contract_number",
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Contract]:
    """Contracts filtered by customer, number, status and service, in an explicit order."""
    stmt = select(Contract).where(Contract.tenant_id == tenant.id)
    if customer_id is not None:
        stmt = stmt.where(Contract.customer_id == customer_id)
    if contract_number:
        stmt = stmt.where(Contract.contract_number == normalize_contract_number(contract_number))
    if status:
        stmt = stmt.where(Contract.status == status)
    if service:
        stmt = stmt.where(Contract.service == service)
    keys = sort_keys(order, ORDER_COLUMNS, Contract.id)
    return await paginate_ordered(session, stmt, keys=keys, limit=limit, cursor=cursor)


async def update_contract(
    *, session: AsyncSession, tenant: Tenant, contract_id: int, changes: Mapping[str, Any]
) -> Contract:
    """Change the given fields. The number and the holder are fixed once the contract has been invoiced."""
    contract = await get_contract(session=session, tenant=tenant, contract_id=contract_id)
    values = dict(changes)
    if "contract_number" in values:
        values["contract_number"] = normalize_contract_number(values["contract_number"])
    identity = {k for k in ("contract_number", "customer_id") if k in values and values[k] != getattr(contract, k)}
    if identity:
        invoiced = await session.scalar(select(Invoice.id).where(Invoice.contract_id == contract.id).limit(1))
        if invoiced is not None:
            raise Conflict(
                f"The contract has invoices, so its {' and '.join(sorted(identity))} can no longer change.",
                code="contract_invoiced",
                errors=[FieldError(k, "fixed once invoiced", "contract_invoiced") for k in sorted(identity)],
            )
    if "customer_id" in identity:
        await _ensure_customer(session, tenant, values["customer_id"])
    if "contract_number" in identity:
        await _ensure_number_free(session, tenant, values["contract_number"], except_id=contract.id)
    if "stratum" in values and "tariff_class" not in values and contract.tariff_class == default_tariff_class(contract.stratum):
        # The class followed the stratum; keep following it unless the operator set one.
        values["tariff_class"] = default_tariff_class(values["stratum"])
    for field, value in values.items():
        setattr(contract, field, value)
    await commit_or_conflict(session, _number_conflict())
    return contract


async def delete_contract(*, session: AsyncSession, tenant: Tenant, contract_id: int) -> None:
    """Delete a contract that has no meters and no invoices."""
    contract = await get_contract(session=session, tenant=tenant, contract_id=contract_id)
    await ensure_no_dependents(
        session,
        "contract",
        {
            "meters": select(Meter.id).where(Meter.contract_id == contract.id),
            "invoices": select(Invoice.id).where(Invoice.contract_id == contract.id),
        },
    )
    await delete_and_commit(session, contract, "contract")


async def list_customer_contracts(
    *, session: AsyncSession, tenant: Tenant, customer_id: int | None, limit: int = 50, cursor: str | None = None
) -> Page[Contract]:
    """A customer's own contracts by number; a login with no customer record has none."""
    if customer_id is None:
        return Page(items=[], next_cursor=None)
    stmt = select(Contract).where(Contract.tenant_id == tenant.id, Contract.customer_id == customer_id)
    keys = [SortKey(Contract.contract_number), SortKey(Contract.id)]
    return await paginate_ordered(session, stmt, keys=keys, limit=limit, cursor=cursor)


async def get_customer_contract(
    *, session: AsyncSession, tenant: Tenant, customer_id: int | None, contract_id: int
) -> Contract:
    """One of the customer's own contracts; anyone else's is a 404."""
    if customer_id is None:
        raise NotFound("No such contract.")
    contract = await session.scalar(
        select(Contract).where(
            Contract.id == contract_id, Contract.tenant_id == tenant.id, Contract.customer_id == customer_id
        )
    )
    if contract is None:
        raise NotFound("No such contract.")
    return contract

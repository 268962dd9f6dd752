"""Customers: create, find, list with filters, partially update and delete, always within one tenant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import (
    commit_or_conflict,
    delete_and_commit,
    ensure_no_dependents,
    unique_conflict,
    validated_national_id,
)
from controllers.auth_controller import normalize_email
from controllers.errors import Conflict, NotFound
from controllers.list_ordering import paginate_ordered, sort_keys
from controllers.pagination import Page
from domain.national_id import search_form
from models.account_model import Contract, Customer
from models.tenant_model import Tenant
from models.user_model import User

ORDER_COLUMNS = {"name": Customer.name, "created_at": Customer.created_at}


def _national_id_conflict() -> Conflict:
    return unique_conflict(
        code="national_id_exists", field="national_id", detail="A customer with that national ID already exists."
    )


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, lowercased, with LIKE's wildcards escaped.

    `[` too: SQL Server reads `[a-z]` as a character class. Escaped with `\\` it is a literal `[` on
    every database (SQLite and PostgreSQL take an escaped ordinary character as itself).
    """
    escaped = (
        text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("[", "\\[")
    )
    return f"%{escaped}%"


async def _ensure_national_id_free(
    session: AsyncSession, tenant: Tenant, id_type: str, number: str, *, except_id: int | None = None
) -> None:
    stmt = select(Customer.id).where(
        Customer.tenant_id == tenant.id, Customer.national_id_type == id_type, Customer.national_id == number
    )
    if except_id is not None:
        stmt = stmt.where(Customer.id != except_id)
    if await session.scalar(stmt) is not None:
        raise _national_id_conflict()


async def create_customer(
    *,
    session: AsyncSession,
    tenant: Tenant,
    name: str,
    national_id_type: str,
    national_id: str,
    email: str | None = None,
    phone: str | None = None,
    billing_address: str = "",
    locale: str | None = None,
    status: str = "active",
) -> Customer:
    """Create a customer; the national ID is validated, normalised and unique per tenant."""
    national = validated_national_id(national_id_type, national_id)
    await _ensure_national_id_free(session, tenant, national.type, national.number)
    customer = Customer(
        tenant_id=tenant.id,
        name=name,
        national_id_type=national.type,
        national_id=national.number,
        national_id_display=national.display,
        email=normalize_email(email) if email else None,
        phone=phone,
        billing_address=billing_address,
        locale=locale or tenant.locale,
        status=status,
    )
    session.add(customer)
    await commit_or_conflict(session, _national_id_conflict())
    return customer


async def get_customer(*, session: AsyncSession, tenant: Tenant, customer_id: int) -> Customer:
    """One customer of the tenant; 404 otherwise."""
    customer = await session.scalar(
        select(Customer).where(Customer.id == customer_id, Customer.tenant_id == tenant.id)
    )
    if customer is None:
        raise NotFound("No such customer.")
    return customer


async def list_customers(
    *,
    session: AsyncSession,
    tenant: Tenant,
    national_id: str | None = None,
    national_id_type: str | None = None,
    name: str | None = None,
    status: str | None = None,
    order: str = "name",
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Customer]:
    """Customers filtered by national ID, a fragment of the name and status, in an explicit order."""
    stmt = select(Customer).where(Customer.tenant_id == tenant.id)
    if national_id_type:
        stmt = stmt.where(Customer.national_id_type == national_id_type)
    if national_id:
        if national_id_type:
            number = validated_national_id(national_id_type, national_id).number
        else:
            # Without a type we cannot validate; compare with the stored form (digits, RUT's K uppercase).
            number = search_form(national_id)
        stmt = stmt.where(Customer.national_id == number)
    if name:
        # lower() LIKE is portable; SQLite's lower() folds ASCII letters only (see README).
        stmt = stmt.where(func.lower(Customer.name).like(like_pattern(name.strip()), escape="\\"))
    if status:
        stmt = stmt.where(Customer.status == status)
    keys = sort_keys(order, ORDER_COLUMNS, Customer.id)
    return await paginate_ordered(session, stmt, keys=keys, limit=limit, cursor=cursor)


async def update_customer(
    *, session: AsyncSession, tenant: Tenant, customer_id: int, changes: Mapping[str, Any]
) -> Customer:
    """Change the given fields; a new national ID (or type) is validated again and must stay unique."""
    customer = await get_customer(session=session, tenant=tenant, customer_id=customer_id)
    values = dict(changes)
    if "national_id" in values or "national_id_type" in values:
        national = validated_national_id(
            values.pop("national_id_type", customer.national_id_type),
            values.pop("national_id", customer.national_id),
        )
        await _ensure_national_id_free(session, tenant, national.type, national.number, except_id=customer.id)
        customer.national_id_type = national.type
        customer.national_id = national.number
        customer.national_id_display = national.display
    if "email" in values:
        email = values.pop("email")
        customer.email = normalize_email(email) if email else None
    for field, value in values.items():
        setattr(customer, field, value)
    await commit_or_conflict(session, _national_id_conflict())
    return customer


async def delete_customer(*, session: AsyncSession, tenant: Tenant, customer_id: int) -> None:
    """Delete a customer that has no contracts and no login."""
    customer = await get_customer(session=session, tenant=tenant, customer_id=customer_id)
    await ensure_no_dependents(
        session,
        "customer",
        {
            "contracts": select(Contract.id).where(Contract.customer_id == customer.id),
            "users": select(User.id).where(User.customer_id == customer.id),
        },
    )
    await delete_and_commit(session, customer, "customer")

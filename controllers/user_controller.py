"""User administration (admin): list, create and change logins; disabling ends sessions; the last admin stays."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.pagination import Page, SortKey, paginate
from models.account_model import Customer
from models.tenant_model import Tenant
from models.user_model import User


async def list_users(
    *,
    session: AsyncSession,
    tenant: Tenant,
    role: str | None = None,
    status: str | None = None,
    email: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[User]:
    """The tenant's users, filtered by role, status and exact email, in id order."""
    stmt = select(User).where(User.tenant_id == tenant.id)
    if role:
        stmt = stmt.where(User.role == role)
    if status:
        stmt = stmt.where(User.status == status)
    if email:
        stmt = stmt.where(User.email == auth_controller.normalize_email(email))
    return await paginate(session, stmt, keys=[SortKey(User.id)], limit=limit, cursor=cursor)


async def check_customer_link(*, session: AsyncSession, tenant: Tenant, role: str, customer_id: int | None) -> None:
    """A customer login needs a customer record of the tenant; staff logins have none (422 naming `customer_id`)."""
    if role != "customer":
        if customer_id is not None:
            raise DomainValidationError(
                "Only a customer login is linked to a customer.",
                code="validation_error",
                errors=[FieldError("customer_id", "only for the customer role", "not_allowed")],
            )
        return
    if customer_id is None:
        raise DomainValidationError(
            "A customer login must be linked to a customer record.",
            code="customer_required",
            errors=[FieldError("customer_id", "required for the customer role", "customer_required")],
        )
    found = await session.scalar(select(Customer.id).where(Customer.id == customer_id, Customer.tenant_id == tenant.id))
    if found is None:
        raise DomainValidationError(
            "No customer has that id.",
            code="customer_not_found",
            errors=[FieldError("customer_id", "no such customer", "customer_not_found")],
        )
    taken = await session.scalar(select(User.id).where(User.customer_id == customer_id))
    if taken is not None:
        raise Conflict("That customer already has a login.", code="already_registered")


async def create_user(
    *,
    session: AsyncSession,
    tenant: Tenant,
    email: str,
    password: str,
    role: str,
    full_name: str,
    locale: str | None = None,
    customer_id: int | None = None,
    rounds: int = 12,
) -> User:
    """Create a login of any role; a customer login is linked to its customer record."""
    await check_customer_link(session=session, tenant=tenant, role=role, customer_id=customer_id)
    user = await auth_controller.create_user(
        session=session,
        tenant=tenant,
        email=email,
        password=password,
        role=role,
        full_name=full_name,
        locale=locale,
        rounds=rounds,
        commit=False,
    )
    user.customer_id = customer_id
    await session.commit()
    return user


async def _load(session: AsyncSession, tenant: Tenant, user_id: int) -> User:
    user = await session.scalar(
        select(User).where(User.id == user_id, User.tenant_id == tenant.id).execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFound("No user has that id.", code="not_found")
    return user


async def get_user(*, session: AsyncSession, tenant: Tenant, user_id: int) -> User:
    """One user of the tenant; NotFound otherwise."""
    return await _load(session, tenant, user_id)


async def update_user(*, session: AsyncSession, tenant: Tenant, user_id: int, changes: dict[str, Any]) -> User:
    """Change role, full name or disabled; disabling ends the user's sessions at once.

    The last active admin can be neither disabled nor demoted (409 `last_admin`). The check is part of
    the one conditional UPDATE, so it holds however the change is reached.
    """
    user = await _load(session, tenant, user_id)
    values: dict[str, Any] = {}
    if "full_name" in changes:
        values["full_name"] = changes["full_name"]
    if "role" in changes and changes["role"] != user.role:
        if changes["role"] == "customer" or user.role == "customer":
            raise DomainValidationError(
                "A login cannot move between the customer role and a staff role; create a new login.",
                code="invalid_role_change",
                errors=[FieldError("role", "staff roles only", "invalid_role_change")],
            )
        values["role"] = changes["role"]
    if "disabled" in changes:
        new_status = "disabled" if changes["disabled"] else "active"
        if new_status != user.status:
            values["status"] = new_status
            if new_status == "disabled":
                # The session version is in every session identity: bumping it logs the user out everywhere.
                values["session_version"] = User.session_version + 1
    if not values:
        return user
    stmt = update(User).where(User.id == user.id, User.tenant_id == tenant.id).values(**values)
    loses_admin = user.role == "admin" and user.status == "active" and (
        values.get("role", "admin") != "admin" or values.get("status", "active") != "active"
    )
    if loses_admin:
        other_admins = (
            select(func.count(User.id))
            .where(User.tenant_id == tenant.id, User.role == "admin", User.status == "active", User.id != user.id)
            .scalar_subquery()
        )
        stmt = stmt.where(other_admins > 0)
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict("This is the last active admin; make another admin first.", code="last_admin")
    await session.commit()
    return await _load(session, tenant, user.id)

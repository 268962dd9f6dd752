"""Tenant lookups: which utility company a request belongs to."""

from __future__ import annotations

from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import NotFound
from models.tenant_model import Tenant


async def resolve_public_tenant(*, session: AsyncSession, code: str | None) -> Tenant:
    """The tenant named by a public request's header, or the default tenant when none is named."""
    if code:
        tenant = await session.scalar(select(Tenant).where(Tenant.code == code.strip()))
        if tenant is None:
            raise NotFound("No tenant has that code.", code="tenant_not_found")
        return tenant
    return await default_tenant(session=session)


async def default_tenant(*, session: AsyncSession) -> Tenant:
    """The install's default tenant (created by the first migration)."""
    tenant = await session.scalar(
        select(Tenant).where(Tenant.is_default == true()).order_by(Tenant.id).limit(1)
    )
    if tenant is None:
        raise NotFound(
            "This install has no default tenant; send X-Tenant-ID.", code="tenant_not_found"
        )
    return tenant


async def get_tenant_by_code(*, session: AsyncSession, code: str) -> Tenant:
    """A tenant by its code; NotFound otherwise."""
    tenant = await session.scalar(select(Tenant).where(Tenant.code == code))
    if tenant is None:
        raise NotFound(f"No tenant has the code {code!r}.", code="tenant_not_found")
    return tenant

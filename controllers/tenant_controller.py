"""Tenant lookups: which utility company a request belongs to."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


def detached_copy(tenant: Tenant) -> Tenant:
    """A Tenant that belongs to no session: safe to share between requests (no rollback can expire it)."""
    return Tenant(**{column.key: getattr(tenant, column.key) for column in Tenant.__table__.columns})


@dataclass
class TenantCache:
    """Tenants by id and the default tenant, per process, for at most `ttl_seconds`.

    Tenant rows change only through migrations and the database itself, never through the API; a
    change shows up within `ttl_seconds` on every process. Sessions are not cached here: the
    session check (version, status, role) reads the user row on every request.
    """

    ttl_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _by_key: dict[object, tuple[float, Tenant]] = field(default_factory=dict)

    def _get(self, key: object) -> Tenant | None:
        found = self._by_key.get(key)
        if found is None or found[0] <= self.clock():
            return None
        return found[1]

    def _put(self, key: object, tenant: Tenant) -> Tenant:
        copy = detached_copy(tenant)
        self._by_key[key] = (self.clock() + self.ttl_seconds, copy)
        return copy

    async def by_id(self, *, session: AsyncSession, tenant_id: int) -> Tenant | None:
        """The tenant with this id, or None."""
        cached = self._get(tenant_id)
        if cached is not None:
            return cached
        tenant = await session.get(Tenant, tenant_id)
        return self._put(tenant_id, tenant) if tenant is not None else None

    async def public(self, *, session: AsyncSession, code: str | None) -> Tenant:
        """`resolve_public_tenant`, cached: by code, else the default tenant."""
        key = ("code", code.strip()) if code else ("default",)
        cached = self._get(key)
        if cached is not None:
            return cached
        return self._put(key, await resolve_public_tenant(session=session, code=code))

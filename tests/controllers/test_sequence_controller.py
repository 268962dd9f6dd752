"""Gap-free numbering under concurrency."""

from __future__ import annotations

import asyncio

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import sequence_controller
from models.tenant_model import Tenant


async def test_numbers_are_consecutive_per_tenant_and_name(session: AsyncSession, tenant: Tenant) -> None:
    first = await sequence_controller.reserve(session=session, tenant_id=tenant.id, name="invoice")
    block = await sequence_controller.reserve(session=session, tenant_id=tenant.id, name="invoice", count=10)
    other = await sequence_controller.reserve(session=session, tenant_id=tenant.id, name="pqr")
    await session.commit()
    assert (first, block, other) == (1, 2, 1)
    assert await sequence_controller.reserve(session=session, tenant_id=tenant.id, name="invoice") == 12


async def test_rollback_gives_numbers_back(session: AsyncSession, tenant: Tenant) -> None:
    tenant_id = tenant.id  # the rollback below expires ORM objects
    await sequence_controller.reserve(session=session, tenant_id=tenant_id, name="pqr")
    await session.commit()
    assert await sequence_controller.reserve(session=session, tenant_id=tenant_id, name="pqr") == 2
    await session.rollback()
    assert await sequence_controller.reserve(session=session, tenant_id=tenant_id, name="pqr") == 2
    await session.commit()


async def test_concurrent_reservations_have_no_gaps_or_duplicates(app: Quart, tenant: Tenant) -> None:
    sql = app.extensions["cuponera"].sql

    async def take() -> int:
        async with sql.session_scope(write=True) as session:
            number = await sequence_controller.reserve(session=session, tenant_id=tenant.id, name="radicado")
            await asyncio.sleep(0)
            await session.commit()
            return number

    numbers = await asyncio.gather(*(take() for _ in range(20)))
    assert sorted(numbers) == list(range(1, 21))

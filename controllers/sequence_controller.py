"""Per-tenant numbering: gap-free sequences (invoice numbers, PQR filing numbers) and random coupon references."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.coupon_codes import random_reference
from models.payment_model import Coupon
from models.sequence_model import TenantSequence

# Drawing a taken reference from 9 * 10^14 is so rare that a handful of draws is already generous.
REFERENCE_DRAWS = 8


async def reserve(*, session: AsyncSession, tenant_id: int, name: str, count: int = 1) -> int:
    """Reserve `count` consecutive numbers and return the first.

    The counter row is bumped with a conditional UPDATE, which holds its row lock until the
    caller's transaction ends: numbers are handed out in commit order, a rolled-back transaction
    gives its numbers back, and so there are no gaps and no reuse. Call it late in the
    transaction, since concurrent callers queue on that lock.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    bump = (
        update(TenantSequence)
        .where(TenantSequence.tenant_id == tenant_id, TenantSequence.name == name)
        .values(last_value=TenantSequence.last_value + count)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(bump)
    if result.rowcount == 0:  # type: ignore[attr-defined]
        try:
            async with session.begin_nested():
                session.add(TenantSequence(tenant_id=tenant_id, name=name, last_value=count))
            return 1
        except IntegrityError:
            # Another transaction created the counter first; queue behind it like everyone else.
            await session.execute(bump)
    last = await session.scalar(
        select(TenantSequence.last_value).where(TenantSequence.tenant_id == tenant_id, TenantSequence.name == name)
    )
    assert last is not None
    return int(last) - count + 1


# Built once per process: every coupon draws a reference.
_REFERENCE_TAKEN = select(Coupon.id).where(Coupon.tenant_id == bindparam("tenant_id"), Coupon.reference == bindparam("reference"))


async def draw_coupon_reference(*, session: AsyncSession, tenant_id: int) -> str:
    """A random coupon reference no coupon of the tenant has; counting references finds nothing."""
    # The unique (tenant_id, reference) constraint still guards the race of two equal concurrent draws.
    for _ in range(REFERENCE_DRAWS):
        reference = random_reference()
        taken = await session.scalar(_REFERENCE_TAKEN, {"tenant_id": tenant_id, "reference": reference})
        if taken is None:
            return reference
    raise RuntimeError("no free coupon reference after several random draws")

"""Transaction history: own entries only, newest first, contract and date filters in the tenant's zone, pagination."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import transaction_controller
from controllers.errors import DomainValidationError
from models.tenant_model import Tenant
from tests.payment_builders import make_coupon, make_debtor


async def history(session: AsyncSession, tenant: Tenant, customer_id: int | None, **filters: object) -> list[tuple[str, str]]:
    page = await transaction_controller.list_transactions(session=session, tenant=tenant, customer_id=customer_id, **filters)  # type: ignore[arg-type]
    return [(e.kind, e.reference) for e in page.items]


async def test_entries_are_the_customers_own_newest_first(session: AsyncSession, tenant: Tenant) -> None:
    mine = await make_debtor(session, tenant)
    theirs = await make_debtor(session, tenant, name="Pedro Ruiz")
    first = (await make_coupon(session, tenant, mine, now=datetime(2026, 11, 2, 12, tzinfo=UTC))).coupon.reference
    await make_coupon(session, tenant, theirs, now=datetime(2026, 11, 3, 12, tzinfo=UTC))
    second = (await make_coupon(session, tenant, mine, now=datetime(2026, 11, 4, 12, tzinfo=UTC))).coupon.reference
    assert await history(session, tenant, mine.customer.id) == [("coupon_created", second), ("coupon_created", first)]
    assert await history(session, tenant, None) == []


async def test_filter_by_contract_number_or_id(session: AsyncSession, tenant: Tenant) -> None:
    one = await make_debtor(session, tenant)
    two = await make_debtor(session, tenant, customer=one.customer)
    ref_one = (await make_coupon(session, tenant, one)).coupon.reference
    ref_two = (await make_coupon(session, tenant, two)).coupon.reference
    customer_id = one.customer.id
    assert await history(session, tenant, customer_id, contract_number=one.contract.contract_number) == [("coupon_created", ref_one)]
    assert await history(session, tenant, customer_id, contract_id=two.contract.id) == [("coupon_created", ref_two)]
    other = await make_debtor(session, tenant, name="Pedro Ruiz")
    assert await history(session, tenant, customer_id, contract_number=other.contract.contract_number) == []


async def test_dates_are_whole_days_in_the_tenant_zone(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=date(2026, 11, 30))
    # 03:00 UTC on the 5th is still the 4th in Bogotá.
    late_evening = (await make_coupon(session, tenant, debtor, now=datetime(2026, 11, 5, 3, 0, tzinfo=UTC))).coupon.reference
    next_day = (await make_coupon(session, tenant, debtor, now=datetime(2026, 11, 5, 15, 0, tzinfo=UTC))).coupon.reference
    customer_id = debtor.customer.id
    assert await history(session, tenant, customer_id, date_from=date(2026, 11, 4), date_to=date(2026, 11, 4)) == [("coupon_created", late_evening)]
    assert await history(session, tenant, customer_id, date_from=date(2026, 11, 5)) == [("coupon_created", next_day)]
    assert await history(session, tenant, customer_id, date_to=date(2026, 11, 3)) == []
    with pytest.raises(DomainValidationError):
        await history(session, tenant, customer_id, date_from=date(2026, 11, 6), date_to=date(2026, 11, 5))


async def test_pages_follow_the_cursor(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=date(2026, 11, 30))
    references = [
        (await make_coupon(session, tenant, debtor, now=datetime(2026, 11, day, 12, tzinfo=UTC))).coupon.reference for day in (1, 2, 3)
    ]
    first = await transaction_controller.list_transactions(session=session, tenant=tenant, customer_id=debtor.customer.id, limit=2)
    assert [e.reference for e in first.items] == references[::-1][:2]
    assert first.next_cursor is not None
    second = await transaction_controller.list_transactions(
        session=session, tenant=tenant, customer_id=debtor.customer.id, limit=2, cursor=first.next_cursor
    )
    assert [e.reference for e in second.items] == [references[0]]
    assert second.next_cursor is None
    assert second.items[0].amount == Decimal(85000)

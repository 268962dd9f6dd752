"""The demo accounts: plausible, deterministic, a rollover and a high case, and a customer login that works."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import demo_accounts
from domain.national_id import normalize_national_id
from domain.readings import compute_consumption
from models.account_model import Contract, Customer, Meter, Reading
from models.tenant_model import Tenant
from models.user_model import User
from tests.conftest import ApiClient

TODAY = date(2026, 11, 23)


def test_periods_end_with_the_last_complete_month() -> None:
    periods = demo_accounts.demo_periods(TODAY)
    assert (len(periods), periods[0], periods[-1]) == (12, "2025-11", "2026-10")
    assert demo_accounts.demo_periods(date(2026, 1, 5))[-1] == "2025-12"
    assert demo_accounts.demo_periods(date(2026, 1, 5))[0] == "2025-01"


async def _count(session: AsyncSession, model: type, tenant: Tenant) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant.id)) or 0)  # type: ignore[attr-defined]


async def test_seed_accounts(session: AsyncSession, tenant: Tenant) -> None:
    logins = await demo_accounts.seed_accounts(session=session, tenant=tenant, rounds=4, today=TODAY)
    await session.commit()
    assert [(login["role"], login["email"]) for login in logins] == [("customer", "cliente@demo.cuponera.co")]
    assert len(logins[0]["password"]) >= 16
    counts = [await _count(session, model, tenant) for model in (Customer, Contract, Meter, Reading)]
    assert counts == [50, 50, 50, 600]

    customers = list(await session.scalars(select(Customer).order_by(Customer.id)))
    for customer in customers:
        again = normalize_national_id(customer.national_id_type, customer.national_id)
        assert (again.number, again.display) == (customer.national_id, customer.national_id_display)
    assert any(ch in "áéíóúñÁÉÍÓÚÑ" for c in customers for ch in c.name)
    contracts = list(await session.scalars(select(Contract).order_by(Contract.id)))
    assert {c.stratum for c in contracts} == {"1", "2", "3", "4", "5", "6", "commercial"}
    services = Counter(c.service for c in contracts)
    assert services["electricity"] > services["water"] > 0 and services["gas"] > 0
    by_customer = {c.id: c for c in customers}
    assert all(by_customer[c.customer_id].national_id_type == ("nit" if c.stratum == "commercial" else "cc") for c in contracts)

    user = await session.scalar(select(User).where(User.email == "cliente@demo.cuponera.co"))
    assert user is not None and (user.role, user.customer_id) == ("customer", customers[0].id)


async def test_readings_are_consistent_and_flag_one_rollover_and_one_high(session: AsyncSession, tenant: Tenant) -> None:
    await demo_accounts.seed_accounts(session=session, tenant=tenant, rounds=4, today=TODAY)
    await session.commit()
    meters = {m.id: m for m in await session.scalars(select(Meter))}
    readings = list(await session.scalars(select(Reading).order_by(Reading.meter_id, Reading.period)))
    previous: dict[int, Decimal] = {}
    for reading in readings:
        meter = meters[reading.meter_id]
        assert "2025-11" <= reading.period <= "2026-10"
        assert meter.installed_on < date(2025, 11, 1)
        assert reading.read_on is not None and reading.read_on.strftime("%Y-%m") == reading.period
        result = compute_consumption(
            previous=previous.get(meter.id, meter.initial_value), current=reading.value, register_digits=meter.register_digits
        )
        assert reading.consumption == result.quantity > 0
        previous[meter.id] = reading.value
    flagged = [(r.period, r.flags) for r in readings if r.flags]
    assert sorted(flag for _, flag in flagged) == ["high", "rollover"]
    assert ("2026-10", "high") in flagged


async def test_same_seed_same_accounts(session: AsyncSession, tenant: Tenant) -> None:
    other = Tenant(code="otra", name="Otra", country="CO", currency="COP", timezone="America/Bogota", gln="7709998000025")
    session.add(other)
    await session.flush()
    for target in (tenant, other):
        await demo_accounts.seed_accounts(session=session, tenant=target, rounds=4, today=TODAY)
    await session.commit()

    async def names(target: Tenant) -> list[tuple[str, str, str]]:
        rows = await session.execute(
            select(Customer.name, Customer.national_id, Contract.contract_number)
            .join(Contract, Contract.customer_id == Customer.id)
            .where(Customer.tenant_id == target.id)
            .order_by(Customer.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    assert await names(tenant) == await names(other)


async def test_demo_customer_logs_in_and_sees_its_contract(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    logins = await demo_accounts.seed_accounts(session=session, tenant=tenant, rounds=4, today=TODAY)
    await session.commit()
    client = ApiClient(app)
    assert (await client.login(logins[0]["email"], logins[0]["password"])).status_code == 200
    contracts = (await (await client.get("/api/v1/me/contracts")).get_json())["items"]
    assert len(contracts) == 1
    readings = await (await client.get(f"/api/v1/me/contracts/{contracts[0]['id']}/readings")).get_json()
    assert [r["period"] for r in readings["items"]][:2] == ["2026-10", "2026-09"]

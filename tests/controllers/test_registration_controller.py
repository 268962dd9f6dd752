"""Self-registration under concurrency: one customer record gets at most one login."""

from __future__ import annotations

import asyncio

import pytest
from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import registration_controller
from controllers.errors import Conflict
from models.tenant_model import Tenant
from models.user_model import User
from tests.factories import make_contract, make_customer, make_customer_user


async def test_simultaneous_registrations_give_one_login(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    customer = await make_customer(session, tenant, national_id_type="cc", national_id="52123456")
    await make_contract(session, customer, contract_number="C-1")
    await session.commit()
    sql = app.extensions["cuponera"].sql

    async def attempt(email: str) -> str:
        async with sql.session_scope(write=True) as own:
            try:
                await registration_controller.register_customer(
                    session=own, tenant=tenant, email=email, password="una clave bien larga", full_name="Ana",
                    national_id_type="cc", national_id="52.123.456", contract_number="c-1", rounds=4,
                )
            except Conflict as exc:
                return exc.code
            return "created"

    outcomes = await asyncio.gather(attempt("a@example.com"), attempt("b@example.com"), attempt("c@example.com"))
    assert sorted(outcomes) == ["already_registered", "already_registered", "created"]
    linked = await session.scalar(select(func.count()).select_from(User).where(User.customer_id == customer.id))
    assert linked == 1


async def test_the_database_allows_one_login_per_customer(session: AsyncSession, tenant: Tenant) -> None:
    customer = await make_customer(session, tenant)
    await make_customer_user(session, customer)
    with pytest.raises(IntegrityError):
        await make_customer_user(session, customer)

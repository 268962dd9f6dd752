"""Reading files through the controller: the same file sent several times at once is taken in once."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal as D

from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import reading_file_controller
from controllers.reading_file_controller import ReadingFileResult
from models.account_model import Reading
from models.reading_file_model import ReadingFile
from models.tenant_model import Tenant
from tests.factories import make_contract, make_customer, make_meter

TODAY = date(2026, 11, 23)
SENDERS = 5


async def test_the_same_file_sent_at_once_is_taken_in_once(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    meters = []
    for _ in range(3):
        contract = await make_contract(session, await make_customer(session, tenant))
        meters.append(await make_meter(session, contract, initial_value=D(100)))
    await session.commit()
    content = ("serial,period,value,reader\n" + "".join(f"{m.serial},2026-10,150,R\n" for m in meters)).encode()
    sql = app.extensions["cuponera"].sql

    async def send() -> ReadingFileResult:
        async with sql.session_scope(write=True) as own:
            return await reading_file_controller.import_reading_file(
                session=own, tenant=tenant, content=content, today=TODAY
            )

    results = await asyncio.gather(*(send() for _ in range(SENDERS)))
    assert sorted(r.created for r in results) == [False] * (SENDERS - 1) + [True]
    assert {r.file.id for r in results} == {results[0].file.id}
    assert {(r.file.accepted, r.file.rejected, len(r.issues)) for r in results} == {(3, 0, 0)}
    assert await session.scalar(select(func.count()).select_from(ReadingFile)) == 1
    stored = await session.scalars(select(Reading.consumption).where(Reading.meter_id.in_([m.id for m in meters])))
    assert list(stored) == [D("50.000")] * 3

"""Credit notes under concurrency: one gap-free number each, and the amount due moves by exactly their sum."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import note_controller
from domain.caller import Caller
from models.billing_model import Invoice
from models.note_model import InvoiceNote
from models.notification_model import Notification
from models.tenant_model import Tenant
from tests.payment_builders import make_debtor

NOTES = 10


async def test_ten_concurrent_credit_notes_are_numbered_without_gaps(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000",))
    invoice_id = debtor.invoices[0].id
    sql = app.extensions["cuponera"].sql
    operator = Caller(user_id=None, role="operator")

    async def issue(n: int) -> str:
        async with sql.session_scope(write=True) as db:
            own = await db.get_one(Tenant, tenant.id)
            view = await note_controller.issue_note(
                session=db, tenant=own, caller=operator, invoice_id=invoice_id, kind="credit",
                amount=Decimal(1000 + n), reason=f"Ajuste {n}",
            )
            return view.note.number

    numbers = await asyncio.gather(*(issue(n) for n in range(NOTES)))

    assert sorted(numbers) == [f"NC-2026-{n:06d}" for n in range(1, NOTES + 1)]
    await session.rollback()
    due = await session.scalar(select(Invoice.amount_due).where(Invoice.id == invoice_id))
    assert due == Decimal(85000) - sum(Decimal(1000 + n) for n in range(NOTES))
    notes = (await session.scalars(select(InvoiceNote).where(InvoiceNote.invoice_id == invoice_id))).all()
    # In number order, each note starts from the amount due the one before it left: no lost update.
    chain = sorted(notes, key=lambda note: note.number)
    assert chain[0].amount_due_before == Decimal(85000)
    for note in chain:
        assert note.amount_due_before - note.amount_due_after == note.amount
    for earlier, later in itertools.pairwise(chain):
        assert later.amount_due_before == earlier.amount_due_after
    keys = (await session.scalars(select(Notification.dedupe_key).where(Notification.event == "credit_note_issued"))).all()
    assert sorted(keys) == sorted(f"credit_note_issued:{note.id}" for note in notes)

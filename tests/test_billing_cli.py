"""Billing CLI commands run as an operator would: `quart --app app bill-run` and `mark-overdue`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.billing_model import Invoice
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import TestDatabase
from tests.factories import make_contract, make_customer, make_invoice
from tests.test_cli import run_cli


async def test_bill_run_shows_progress_and_prints_the_counts(
    session: AsyncSession, tenant: Tenant, database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    await make_tariff(session, tenant, "electricity")
    for value in (100, 200, 300):
        await make_metered_contract(session, tenant, readings={"2026-10": (value, value)})
    await make_metered_contract(session, tenant)
    await session.commit()

    code, out, err = await run_cli(
        ["bill-run", "--period", "2026-10", "--batch-size", "2"],
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path,
    )

    assert code == 0, err
    assert "Billing 2026-10" in out + err
    assert "completed: billed 3, skipped 1, estimated 0, flagged 0, failed 0" in out
    numbers = (await session.scalars(select(Invoice.number).order_by(Invoice.number))).all()
    assert numbers == ["FAC-2026-000001", "FAC-2026-000002", "FAC-2026-000003"]

    code, out, _ = await run_cli(
        ["bill-run", "--period", "2026-10", "--tenant", "default"],
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path,
    )
    assert code == 0 and "billed 0, skipped 4" in out


async def test_bill_run_reports_a_bad_period_or_tenant_as_an_error(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    code, _, err = await run_cli(
        ["bill-run", "--period", "2026-13"], database_url=database_url, schema=test_database.schema, var_dir=tmp_path
    )
    assert code != 0 and "invalid_period" in err
    code, _, err = await run_cli(
        ["bill-run", "--period", "2026-10", "--tenant", "nope"],
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path,
    )
    assert code != 0 and "tenant_not_found" in err


async def test_mark_overdue_moves_past_due_invoices(
    session: AsyncSession, tenant: Tenant, database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    contract = await make_contract(session, await make_customer(session, tenant))
    await make_invoice(session, contract, period="2026-01", due_on=date(2026, 2, 1), number="H-1")
    await make_invoice(session, contract, period="2026-02", due_on=date(2099, 1, 1), number="H-2")
    await session.commit()

    code, out, err = await run_cli(
        ["mark-overdue"], database_url=database_url, schema=test_database.schema, var_dir=tmp_path
    )

    assert code == 0, err
    assert "1 invoices are now overdue" in out
    statuses = (await session.execute(select(Invoice.number, Invoice.status).order_by(Invoice.number))).all()
    assert [tuple(s) for s in statuses] == [("H-1", "overdue"), ("H-2", "issued")]

"""The quick-pay pair's statements: how many each transaction runs, and (SQLite) that none walks a tenant's rows.

The pair (a coupon by contract number, then an approved card payment) is the portal's busiest write
after a bill run. Its cost is per statement, so the counts are pinned here; a new statement in the
path should be a decision, not an accident. SQLite has no statistics in a fresh database, and with a
tenant condition next to a key it used to pick the (tenant, status, due_on) index: every unpaid
invoice of the tenant, per coupon. The plans of every statement the pair runs are checked.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from quart import Quart
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.payment_builders import Debtor, make_debtor
from tests.routes.test_payment_routes import DUE

# Indexes that hold a whole tenant's (or every tenant's) rows: a key-bounded statement must not walk them.
TENANT_WIDE = ("ix_invoices_tenant_id_status_due_on", "ix_invoices_tenant_id_period")


def record(app: Quart) -> list[tuple[str, Any]]:
    """Every statement (and BEGIN/COMMIT) the app's engines run from now on, with its parameters."""
    sql = app.extensions["cuponera"].sql
    log: list[tuple[str, Any]] = []
    for engine in {sql.engine.sync_engine, sql.write_engine.sync_engine}:
        event.listen(engine, "before_cursor_execute", lambda conn, cur, stmt, params, ctx, many: log.append((stmt, params)))
        event.listen(engine, "commit", lambda conn: log.append(("COMMIT", None)))
    return log


def transactions(log: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    """The log cut at each COMMIT."""
    found: list[list[tuple[str, Any]]] = [[]]
    for statement, params in log:
        if statement == "COMMIT":
            found.append([])
        else:
            found[-1].append((statement, params))
    return [t for t in found if t]


async def test_quick_pay_runs_these_statements_each_bounded_by_a_key(
    app: Quart, client: ApiClient, session: AsyncSession, tenant: Tenant, database_url: str
) -> None:
    # Other contracts' unpaid invoices: what a tenant-wide walk would read.
    for n in range(3):
        await make_debtor(session, tenant, name=f"Vecino {n}", amounts=("1000", "2000"), due_on=DUE)
    debtor: Debtor = await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)
    await session.commit()
    await client.get("/api/v1/tenant")  # the tenant is kept per process from here on
    log = record(app)

    coupon = await client.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})
    assert coupon.status_code == 201
    reference = (await coupon.get_json())["reference"]
    payment = await client.post(
        "/api/v1/payments", json={"coupon_reference": reference, "card_token": "tok_approved"}, headers={"Idempotency-Key": "k-1"}
    )
    assert payment.status_code == 201
    assert (await payment.get_json())["status"] == "approved"

    # The coupon, the claim, the settlement.
    assert [len(t) for t in transactions(log)] == [11, 7, 14]
    if database_url.startswith("sqlite"):
        db = sqlite3.connect(database_url.split("///", 1)[1])
        try:
            for statement, params in log:
                if statement == "COMMIT":
                    continue
                rows = params[0] if isinstance(params, list) else params
                plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", rows or ()))
                assert not any(index in plan for index in TENANT_WIDE), (statement, plan)
                assert "SCAN invoices" not in plan and "SCAN coupons" not in plan, (statement, plan)
        finally:
            db.close()

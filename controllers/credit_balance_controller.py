"""Credit balances the bill run applies: an open credit goes onto the contract's next invoice as a
negative `Saldo a favor` line, exactly once.

Why a line and not an allocation: the invoice then states what the customer owes on paper (like the
`Saldo anterior` line that carries arrears in), its total and amount due stay equal while it is open
(which coupons, payments and reversals rely on), and the coupon asks for exactly that total. The line
is untaxed, as arrears are: the money was taxed on its own invoice. A credit larger than the bill is
applied only up to a total of zero (domain/charges.py, rule 2); the rest stays open on the credit
(`used_amount` grows by what was taken) for the next bill or a refund.

Exactly once: the bill run is idempotent per contract and period (a billed contract is skipped, so its
credits are not loaded again), a batch is one transaction, and each taking is a conditional UPDATE on
the credit's `used_amount` as the batch read it. When a refund took from a credit meanwhile, the check
after the UPDATE finds it and the batch is redone, reading the credit again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from clients.bulk_insert import first_unexpected
from controllers import transaction_controller
from controllers.transaction_controller import LedgerRow
from domain.charges import PendingCharge
from models.account_model import Contract
from models.payment_model import CreditApplication, CreditBalance

CREDIT_DESCRIPTION = "Saldo a favor"


@dataclass(frozen=True, slots=True)
class HeldCredit(PendingCharge):
    """An open credit balance offered to a bill as an untaxed credit (negative `amount`: what is left of it)."""

    used_before: Decimal = Decimal(0)
    customer_id: int = 0
    currency: str = ""


class CreditTaken(RuntimeError):
    """A refund took from a credit the batch was applying; the batch is redone."""


async def open_credits(conn: AsyncConnection, contracts: Any) -> dict[int, list[HeldCredit]]:
    """Per contract of the batch (`contracts`: the batch's WHERE clause on Contract): its open credits, oldest first."""
    result = await conn.execute(
        select(
            CreditBalance.contract_id, CreditBalance.id, CreditBalance.amount, CreditBalance.used_amount,
            CreditBalance.customer_id, CreditBalance.currency,
        )
        .select_from(Contract)
        .join(CreditBalance, CreditBalance.contract_id == Contract.id)
        .where(contracts, CreditBalance.status == "open")
        .order_by(CreditBalance.contract_id, CreditBalance.id)
    )
    held: dict[int, list[HeldCredit]] = {}
    for contract_id, credit_id, amount, used, customer_id, currency in result:
        if amount > used:
            held.setdefault(contract_id, []).append(
                HeldCredit(credit_id, CREDIT_DESCRIPTION, used - amount, False, used, customer_id, currency)
            )
    return held


async def apply_credits(
    session: AsyncSession,
    conn: AsyncConnection,
    *,
    tenant_id: int,
    applied: list[tuple[str, int, str, HeldCredit, Decimal]],
    now: datetime,
) -> None:
    """Take what the batch's new invoices applied of each credit, with its application row and ledger entry.

    `applied`: (contract number, invoice id, invoice number, credit, applied amount ≤ 0) per credit used.
    """
    rows = [(number, invoice_id, invoice_number, c, -part) for number, invoice_id, invoice_number, c, part in applied if part]
    if not rows:
        return
    table = CreditBalance.__table__
    after = table.c.used_amount + bindparam("take")
    await conn.execute(
        update(table)
        .where(table.c.id == bindparam("credit_id"), table.c.status == "open", table.c.used_amount == bindparam("before"))
        .values(
            used_amount=after,
            status=case((after == table.c.amount, "used"), else_="open"),
            closed_at=case((after == table.c.amount, now), else_=None),
        ),
        [{"credit_id": c.key, "before": c.used_before, "take": take} for _, _, _, c, take in rows],
    )
    expected = {c.key: c.used_before + take for _, _, _, c, take in rows}
    changed = await first_unexpected(conn, CreditBalance.id, CreditBalance.used_amount, expected)
    if changed is not None:
        raise CreditTaken(f"credit balance {changed[0]} changed while the batch applied it")
    await conn.execute(
        insert(CreditApplication),
        [
            {"tenant_id": tenant_id, "credit_balance_id": c.key, "invoice_id": invoice_id, "amount": take, "created_at": now}
            for _, invoice_id, _, c, take in rows
        ],
    )
    await transaction_controller.record_entries(
        session=session,
        entries=[
            LedgerRow(
                tenant_id, c.customer_id, "credit_applied", take, c.currency, invoice_number, None, [number],
                credit_balance_id=c.key, invoice_id=invoice_id,
            )
            for number, invoice_id, invoice_number, c, take in rows
        ],
        now=now,
    )

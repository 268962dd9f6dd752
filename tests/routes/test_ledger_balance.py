"""The ledger balances: after a scenario with invoices, credit and debit notes, a double payment through two
channels, refunds (paid and pending), a reversal and a credit the bill run applied, every contract's balance
worked out from its flows (invoices, notes, ledger entries) equals the one its state shows (amounts due,
open credits, pending refunds)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import note_controller
from controllers.billing_run_controller import run_period
from domain.caller import Caller
from models.account_model import Contract
from models.billing_model import Invoice
from models.note_model import InvoiceNote
from models.payment_model import CreditApplication, CreditBalance, LedgerEntry, Payment, PaymentAllocation, Refund
from tests.billing_builders import make_tariff
from tests.factories import make_meter, make_reading
from tests.payment_builders import make_debtor
from tests.routes.test_payment_concurrency import Served, sql
from tests.routes.test_refund_routes import (  # noqa: F401 (served_app is the `served` fixture)
    admin_session,
    default_tenant,
    double_paid,
    http_for,
    refund,
    served_app,
)

OPERATOR = Caller(role="operator")
ZERO = Decimal(0)


async def _sum(session: AsyncSession, column: object, *where: object) -> Decimal:
    return Decimal(await session.scalar(select(func.coalesce(func.sum(column), 0)).where(*where)) or 0)  # type: ignore[call-overload]


async def flows_balance(session: AsyncSession, contract: Contract) -> Decimal:
    """What the customer owes on the contract from its flows (positive: owes; negative: is owed).

    Invoices bill (their totals, less the credit-balance lines, which move money the customer already
    paid: the `credit_applied` entries put it back), notes correct, payments pay (less the channel fees
    they carried), paid refunds give money back. One contract per customer here, so the customer's
    ledger is the contract's.
    """
    billed = await _sum(session, Invoice.total, Invoice.contract_id == contract.id, Invoice.status != "void")
    notes = await _sum(
        session, InvoiceNote.amount, InvoiceNote.contract_id == contract.id, InvoiceNote.kind == "debit"
    ) - await _sum(session, InvoiceNote.amount, InvoiceNote.contract_id == contract.id, InvoiceNote.kind == "credit")

    def ledger(kind: str) -> object:
        return _sum(session, LedgerEntry.amount, LedgerEntry.customer_id == contract.customer_id, LedgerEntry.kind == kind)

    paid = await ledger("payment_approved") - await ledger("payment_reversed")
    fees = await _sum(
        session, PaymentAllocation.amount, PaymentAllocation.kind == "channel_fee", Payment.customer_id == contract.customer_id,
        Payment.status == "approved", PaymentAllocation.payment_id == Payment.id,
    )
    return billed + await ledger("credit_applied") + notes - (paid - fees) + await ledger("refund_paid")


async def state_balance(session: AsyncSession, contract: Contract) -> Decimal:
    """What the customer owes on the contract from its state: open amounts due, less the money held for it
    (open credits' rest, and refunds committed but not yet paid out)."""
    due = await _sum(session, Invoice.amount_due, Invoice.contract_id == contract.id, Invoice.status.in_(("issued", "overdue")))
    held = await _sum(
        session, CreditBalance.amount - CreditBalance.used_amount, CreditBalance.contract_id == contract.id,
        CreditBalance.status == "open",
    )
    pending = await _sum(session, Refund.amount, Refund.contract_id == contract.id, Refund.status == "pending")
    return due - held - pending


async def pay_by_card(http: httpx.AsyncClient, contract_number: str) -> int:
    coupon = await http.post("/api/v1/coupons", json={"contract_number": contract_number})
    assert coupon.status_code == 201, coupon.text
    paid = await http.post(
        "/api/v1/payments", json={"coupon_reference": coupon.json()["reference"], "card_token": "tok_approved"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert paid.status_code == 201 and paid.json()["status"] == "approved", paid.text
    return int(paid.json()["id"])


async def test_every_contracts_ledger_balances_against_its_documents(served: Served) -> None:
    async with http_for(served) as http:
        # A: paid twice (bank and card) → a credit; refunded by card in part, by transfer in part (pending),
        # and the rest applied by the next bill run.
        double = await double_paid(served, http)
        csrf = await admin_session(served, http)
        body = {"credit_balance_id": double.credit_id, "method": "gateway", "reason": "Pago doble"}
        assert (await refund(http, csrf, str(uuid.uuid4()), **body, amount="50000")).status_code == 201
        transfer = await refund(http, csrf, str(uuid.uuid4()), **{**body, "method": "bank_transfer"}, amount="10000")
        assert transfer.status_code == 201 and transfer.json()["status"] == "pending"

        async with sql(served).session_scope(write=True) as session:
            tenant = await default_tenant(session)
            await make_tariff(session, tenant, "electricity")
            contract = await session.get_one(Contract, double.contract_id)
            meter = await make_meter(session, contract)
            await make_reading(session, meter, "2026-11", 150, 150)
            # B: unpaid, with a debit and a credit note.
            open_debtor = await make_debtor(session, tenant, amounts=("40000",), due_on=date(2099, 1, 15))
            # C and D: each paid by card once.
            paid_debtor = await make_debtor(session, tenant, amounts=("60000",), due_on=date(2099, 1, 15))
            reversed_debtor = await make_debtor(session, tenant, amounts=("30000",), due_on=date(2099, 1, 15))
            open_invoice, paid_invoice = open_debtor.invoices[0].id, paid_debtor.invoices[0].id
            paid_number, reversed_number = paid_debtor.contract.contract_number, reversed_debtor.contract.contract_number
            await session.commit()
            await note_controller.issue_note(
                session=session, tenant=tenant, caller=OPERATOR, invoice_id=open_invoice, kind="debit", amount=Decimal(5000),
                reason="Cargo omitido",
            )
            await note_controller.issue_note(
                session=session, tenant=tenant, caller=OPERATOR, invoice_id=open_invoice, kind="credit",
                amount=Decimal(12000), reason="Reclamo procedente",
            )
        async with http_for(served) as anonymous:
            await pay_by_card(anonymous, paid_number)
            reversed_payment = await pay_by_card(anonymous, reversed_number)
        reversal = await http.post(f"/api/v1/payments/{reversed_payment}/reversal", json={"reason": "contracargo"}, headers=csrf)
        assert reversal.status_code == 200, reversal.text
        async with sql(served).session_scope(write=True) as session:
            tenant = await default_tenant(session)
            # C: a credit note on the paid invoice becomes a credit, refunded by transfer and marked paid.
            view = await note_controller.issue_note(
                session=session, tenant=tenant, caller=OPERATOR, invoice_id=paid_invoice, kind="credit",
                amount=Decimal(20000), reason="Lectura estimada en exceso",
            )
            note_credit = view.credit_balance_id
            # The next bill run applies A's open rest (25000) to its new invoice.
            run = await run_period(session=session, tenant=tenant, period="2026-11", today=date(2026, 12, 5))
            assert run.billed == 1
        by_transfer = await refund(
            http, csrf, str(uuid.uuid4()), credit_balance_id=note_credit, amount="20000", method="bank_transfer", reason="Nota"
        )
        marked = await http.post(f"/api/v1/refunds/{by_transfer.json()['id']}/mark-paid", json={"transfer_reference": "T-1"}, headers=csrf)
        assert marked.status_code == 200, marked.text

    async with sql(served).session_scope() as session:
        contracts = (await session.scalars(select(Contract).order_by(Contract.id))).all()
        assert len(contracts) == 4
        balances = {c.id: (await flows_balance(session, c), await state_balance(session, c)) for c in contracts}
        for contract_id, (from_flows, from_state) in balances.items():
            assert from_flows == from_state, (contract_id, from_flows, from_state)
        # A owes its new invoice (already less its 25000 credit) and is owed the pending transfer; B owes
        # 40000 + 5000 - 12000; C is square; D's invoice is open again after the reversal.
        new_due = await _sum(session, Invoice.amount_due, Invoice.contract_id == double.contract_id, Invoice.period == "2026-11")
        assert new_due > 0 and balances[double.contract_id][1] == new_due - 10000
        assert balances[open_debtor.contract.id][1] == Decimal(33000)
        assert balances[paid_debtor.contract.id][1] == ZERO
        assert balances[reversed_debtor.contract.id][1] == Decimal(30000)

        # Each credit is what was taken of it plus what is left; the ledger names each taking once.
        for credit in (await session.scalars(select(CreditBalance))).all():
            refunded = await _sum(session, Refund.amount, Refund.credit_balance_id == credit.id, Refund.status != "failed")
            applied = await _sum(session, CreditApplication.amount, CreditApplication.credit_balance_id == credit.id)
            assert credit.used_amount == refunded + applied, credit.id
            assert await _sum(
                session, LedgerEntry.amount, LedgerEntry.credit_balance_id == credit.id, LedgerEntry.kind == "refund_paid"
            ) == await _sum(session, Refund.amount, Refund.credit_balance_id == credit.id, Refund.status == "paid")
            assert await _sum(
                session, LedgerEntry.amount, LedgerEntry.credit_balance_id == credit.id, LedgerEntry.kind == "credit_applied"
            ) == applied
        assert await _sum(session, CreditApplication.amount) == Decimal(25000)

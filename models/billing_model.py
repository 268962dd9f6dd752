"""Billing tables: tariff versions, bill runs and their per-contract outcomes, invoices and invoice lines."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.coupon_codes import invoice_reference
from models.base_model import Base, Money, Quantity, UtcDateTime, utcnow

INVOICE_STATUSES = ("issued", "paid", "overdue", "void")
BILLING_RUN_STATUSES = ("queued", "running", "completed", "failed")
# A run waiting for a worker or being worked on: at most one per tenant and period.
ACTIVE_RUN_STATUSES = ("queued", "running")
RUN_ITEM_OUTCOMES = ("skipped", "failed")


class Tariff(Base):
    """One version of a service's tariff, in force from `effective_from` until the next version."""

    __tablename__ = "tariffs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "service", "effective_from"),
        CheckConstraint("late_fee_monthly_rate >= 0 AND late_fee_monthly_rate <= 100", name="late_fee_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    service: Mapped[str] = mapped_column(String(16))
    effective_from: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(Unicode(200), default="")
    currency: Mapped[str] = mapped_column(String(3))
    unit: Mapped[str] = mapped_column(String(8))
    # Decimal values inside these JSON documents are stored as strings, never floats.
    fixed_charges: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    blocks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    stratum_adjustments: Mapped[dict[str, Any]] = mapped_column(JSON)
    taxes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    late_fee_monthly_rate: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    rounding_increment: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


_ACTIVE_RUN = "status IN ('queued', 'running')"


class BillingRun(Base):
    """One bill run of a tenant for a period, with its counts and the worker's progress.

    A worker claims a `queued` run (or a `running` one whose heartbeat stopped) by bumping `claims`;
    each committed batch moves `last_contract_id` and `contracts_done` and beats the heart, and only
    the latest claim may write, so a resumed run goes on from its last committed batch.
    """

    __tablename__ = "billing_runs"
    __table_args__ = (
        Index("ix_billing_runs_tenant_id_period", "tenant_id", "period"),
        # One active run per tenant and period; filtered, as SQL Server, PostgreSQL and SQLite allow.
        Index(
            "uq_billing_runs_active_period", "tenant_id", "period", unique=True,
            sqlite_where=text(_ACTIVE_RUN), postgresql_where=text(_ACTIVE_RUN), mssql_where=text(_ACTIVE_RUN),
        ),
        CheckConstraint("status IN ('queued', 'running', 'completed', 'failed')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    period: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    billed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    estimated: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Unicode(500), nullable=True)
    # The issue date every batch uses, fixed when the run is queued (NULL for runs older than 0010).
    issued_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    contracts_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    contracts_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The cursor: contracts up to this id are done (committed batches only).
    last_contract_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class BillingRunItem(Base):
    """A contract a run could not bill, and why (skipped: already billed or nothing to estimate; failed: an error)."""

    __tablename__ = "billing_run_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    billing_run_id: Mapped[int] = mapped_column(ForeignKey("billing_runs.id"), index=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Unicode(500))


def _reference_of_number(context: Any) -> str:
    # Derived from the number, so inserts that do not name it (tests, tools) still get one.
    return invoice_reference(context.get_current_parameters()["number"])


class Invoice(Base):
    """A bill for one contract and period; `amount_due` is what is still owed."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        UniqueConstraint("contract_id", "period"),
        Index("ix_invoices_tenant_id_status_due_on", "tenant_id", "status", "due_on"),
        Index("ix_invoices_tenant_id_period", "tenant_id", "period"),
        # A customer's invoices newest first (GET /api/v1/me/invoices, the operator search by national ID).
        Index("ix_invoices_tenant_id_customer_id_period", "tenant_id", "customer_id", "period"),
        Index("ix_invoices_tenant_id_payment_reference", "tenant_id", "payment_reference"),
        CheckConstraint("status IN ('issued', 'paid', 'overdue', 'void')", name="status_known"),
        CheckConstraint("amount_due >= 0", name="amount_due_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    number: Mapped[str] = mapped_column(String(30))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    billing_run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id"), nullable=True)
    tariff_id: Mapped[int | None] = mapped_column(ForeignKey("tariffs.id"), nullable=True, index=True)
    reading_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"), nullable=True)
    period: Mapped[str] = mapped_column(String(7))
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="issued")
    # A claim (PQR) on the invoice: excluded from late fees and reminders until answered.
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    currency: Mapped[str] = mapped_column(String(3))
    consumption: Mapped[Decimal] = mapped_column(Quantity(), default=Decimal(0))
    arrears: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    subtotal: Mapped[Decimal] = mapped_column(Money())
    tax: Mapped[Decimal] = mapped_column(Money())
    total: Mapped[Decimal] = mapped_column(Money())
    amount_due: Mapped[Decimal] = mapped_column(Money())
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    void_reason: Mapped[str | None] = mapped_column(Unicode(500), nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Set when a later invoice carried this one's balance as arrears, so no run carries it twice.
    carried_into_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # The reference printed with the invoice's barcode; a bank collection with it pays this invoice alone.
    payment_reference: Mapped[str | None] = mapped_column(String(25), nullable=True, default=_reference_of_number)
    # The current payment agreement that froze this invoice (see models/agreement_model): out of arrears,
    # not payable on its own; kept once the agreement completes and the invoice is paid through it.
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"), nullable=True, index=True)


class InvoiceLine(Base):
    """One line of an invoice, as the billing calculator produced it."""

    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Unicode(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    amount: Mapped[Decimal] = mapped_column(Money())


CHARGE_STATUSES = ("pending", "billed")


class ContractCharge(Base):
    """A one-off charge (amount > 0) or credit (amount < 0) an operator put on a contract.

    The contract's next bill applies it as an `adjustment` line and marks it `billed` with that
    invoice, in the bill's own transaction. A credit larger than the bill is applied only up to
    the bill's total (`billed_amount`); the rest becomes a new pending credit (`carried_from_id`).
    """

    __tablename__ = "contract_charges"
    __table_args__ = (
        # The bill run loads the pending charges of a batch's contracts by contract id.
        Index("ix_contract_charges_contract_id_status", "contract_id", "status"),
        Index("ix_contract_charges_invoice_id", "invoice_id"),
        CheckConstraint("status IN ('pending', 'billed')", name="status_known"),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    description: Mapped[str] = mapped_column(Unicode(200))
    amount: Mapped[Decimal] = mapped_column(Money())
    taxable: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), nullable=True)
    # What the invoice applied: the amount, or for a credit larger than the bill the part it took.
    billed_amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    carried_from_id: Mapped[int | None] = mapped_column(ForeignKey("contract_charges.id"), nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    billed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

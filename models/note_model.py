"""Credit and debit notes: corrections of an issued invoice on paper, numbered from their own sequences."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, String, Unicode, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, Money, UtcDateTime, utcnow

# `credit` lowers what the customer owes (or, on a paid invoice, becomes a credit balance);
# `debit` raises what an unpaid invoice asks for (under-billing).
NOTE_KINDS = ("credit", "debit")
_REBILL = "rebill_seq IS NOT NULL"


class InvoiceNote(Base):
    """A credit or debit note against one invoice; the invoice itself only sees its amount due move.

    `amount_due_before` / `amount_due_after` record the invoice's amount due around the note (equal on a
    paid invoice, whose credit goes to a credit balance instead).
    """

    __tablename__ = "invoice_notes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        Index("ix_invoice_notes_invoice_id_created_at", "invoice_id", "created_at"),
        CheckConstraint("kind IN ('credit', 'debit')", name="kind_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # One note per re-bill step of an invoice: two concurrent re-bills cannot both issue the difference.
        Index(
            "uq_invoice_notes_invoice_id_rebill_seq", "invoice_id", "rebill_seq", unique=True,
            sqlite_where=text(_REBILL), postgresql_where=text(_REBILL), mssql_where=text(_REBILL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(8))
    # NC-2026-000001 / ND-2026-000001: one gap-free counter per tenant and kind.
    number: Mapped[str] = mapped_column(String(30))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Unicode(500))
    # The PQR (of the invoice's customer) the note answers, if any.
    pqr_id: Mapped[int | None] = mapped_column(ForeignKey("pqrs.id"), nullable=True)
    amount_due_before: Mapped[Decimal] = mapped_column(Money())
    amount_due_after: Mapped[Decimal] = mapped_column(Money())
    issued_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Set on a re-bill's note: its step (1, 2, ...) for the invoice, and the invoice's lines before and
    # after it ({"old": [...], "new": [...]}, each line {kind, description, quantity, unit_price, amount}).
    rebill_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rebill_lines: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

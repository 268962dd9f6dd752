"""PQR tables: petitions, complaints, claims and appeals with their legal deadline, and tenant holidays."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Unicode,
    UnicodeText,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, UtcDateTime, utcnow

PQR_TYPES = ("petition", "complaint", "claim", "appeal")
PQR_STATUSES = ("filed", "in_progress", "answered", "closed")
OPEN_STATUSES = ("filed", "in_progress")
# A claim or an appeal about an invoice puts that invoice in dispute until it is answered.
DISPUTING_TYPES = ("claim", "appeal")
SUBJECT_MAX = 200
DESCRIPTION_MAX = 5000
ANSWER_MAX = 5000


class Pqr(Base):
    """A customer's petition, complaint, claim or appeal, with its filing number (radicado) and deadline."""

    __tablename__ = "pqrs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "filing_number"),
        # The operators' work list: open PQRs by deadline.
        Index("ix_pqrs_tenant_id_status_due_on", "tenant_id", "status", "due_on"),
        Index("ix_pqrs_customer_id_filed_at", "customer_id", "filed_at"),
        CheckConstraint("type IN ('petition', 'complaint', 'claim', 'appeal')", name="type_known"),
        CheckConstraint("status IN ('filed', 'in_progress', 'answered', 'closed')", name="status_known"),
        CheckConstraint("status IN ('filed', 'in_progress') OR answer IS NOT NULL", name="answered_has_answer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    filing_number: Mapped[str] = mapped_column(String(30))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # The login that filed it: the customer's own, or an operator's when filed at the counter.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"), nullable=True, index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), nullable=True, index=True)
    type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Unicode(SUBJECT_MAX))
    description: Mapped[str] = mapped_column(UnicodeText)
    status: Mapped[str] = mapped_column(String(16), default="filed")
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    due_on: Mapped[date] = mapped_column(Date)
    answer: Mapped[str | None] = mapped_column(UnicodeText, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class TenantHoliday(Base):
    """A public holiday of the tenant's country: not a business day for legal deadlines."""

    __tablename__ = "tenant_holidays"
    __table_args__ = (UniqueConstraint("tenant_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(Unicode(100))

"""Bank collection files (Asobancaria 2001): one row per file received, and each detail's reconciliation outcome."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Unicode, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, Money, UtcDateTime, utcnow

# `reconciled`: every detail applied (or already applied before); `with_exceptions`: some need an operator.
COLLECTION_FILE_STATUSES = ("reconciled", "with_exceptions")
# What became of one detail. `duplicate`: this reference's collection was already recorded (by the
# bank's API, an earlier file, or a line above in this file): no money moved twice. The others but
# `applied` are exceptions: money the bank took that settled nothing here.
DETAIL_OUTCOMES = (
    "applied",
    "duplicate",
    "unknown_reference",
    "amount_mismatch",
    "expired_coupon",
    "already_paid",
    "not_payable",
)
# Outcomes that need nobody's attention.
SETTLED_OUTCOMES = ("applied", "duplicate")
# How an operator closed an exception. `returned_to_bank`: the bank reversed the credit to its customer;
# `applied_by_hand`: the money was applied here another way (a cash receipt, the right coupon);
# `written_off`: neither, with the reason in the note.
EXCEPTION_RESOLUTIONS = ("returned_to_bank", "applied_by_hand", "written_off")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CollectionFile(Base):
    """One bank collection file, processed once per tenant and content hash, with its reconciliation totals."""

    __tablename__ = "collection_files"
    __table_args__ = (
        UniqueConstraint("tenant_id", "file_hash"),
        CheckConstraint(_in("status", COLLECTION_FILE_STATUSES), name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    # SHA-256 of the file's bytes: the same file uploaded again is answered from this row.
    file_hash: Mapped[str] = mapped_column(String(64))
    bank_code: Mapped[str] = mapped_column(String(3))
    biller_nit: Mapped[str] = mapped_column(String(10))
    collection_date: Mapped[date] = mapped_column(Date)
    # Who sent it: a bank's API key, or an operator who uploaded it.
    bank_api_key_id: Mapped[int | None] = mapped_column(ForeignKey("bank_api_keys.id"), nullable=True)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    detail_count: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal] = mapped_column(Money())
    applied_count: Mapped[int] = mapped_column(Integer)
    applied_total: Mapped[Decimal] = mapped_column(Money())
    exception_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CollectionFileDetail(Base):
    """One 06 detail of a file and what became of it; `payment_id` when it settled a coupon."""

    __tablename__ = "collection_file_details"
    __table_args__ = (
        Index("ix_collection_file_details_collection_file_id_line", "collection_file_id", "line"),
        CheckConstraint(_in("outcome", DETAIL_OUTCOMES), name="outcome_known"),
        CheckConstraint(f"resolution IS NULL OR {_in('resolution', EXCEPTION_RESOLUTIONS)}", name="resolution_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    collection_file_id: Mapped[int] = mapped_column(ForeignKey("collection_files.id"))
    line: Mapped[int] = mapped_column(Integer)
    lot: Mapped[int] = mapped_column(Integer)
    # As the bank wrote it, leading zeros removed.
    reference: Mapped[str] = mapped_column(String(48))
    amount: Mapped[Decimal] = mapped_column(Money())
    outcome: Mapped[str] = mapped_column(String(20))
    # What the reference was for, when the amount did not match.
    expected_amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), nullable=True)
    # An exception an operator has closed: how, why, who and when (set once, by a conditional UPDATE).
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)
    resolution_note: Mapped[str | None] = mapped_column(Unicode(500), nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

"""Reading files: one row per CSV of readings taken in, with its counts and the rows it did not store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Unicode, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, UtcDateTime, utcnow

ISSUE_OUTCOMES = ("rejected", "observed")


class ReadingFile(Base):
    """A reading route's file, once per tenant and content (its SHA-256): sending it again changes nothing."""

    __tablename__ = "reading_files"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    observed: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ReadingFileIssue(Base):
    """A row of a reading file that stored nothing: rejected with a reason code, or an observation."""

    __tablename__ = "reading_file_issues"
    __table_args__ = (
        CheckConstraint(f"outcome IN ({', '.join(repr(v) for v in ISSUE_OUTCOMES)})", name="outcome_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reading_file_id: Mapped[int] = mapped_column(ForeignKey("reading_files.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    # As written in the file (cut to the column's length): an unknown serial is reported too.
    serial: Mapped[str] = mapped_column(Unicode(40))
    period: Mapped[str] = mapped_column(Unicode(16))
    outcome: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Unicode(300))


# Columns in table order, for clients/bulk_insert.FastInsert.
ISSUE_COLUMNS = ("reading_file_id", "line", "serial", "period", "outcome", "code", "message")

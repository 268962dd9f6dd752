"""The notification outbox: one row per message, written in the same transaction as the event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Unicode, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.notification_templates import EVENTS
from models.base_model import Base, UtcDateTime, utcnow

NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed")
# One list of events: the templates define which events exist.
NOTIFICATION_EVENTS = EVENTS


class Notification(Base):
    """An outbox message: who gets it, which template, its payload and its delivery state."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(16), default="email")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True, index=True)
    recipient: Mapped[str | None] = mapped_column(Unicode(254), nullable=True)
    locale: Mapped[str] = mapped_column(String(10), default="es")
    # Money as decimal strings and datetimes as ISO strings with an offset, never floats.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Unicode(1000), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

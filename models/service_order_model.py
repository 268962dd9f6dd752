"""Service orders: a field crew suspends a contract in arrears, or reconnects it once the arrears are paid."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Unicode, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, Money, Quantity, UtcDateTime, utcnow

SERVICE_ORDER_KINDS = ("suspension", "reconnection")
# `pending` until a crew executes it (with the date and the meter reading) or an operator cancels it.
SERVICE_ORDER_STATUSES = ("pending", "executed", "cancelled")

_PENDING = "status = 'pending'"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ServiceOrder(Base):
    """One suspension or reconnection of a contract; at most one pending order per contract and kind.

    `due_at`: for a suspension, the end of the notice the customer was given (a crew executes it no
    earlier); for a reconnection, the legal deadline to reconnect. `amount`: the arrears that caused a
    suspension, or the reconnection fee a reconnection will charge.
    """

    __tablename__ = "service_orders"
    __table_args__ = (
        # Filtered, as SQL Server, PostgreSQL and SQLite allow: executed and cancelled orders pile up freely.
        Index(
            "uq_service_orders_pending_contract_kind", "contract_id", "kind", unique=True,
            sqlite_where=text(_PENDING), postgresql_where=text(_PENDING), mssql_where=text(_PENDING),
        ),
        Index("ix_service_orders_tenant_id_status_kind", "tenant_id", "status", "kind"),
        CheckConstraint(_in("kind", SERVICE_ORDER_KINDS), name="kind_known"),
        CheckConstraint(_in("status", SERVICE_ORDER_STATUSES), name="status_known"),
        CheckConstraint("reading IS NULL OR reading >= 0", name="reading_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(Unicode(300))
    amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    executed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reading: Mapped[Decimal | None] = mapped_column(Quantity(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Who executed or cancelled it, and their remark.
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    note: Mapped[str | None] = mapped_column(Unicode(500), nullable=True)

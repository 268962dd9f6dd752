"""The users table: logins of customers, operators and admins, scoped to a tenant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Unicode, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, UtcDateTime, utcnow

ROLES = ("customer", "operator", "admin")
USER_STATUSES = ("active", "disabled")


class User(Base):
    """A person who logs in; the role decides what it may do."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email"),
        CheckConstraint("role IN ('customer', 'operator', 'admin')", name="role_known"),
        CheckConstraint("status IN ('active', 'disabled')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    email: Mapped[str] = mapped_column(Unicode(254))
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    full_name: Mapped[str] = mapped_column(Unicode(200), default="")
    locale: Mapped[str] = mapped_column(String(10), default="es")
    # Set for customer logins: the customer record it may see. Indexed by the filtered unique
    # `uq_users_customer_id` (models/account_model.py); a second plain index would only cost writes.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_login_window_start: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class LoginThrottle(Base):
    """Failed logins of one email from one address: the lockout key, the same for real and unknown emails."""

    __tablename__ = "login_throttles"
    # Per email AND address: a stranger's guesses lock only the stranger's address out of that email.
    __table_args__ = (UniqueConstraint("tenant_id", "email", "ip"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    email: Mapped[str] = mapped_column(Unicode(254))
    ip: Mapped[str] = mapped_column(String(45))  # the longest textual IPv6 address
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

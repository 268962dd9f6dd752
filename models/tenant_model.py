"""The tenant table: one utility company, its country, currency and billing terms."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Integer, Numeric, String, Unicode, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, Money, UtcDateTime, utcnow

DEFAULT_TENANT_CODE = "default"


class Tenant(Base):
    """A utility company; every business row belongs to exactly one."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("payment_terms_days >= 0", name="payment_terms_nonnegative"),
        CheckConstraint("coupon_validity_hours > 0", name="coupon_validity_positive"),
        CheckConstraint("pqr_answer_business_days > 0", name="pqr_answer_days_positive"),
        CheckConstraint("suspension_after_days > 0", name="suspension_after_days_positive"),
        CheckConstraint("suspension_min_amount >= 0", name="suspension_min_amount_nonnegative"),
        CheckConstraint("suspension_notice_days >= 0", name="suspension_notice_days_nonnegative"),
        CheckConstraint("reconnection_fee >= 0", name="reconnection_fee_nonnegative"),
        CheckConstraint("reconnection_deadline_hours > 0", name="reconnection_deadline_positive"),
        CheckConstraint("agreement_max_instalments > 0", name="agreement_max_instalments_positive"),
        CheckConstraint(
            "agreement_min_down_payment_percent >= 0 AND agreement_min_down_payment_percent < 100",
            name="agreement_min_down_payment_range",
        ),
        CheckConstraint("agreement_monthly_rate >= 0 AND agreement_monthly_rate <= 100", name="agreement_monthly_rate_range"),
        CheckConstraint("agreement_missed_to_break > 0", name="agreement_missed_to_break_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(Unicode(200))
    legal_id: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(Unicode(300), default="")
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(10), default="es")
    gln: Mapped[str] = mapped_column(String(13))
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=15)
    coupon_validity_hours: Mapped[int] = mapped_column(Integer, default=72)
    channel_fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    # Business days to answer a PQR (Colombia: 15 by law); the country pack's default, set per tenant.
    pqr_answer_business_days: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    # The name customers see on emails (the tenant's name when empty) and where their replies go.
    sender_name: Mapped[str] = mapped_column(Unicode(200), default="", server_default="")
    reply_to: Mapped[str | None] = mapped_column(String(254), nullable=True)
    # Suspension and reconnection (issue 17 §2): a contract whose oldest unpaid, undisputed invoice is more
    # than `suspension_after_days` past due, owing at least `suspension_min_amount`, gets a suspension order
    # a crew executes no sooner than `suspension_notice_days` after the customer's notice; once the arrears
    # are paid, a reconnection order due within `reconnection_deadline_hours` carrying `reconnection_fee`.
    suspension_after_days: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    suspension_min_amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0), server_default="0")
    suspension_notice_days: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    reconnection_fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0), server_default="0")
    reconnection_deadline_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    # Payment agreements (models/agreement_model): whether customers may sign one for their own contract, the
    # most monthly instalments and the least down payment (percent of the debt) any agreement may have, the
    # monthly financing rate (percent, simple) a customer's agreement gets and an operator's defaults to, and
    # how many missed instalments break an agreement.
    agreement_self_service: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    agreement_max_instalments: Mapped[int] = mapped_column(Integer, default=12, server_default="12")
    agreement_min_down_payment_percent: Mapped[Decimal] = mapped_column(Numeric(7, 4), default=Decimal(10), server_default="10")
    agreement_monthly_rate: Mapped[Decimal] = mapped_column(Numeric(7, 4), default=Decimal(0), server_default="0")
    agreement_missed_to_break: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

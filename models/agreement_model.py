"""Payment agreements (cuponera de cuotas): overdue invoices frozen into one debt, paid by a booklet of instalments.

The link from an invoice to the agreement that froze it is `invoices.agreement_id`, set while the agreement
is current (and kept once it completes, when the invoice is paid through it); every query that finds arrears
(coupons, the bill run's carried balance and late fees, overdue marking, suspensions, the quick-pay lookup)
filters on that one column, as it does on `carried_into_invoice_id`. `agreement_invoices` is the record of
which invoices an agreement froze and for how much: it outlives a broken or cancelled agreement, whose
invoices get `agreement_id` cleared when they return to arrears.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, Money, UtcDateTime, utcnow

# `current` until every instalment is paid (`completed`), too many are missed (`broken`: the rest falls due at
# once on the frozen invoices) or an operator cancels it before anything is paid (`cancelled`).
AGREEMENT_STATUSES = ("current", "completed", "broken", "cancelled")
# `overdue`: past its due date unpaid (still payable with its coupon while the agreement is current);
# `cancelled`: the agreement broke or was cancelled before it was paid.
INSTALMENT_STATUSES = ("pending", "overdue", "paid", "cancelled")
UNPAID_INSTALMENT_STATUSES = ("pending", "overdue")

_CURRENT = "status = 'current'"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Agreement(Base):
    """A contract's overdue debt turned into a down payment and N monthly instalments, each with its own coupon.

    `total` = `debt` + `financing`; `financing` is simple interest: the balance after the down payment
    times `monthly_rate` percent times the instalment count. At most one current agreement per contract.
    """

    __tablename__ = "agreements"
    __table_args__ = (
        Index(
            "uq_agreements_current_contract_id", "contract_id", unique=True,
            sqlite_where=text(_CURRENT), postgresql_where=text(_CURRENT), mssql_where=text(_CURRENT),
        ),
        Index("ix_agreements_tenant_id_status", "tenant_id", "status"),
        Index("ix_agreements_customer_id", "customer_id"),
        CheckConstraint(_in("status", AGREEMENT_STATUSES), name="status_known"),
        CheckConstraint("debt > 0 AND down_payment >= 0 AND down_payment < debt", name="amounts_valid"),
        CheckConstraint("financing >= 0 AND total = debt + financing", name="total_is_debt_plus_financing"),
        CheckConstraint("instalment_count > 0", name="instalment_count_positive"),
        CheckConstraint("monthly_rate >= 0 AND monthly_rate <= 100", name="monthly_rate_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(16), default="current")
    currency: Mapped[str] = mapped_column(String(3))
    debt: Mapped[Decimal] = mapped_column(Money())
    down_payment: Mapped[Decimal] = mapped_column(Money())
    # Monthly instalments after the down payment (instalment 0).
    instalment_count: Mapped[int] = mapped_column(Integer)
    monthly_rate: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    financing: Mapped[Decimal] = mapped_column(Money())
    total: Mapped[Decimal] = mapped_column(Money())
    # Instalments past due unpaid, as the periodic job last counted them.
    missed_count: Mapped[int] = mapped_column(Integer, default=0)
    signed_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    broken_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AgreementInvoice(Base):
    """An invoice an agreement froze, with its amount due when it was frozen."""

    __tablename__ = "agreement_invoices"

    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True, index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    amount: Mapped[Decimal] = mapped_column(Money())


class AgreementInstalment(Base):
    """One instalment of an agreement (number 0 is the down payment) and the coupon that pays it.

    `amount` = `principal` + `financing`; the principal parts add up to the debt and the financing parts
    to the agreement's financing, each rounding remainder on the last instalment.
    """

    __tablename__ = "agreement_instalments"
    __table_args__ = (
        UniqueConstraint("agreement_id", "number"),
        UniqueConstraint("coupon_id"),
        Index("ix_agreement_instalments_tenant_id_status_due_on", "tenant_id", "status", "due_on"),
        CheckConstraint(_in("status", INSTALMENT_STATUSES), name="status_known"),
        CheckConstraint("number >= 0", name="number_nonnegative"),
        CheckConstraint("principal >= 0 AND financing >= 0 AND amount = principal + financing", name="amount_parts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    number: Mapped[int] = mapped_column(Integer)
    principal: Mapped[Decimal] = mapped_column(Money())
    financing: Mapped[Decimal] = mapped_column(Money())
    amount: Mapped[Decimal] = mapped_column(Money())
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"))
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

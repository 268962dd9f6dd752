"""Payment tables: coupons and their invoices, payments and allocations, credit balances, idempotency keys, the ledger, bank keys and receipts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, Money, UtcDateTime, utcnow

# A case- and accent-sensitive comparison by code point, for keys clients choose.
MSSQL_BINARY_COLLATION = "Latin1_General_100_BIN2"

# `processing` is the claim: one payment attempt (or bank collection) holds the coupon.
COUPON_STATUSES = ("active", "processing", "paid", "expired", "cancelled")
PAYMENT_STATUSES = ("pending", "approved", "declined", "reversed")
# `cash`: received at one of the tenant's offices by an operator (POST /api/v1/cash-payments).
PAYMENT_CHANNELS = ("card", "bank", "cash")
ALLOCATION_KINDS = ("invoice", "channel_fee")
# `credit_applied`: the bill run took (part of) a credit balance off a new invoice; `refund_paid`: a
# refund of a credit balance left the tenant (gateway refund made, or bank transfer marked paid).
LEDGER_KINDS = (
    "coupon_created", "payment_approved", "payment_declined", "payment_reversed", "credit_applied", "refund_paid",
)
IDEMPOTENCY_STATUSES = ("in_progress", "completed")
# Who made a coupon. Only a logged-in customer or staff may supersede other coupons; an anonymous
# quick-pay never cancels anyone's (it reuses its own identical one or makes one alongside). `bank`:
# a bank paying an invoice's own reference.
COUPON_CREATOR_KINDS = ("customer", "staff", "anonymous", "bank")
# `open`: held for the contract (a refund or the next bill run uses it, in whole or in parts: `used_amount`);
# `used`: all of it was applied or refunded; `reversed`: its payment was reversed, so the money went back
# with it.
CREDIT_BALANCE_STATUSES = ("open", "used", "reversed")
REFUND_METHODS = ("gateway", "bank_transfer")
# `pending`: a bank transfer waiting to be made by hand; `paid`: the money left; `failed`: the gateway
# refused, and the amount went back to the credit balance.
REFUND_STATUSES = ("pending", "paid", "failed")
# Why an approved payment could not go to an invoice on its coupon, or `credit_note`: a credit note on a
# paid invoice gave money back.
CREDIT_BALANCE_REASONS = ("invoice_void", "invoice_paid", "invoice_carried", "credit_note")
_PAYMENT_CREDIT = "payment_id IS NOT NULL"
_NOTE_CREDIT = "note_id IS NOT NULL"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Coupon(Base):
    """A payment slip for unpaid invoices of one customer; its reference is what the bank scans."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("tenant_id", "reference"),
        Index("ix_coupons_status_expires_at", "status", "expires_at"),
        CheckConstraint(_in("status", COUPON_STATUSES), name="status_known"),
        CheckConstraint("amount >= 0 AND channel_fee >= 0", name="amounts_nonnegative"),
        CheckConstraint(_in("creator_kind", COUPON_CREATOR_KINDS), name="creator_kind_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reference: Mapped[str] = mapped_column(String(30))
    currency: Mapped[str] = mapped_column(String(3))
    invoices_total: Mapped[Decimal] = mapped_column(Money())
    channel_fee: Mapped[Decimal] = mapped_column(Money())
    amount: Mapped[Decimal] = mapped_column(Money())
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The barcode's (96) date: the day of `expires_at` in the tenant's time zone.
    due_on: Mapped[date] = mapped_column(Date)
    barcode_human_readable: Mapped[str] = mapped_column(String(120))
    barcode_element_string: Mapped[str] = mapped_column(String(120))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # One of COUPON_CREATOR_KINDS: who may cancel it, and what its email says.
    creator_kind: Mapped[str] = mapped_column(String(16), default="customer")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    expired_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # superseded (a newer coupon took its invoices), reversed, invoice_changed (voided, paid elsewhere or carried),
    # or invoice_carried (the bill run carried an invoice's balance into a later invoice).
    cancel_reason: Mapped[str | None] = mapped_column(String(30), nullable=True)


class CouponInvoice(Base):
    """An invoice on a coupon, with the amount due when the coupon was made."""

    __tablename__ = "coupon_invoices"

    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True, index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    amount: Mapped[Decimal] = mapped_column(Money())


class BankApiKey(Base):
    """A bank's API key for posting collections; only its SHA-256 is stored."""

    __tablename__ = "bank_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(Unicode(100))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class Payment(Base):
    """One attempt to pay a coupon in full: by card through the gateway, collected by a bank, or in cash at an office."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(_in("status", PAYMENT_STATUSES), name="status_known"),
        CheckConstraint(_in("channel", PAYMENT_CHANNELS), name="channel_known"),
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    gateway_reference: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    decline_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    bank_api_key_id: Mapped[int | None] = mapped_column(ForeignKey("bank_api_keys.id"), nullable=True)
    # The office that received a cash payment (its receipt prints it); None for the other channels.
    office: Mapped[str | None] = mapped_column(Unicode(60), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reversed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reversed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reversal_reason: Mapped[str | None] = mapped_column(Unicode(500), nullable=True)


class PaymentAllocation(Base):
    """How an approved payment splits: one row per invoice, plus the channel fee if any."""

    __tablename__ = "payment_allocations"
    __table_args__ = (
        CheckConstraint(_in("kind", ALLOCATION_KINDS), name="kind_known"),
        CheckConstraint("kind = 'channel_fee' OR invoice_id IS NOT NULL", name="invoice_for_invoice_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money())


class CreditBalance(Base):
    """Money held for a contract: an approved payment's share an invoice could no longer take (voided, paid
    elsewhere, carried), or a credit note on a paid invoice.

    Held for the invoice's contract, never allocated silently; operators list the open ones as payment
    exceptions. One row per payment and invoice, so a replayed settlement cannot credit twice, and one
    per credit note. Both uniques are filtered (SQL Server's unique constraints count NULLs as equal).
    """

    __tablename__ = "credit_balances"
    __table_args__ = (
        Index(
            "uq_credit_balances_payment_id_invoice_id", "payment_id", "invoice_id", unique=True,
            sqlite_where=text(_PAYMENT_CREDIT), postgresql_where=text(_PAYMENT_CREDIT), mssql_where=text(_PAYMENT_CREDIT),
        ),
        Index(
            "uq_credit_balances_note_id", "note_id", unique=True,
            sqlite_where=text(_NOTE_CREDIT), postgresql_where=text(_NOTE_CREDIT), mssql_where=text(_NOTE_CREDIT),
        ),
        CheckConstraint("payment_id IS NOT NULL OR note_id IS NOT NULL", name="has_source"),
        Index("ix_credit_balances_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
        CheckConstraint(_in("status", CREDIT_BALANCE_STATUSES), name="status_known"),
        CheckConstraint(_in("reason", CREDIT_BALANCE_REASONS), name="reason_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("used_amount >= 0 AND used_amount <= amount", name="used_within_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    amount: Mapped[Decimal] = mapped_column(Money())
    # What refunds and bill runs took so far; `amount - used_amount` is still open. Only a conditional
    # UPDATE that keeps it within `amount` moves it, so two takers never spend the same money.
    used_amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0), server_default="0")
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="open")
    reason: Mapped[str] = mapped_column(String(24))
    # The payment the money came with (or the credit note that gave it back), and the invoice it was meant for.
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), nullable=True)
    note_id: Mapped[int | None] = mapped_column(ForeignKey("invoice_notes.id"), nullable=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CollectionReceipt(Base):
    """A bank's report that a coupon was paid at its counter; one per reference, so repeats are no-ops."""

    __tablename__ = "collection_receipts"
    __table_args__ = (UniqueConstraint("tenant_id", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    # None for a collection file an operator uploaded (the file names its bank by code).
    bank_api_key_id: Mapped[int | None] = mapped_column(ForeignKey("bank_api_keys.id"), nullable=True)
    reference: Mapped[str] = mapped_column(String(30))
    amount: Mapped[Decimal] = mapped_column(Money())
    paid_at: Mapped[datetime] = mapped_column(UtcDateTime())
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Set when the collection came in a bank collection file rather than through the API.
    collection_file_id: Mapped[int | None] = mapped_column(ForeignKey("collection_files.id"), nullable=True)


class IdempotencyKey(Base):
    """A client's Idempotency-Key for payment creation, with the first response to replay."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("tenant_id", "scope", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
        CheckConstraint(_in("status", IDEMPOTENCY_STATUSES), name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    # `user:<id>` for a logged-in caller, `anonymous` for quick-pay.
    scope: Mapped[str] = mapped_column(String(40))
    # Keys are compared byte for byte everywhere: `abc` and `ABC` are two keys. SQLite and PostgreSQL
    # compare so by default; Azure SQL's default collation is case-insensitive, hence the binary one.
    key: Mapped[str] = mapped_column(String(255).with_variant(String(255, collation=MSSQL_BINARY_COLLATION), "mssql"))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="in_progress")
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class LedgerEntry(Base):
    """The append-only transaction history a customer sees: coupons made, payments approved, declined, reversed."""

    __tablename__ = "transactions"
    __table_args__ = (
        Index("ix_transactions_customer_id_created_at", "customer_id", "created_at"),
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(24))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(30))
    # None for the credit-balance entries (`credit_applied`, `refund_paid`), which name their credit instead.
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id"), nullable=True, index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), nullable=True)
    credit_balance_id: Mapped[int | None] = mapped_column(ForeignKey("credit_balances.id"), nullable=True, index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"), nullable=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), nullable=True)
    # A snapshot, so history reads never join back to contracts.
    contract_numbers: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CreditApplication(Base):
    """The part of a credit balance a bill run took off one new invoice (its `Saldo a favor` line)."""

    __tablename__ = "credit_applications"
    __table_args__ = (
        UniqueConstraint("credit_balance_id", "invoice_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    credit_balance_id: Mapped[int] = mapped_column(ForeignKey("credit_balances.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Refund(Base):
    """Money of an open credit balance paid back to the customer, once per Idempotency-Key.

    `gateway`: refunded to the card of the payment the credit came from; `bank_transfer`: executed by
    hand, then marked paid with the transfer's reference.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_refunds_tenant_id_created_at", "tenant_id", "created_at"),
        CheckConstraint(_in("method", REFUND_METHODS), name="method_known"),
        CheckConstraint(_in("status", REFUND_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    credit_balance_id: Mapped[int] = mapped_column(ForeignKey("credit_balances.id"), index=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(Unicode(500))
    idempotency_key: Mapped[str] = mapped_column(
        String(255).with_variant(String(255, collation=MSSQL_BINARY_COLLATION), "mssql")
    )
    request_hash: Mapped[str] = mapped_column(String(64))
    gateway_reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Why the gateway refused a `failed` refund.
    decline_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    transfer_reference: Mapped[str | None] = mapped_column(Unicode(100), nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    paid_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

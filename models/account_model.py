"""Account tables: customers, their contracts, the contracts' meters, readings and reading corrections."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Unicode,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base, Quantity, UtcDateTime, utcnow
from models.user_model import User

SERVICES = ("electricity", "water", "gas")
SERVICE_UNITS = {"electricity": "kWh", "water": "m3", "gas": "m3"}
STRATA = ("1", "2", "3", "4", "5", "6", "commercial", "industrial", "official")
CUSTOMER_STATUSES = ("active", "inactive")
CONTRACT_STATUSES = ("active", "suspended", "terminated")
METER_STATUSES = ("active", "retired")
# What sort of meter it is; informative only (billing treats them alike).
METER_KINDS = ("standard", "smart", "prepaid")
READING_KINDS = ("actual", "estimated", "corrected")
READING_FLAGS = ("rollover", "high", "low", "zero")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Customer(Base):
    """A person or company billed by the tenant, identified by a validated national ID."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "national_id_type", "national_id"),
        Index("ix_customers_tenant_id_name", "tenant_id", "name"),
        # The operator's invoice search finds customers by national ID without its type.
        Index("ix_customers_tenant_id_national_id", "tenant_id", "national_id"),
        CheckConstraint(_in("status", CUSTOMER_STATUSES), name="status_known"),
        CheckConstraint(_in("national_id_type", ("rut", "nit", "cc", "cpf", "cnpj")), name="national_id_type_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(Unicode(200))
    national_id_type: Mapped[str] = mapped_column(String(8))
    national_id: Mapped[str] = mapped_column(String(20))
    national_id_display: Mapped[str] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(Unicode(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(30), nullable=True)
    billing_address: Mapped[str] = mapped_column(Unicode(300), default="")
    locale: Mapped[str] = mapped_column(String(10), default="es")
    # Invoices by email only: a print shop's export leaves these customers out.
    paperless: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class Contract(Base):
    """A supply contract: one service at one address; its number is what customers type in."""

    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "contract_number"),
        Index("ix_contracts_tenant_id_status", "tenant_id", "status"),
        CheckConstraint(_in("service", SERVICES), name="service_known"),
        CheckConstraint(_in("stratum", STRATA), name="stratum_known"),
        CheckConstraint(_in("status", CONTRACT_STATUSES), name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contract_number: Mapped[str] = mapped_column(String(30))
    service: Mapped[str] = mapped_column(String(16))
    supply_address: Mapped[str] = mapped_column(Unicode(300))
    stratum: Mapped[str] = mapped_column(String(16))
    tariff_class: Mapped[str] = mapped_column(String(30), default="residential")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class Meter(Base):
    """A meter on a contract; its register digits decide where it rolls over."""

    __tablename__ = "meters"
    __table_args__ = (
        UniqueConstraint("tenant_id", "serial"),
        CheckConstraint("register_digits BETWEEN 1 AND 12", name="register_digits_range"),
        CheckConstraint("multiplier > 0", name="multiplier_positive"),
        CheckConstraint("initial_value >= 0", name="initial_value_nonnegative"),
        CheckConstraint(_in("status", METER_STATUSES), name="status_known"),
        CheckConstraint(_in("kind", METER_KINDS), name="kind_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    serial: Mapped[str] = mapped_column(String(40))
    register_digits: Mapped[int] = mapped_column(Integer, default=5)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(10, 3), default=Decimal(1))
    initial_value: Mapped[Decimal] = mapped_column(Quantity(), default=Decimal(0))
    installed_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    kind: Mapped[str] = mapped_column(String(16), default="standard", server_default="standard")
    latitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6), nullable=True)
    longitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Reading(Base):
    """The cumulative register value of a meter for one period (`YYYY-MM`), with its consumption and flags."""

    __tablename__ = "readings"
    __table_args__ = (
        UniqueConstraint("meter_id", "period"),
        Index("ix_readings_tenant_id_period", "tenant_id", "period"),
        CheckConstraint("value >= 0", name="value_nonnegative"),
        CheckConstraint(_in("kind", READING_KINDS), name="kind_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    period: Mapped[str] = mapped_column(String(7))
    value: Mapped[Decimal] = mapped_column(Quantity())
    read_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="actual")
    consumption: Mapped[Decimal] = mapped_column(Quantity())
    # Comma-separated subset of READING_FLAGS: portable and cheap to filter with LIKE.
    flags: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class ReadingCorrection(Base):
    """History of a corrected reading: what it was before the operator changed it."""

    __tablename__ = "reading_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    reading_id: Mapped[int] = mapped_column(ForeignKey("readings.id"), index=True)
    previous_value: Mapped[Decimal] = mapped_column(Quantity())
    previous_kind: Mapped[str] = mapped_column(String(16))
    previous_consumption: Mapped[Decimal] = mapped_column(Quantity())
    previous_flags: Mapped[str] = mapped_column(String(64), default="")
    new_value: Mapped[Decimal] = mapped_column(Quantity())
    reason: Mapped[str] = mapped_column(Unicode(500), default="")
    corrected_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    corrected_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


# At most one login per customer record (self-registration answers `already_registered` otherwise).
# Filtered on NOT NULL because a plain unique index on SQL Server would allow a single NULL.
_LINKED = "customer_id IS NOT NULL"
Index(
    "uq_users_customer_id",
    User.__table__.c.customer_id,
    unique=True,
    sqlite_where=text(_LINKED),
    postgresql_where=text(_LINKED),
    mssql_where=text(_LINKED),
)

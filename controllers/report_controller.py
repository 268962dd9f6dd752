"""Receivables and collection reports: aging, collections per day and channel, a period's billing summary.

Each report is one set-based GROUP BY query that the database computes; Python only rounds the few
grouped rows. Date boundaries are computed in Python and bound as parameters, so the same SQL runs on
SQLite, PostgreSQL and Azure SQL without per-dialect date functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import tenant_today
from controllers.errors import DomainValidationError, FieldError
from domain.money import round_money
from domain.period import Period
from models.account_model import Contract
from models.agreement_model import AgreementInstalment
from models.base_model import UtcDateTime
from models.billing_model import Invoice, InvoiceLine
from models.payment_model import CollectionReceipt, Payment
from models.tenant_model import Tenant

# Days overdue that close each aging bucket after `current` (1-30, 31-60, 61-90); the rest is 90+.
AGING_BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "days_90_plus")
_BUCKET_LIMITS = (30, 60, 90)
# Two bound parameters per day: a year of days stays far below Azure SQL's 2 100 parameters.
MAX_COLLECTION_DAYS = 366
# Open invoices are receivables; a carried invoice's balance is counted on the invoice that carried it.
_OPEN_STATUSES = ("issued", "overdue")


@dataclass(frozen=True)
class AgingRow:
    """Open balances of one service and stratum, by days past due at `as_of`."""

    service: str
    stratum: str
    currency: str
    invoices: int
    current: Decimal
    days_1_30: Decimal
    days_31_60: Decimal
    days_61_90: Decimal
    days_90_plus: Decimal
    total: Decimal


@dataclass(frozen=True)
class CollectionRow:
    """What one channel collected on one local day."""

    day: date
    channel: str
    currency: str
    payments: int
    amount: Decimal


@dataclass(frozen=True)
class BillingRow:
    """A period's billing summary for one service and stratum."""

    service: str
    stratum: str
    currency: str
    invoices: int
    consumption: Decimal
    subtotal: Decimal
    subsidies: Decimal
    contributions: Decimal
    taxes: Decimal
    total: Decimal


def _money(value: Decimal | None, currency: str) -> Decimal:
    return round_money(Decimal(value or 0), currency)


async def aging(*, session: AsyncSession, tenant: Tenant, as_of: date | None = None) -> tuple[date, list[AgingRow]]:
    """Open invoice balances issued by `as_of` (default: the tenant's today), per service, stratum and age bucket."""
    as_of = as_of or tenant_today(tenant)
    # An invoice due on as_of or later is current; one due `d` days before as_of is d days overdue.
    bounds = [as_of - timedelta(days=limit) for limit in _BUCKET_LIMITS]
    due = Invoice.due_on
    buckets = [
        due >= as_of,
        and_(due < as_of, due >= bounds[0]),
        and_(due < bounds[0], due >= bounds[1]),
        and_(due < bounds[1], due >= bounds[2]),
        due < bounds[2],
    ]
    columns = [func.sum(case((condition, Invoice.amount_due), else_=0)).label(name) for name, condition in zip(AGING_BUCKETS, buckets)]
    query = (
        select(Contract.service, Contract.stratum, Invoice.currency, func.count(Invoice.id), *columns, func.sum(Invoice.amount_due))
        .join(Contract, Contract.id == Invoice.contract_id)
        .where(
            Invoice.tenant_id == tenant.id,
            Invoice.status.in_(_OPEN_STATUSES),
            Invoice.amount_due > 0,
            Invoice.carried_into_invoice_id.is_(None),
            Invoice.issued_on <= as_of,
        )
        .group_by(Contract.service, Contract.stratum, Invoice.currency)
        .order_by(Contract.service, Contract.stratum, Invoice.currency)
    )
    rows = []
    for service, stratum, currency, count, *sums in (await session.execute(query)).all():
        amounts = [_money(s, currency) for s in sums]
        rows.append(AgingRow(service, stratum, currency, count, *amounts))
    return as_of, rows


def _day_starts(first: date, last: date, tz: ZoneInfo) -> Select:
    """A derived table of (day start, next day start) in UTC, one row per local day."""
    selects = []
    day = first
    while day <= last:
        start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        selects.append(select(literal(start, UtcDateTime()).label("starts_at"), literal(end, UtcDateTime()).label("ends_at")))
        day += timedelta(days=1)
    return union_all(*selects).subquery("days") if len(selects) > 1 else selects[0].subquery("days")


async def collections(*, session: AsyncSession, tenant: Tenant, date_from: date, date_to: date) -> list[CollectionRow]:
    """Approved payments settled on each local day from `date_from` to `date_to` (inclusive), per channel."""
    if date_to < date_from or (date_to - date_from).days >= MAX_COLLECTION_DAYS:
        raise DomainValidationError(
            f"`to` must be on or after `from`, at most {MAX_COLLECTION_DAYS} days in all.",
            code="invalid_date_range",
            errors=[FieldError("to", f"on or after `from`, at most {MAX_COLLECTION_DAYS} days later", "invalid_date_range")],
        )
    tz = ZoneInfo(tenant.timezone)
    days = _day_starts(date_from, date_to, tz)
    channel = _channel_expression()
    query = (
        select(days.c.starts_at, channel.label("channel"), Payment.currency, func.count(Payment.id), func.sum(Payment.amount))
        .select_from(days)
        .join(Payment, and_(Payment.settled_at >= days.c.starts_at, Payment.settled_at < days.c.ends_at))
        # A bank payment has at most one receipt; one from a collection file is the bank_file channel.
        .outerjoin(CollectionReceipt, CollectionReceipt.payment_id == Payment.id)
        # An instalment coupon belongs to at most one instalment.
        .outerjoin(AgreementInstalment, AgreementInstalment.coupon_id == Payment.coupon_id)
        .where(Payment.tenant_id == tenant.id, Payment.status == "approved")
        .group_by(days.c.starts_at, channel, Payment.currency)
        .order_by(days.c.starts_at, channel, Payment.currency)
    )
    return [
        CollectionRow(starts_at.astimezone(tz).date(), channel_name, currency, count, _money(amount, currency))
        for starts_at, channel_name, currency, count, amount in (await session.execute(query)).all()
    ]


# How the collections report names channels: a payment's own channel, with "bank" (a bank's API call)
# as "bank_api", a bank file's as "bank_file", and any payment of a payment agreement's instalment
# coupon (whatever channel paid it) as "agreement".
REPORT_CHANNELS = ("card", "bank_api", "bank_file", "cash", "agreement")


def _channel_expression():  # type: ignore[no-untyped-def]
    """The report's channel of a payment (agreement, card, bank_api, bank_file or cash), from its channel, its receipt
    and its instalment (both outer-joined)."""
    return case(
        (AgreementInstalment.id.is_not(None), "agreement"),
        (and_(Payment.channel == "bank", CollectionReceipt.collection_file_id.is_not(None)), "bank_file"),
        (Payment.channel == "bank", "bank_api"),
        else_=Payment.channel,
    )


async def billing(*, session: AsyncSession, tenant: Tenant, period: str) -> tuple[Period, list[BillingRow]]:
    """A period's invoices (voided ones left out) summed per service and stratum, subsidies and contributions from their lines."""
    try:
        parsed = Period.parse(period)
    except ValueError as exc:
        raise DomainValidationError(
            "The period must be YYYY-MM, from 2000 on.", code="invalid_period",
            errors=[FieldError("period", "must be YYYY-MM, from 2000 on", "invalid_period")],
        ) from exc
    period = str(parsed)
    invoices_of_period = and_(Invoice.tenant_id == tenant.id, Invoice.period == period, Invoice.status != "void")
    # Lines summed per invoice first, so the join to invoices does not repeat an invoice's totals.
    lines = (
        select(
            InvoiceLine.invoice_id.label("invoice_id"),
            func.sum(case((InvoiceLine.kind == "subsidy", InvoiceLine.amount), else_=0)).label("subsidies"),
            func.sum(case((InvoiceLine.kind == "contribution", InvoiceLine.amount), else_=0)).label("contributions"),
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(invoices_of_period, InvoiceLine.kind.in_(("subsidy", "contribution")))
        .group_by(InvoiceLine.invoice_id)
        .subquery("line_sums")
    )
    query = (
        select(
            Contract.service,
            Contract.stratum,
            Invoice.currency,
            func.count(Invoice.id),
            func.sum(Invoice.consumption),
            func.sum(Invoice.subtotal),
            func.sum(lines.c.subsidies),
            func.sum(lines.c.contributions),
            func.sum(Invoice.tax),
            func.sum(Invoice.total),
        )
        .join(Contract, Contract.id == Invoice.contract_id)
        .outerjoin(lines, lines.c.invoice_id == Invoice.id)
        .where(invoices_of_period)
        .group_by(Contract.service, Contract.stratum, Invoice.currency)
        .order_by(Contract.service, Contract.stratum, Invoice.currency)
    )
    rows = []
    for service, stratum, currency, count, consumption, subtotal, subsidies, contributions, taxes, total in (await session.execute(query)).all():
        rows.append(
            BillingRow(
                service, stratum, currency, count, Decimal(consumption or 0),
                *(_money(v, currency) for v in (subtotal, subsidies, contributions, taxes, total)),
            )
        )
    return parsed, rows

"""Suspension and reconnection (issue 17 §2): the job that orders suspensions, the reconnection after payment,
and the crews' orders (list, execute, cancel).

A contract is suspended only when its suspension order is executed, and active again only when its
reconnection order is. Disputed invoices (an open PQR) count for neither the threshold nor the amount.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, exists, false, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import tenant_today
from controllers.coupon_controller import UNPAID_STATUSES
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.outbox_controller import chunks, customer_login_ids, customer_message, enqueue_many
from controllers.pagination import Page, SortKey, paginate
from domain.money import round_money
from models.account_model import Contract, Customer, Meter
from models.agreement_model import Agreement
from models.base_model import utcnow
from models.billing_model import ContractCharge, Invoice
from models.service_order_model import ServiceOrder
from models.tenant_model import Tenant


@dataclass(frozen=True)
class ServiceOrderFilters:
    """List filters; `overdue`: pending reconnections past their deadline."""

    kind: str | None = None
    status: str | None = None
    contract_number: str | None = None
    overdue: bool | None = None


@dataclass(frozen=True)
class ServiceOrderRow:
    """An order with what a crew needs to find the place: one list row and one CSV line."""

    id: int
    kind: str
    status: str
    contract_id: int
    contract_number: str
    service: str
    supply_address: str
    customer_name: str
    meter_serial: str | None
    reason: str
    amount: Decimal
    currency: str
    created_at: datetime
    due_at: datetime
    executed_at: datetime | None
    reading: Decimal | None
    cancelled_at: datetime | None
    note: str | None
    overdue: bool


# How far ahead of the server a crew's device clock may run.
CREW_CLOCK_SKEW = timedelta(minutes=5)

# CSV columns for field crews, in this order.
CSV_COLUMNS = (
    "id", "kind", "status", "contract_number", "service", "supply_address", "customer_name", "meter_serial",
    "reason", "created_at", "due_at", "overdue",
)


def _open_arrears(tenant_id: int) -> Any:
    """Conditions of an invoice that counts as unpaid for suspension: unpaid, not carried, not disputed."""
    return and_(
        Invoice.tenant_id == tenant_id,
        Invoice.status.in_(UNPAID_STATUSES),
        Invoice.carried_into_invoice_id.is_(None),
        Invoice.disputed == false(),
        Invoice.amount_due > 0,
        Invoice.agreement_id.is_(None),
    )


async def order_suspensions(*, session: AsyncSession, now: datetime) -> int:
    """The periodic job: a suspension order (and its notice) for each active contract whose oldest unpaid,
    undisputed invoice is more than the tenant's `suspension_after_days` past due and whose past-due debt is
    at least `suspension_min_amount`. Set-based per tenant; idempotent (one pending order per contract).

    Returns how many orders it created; commits.
    """
    created = 0
    for tenant in list((await session.scalars(select(Tenant).order_by(Tenant.id))).all()):
        created += await _order_tenant_suspensions(session, tenant, now)
    await session.commit()
    return created


async def _order_tenant_suspensions(session: AsyncSession, tenant: Tenant, now: datetime) -> int:
    today = tenant_today(tenant, now)
    threshold = today - timedelta(days=tenant.suspension_after_days)
    arrears = (
        select(
            Invoice.contract_id.label("contract_id"),
            func.min(Invoice.due_on).label("oldest_due_on"),
            func.sum(Invoice.amount_due).label("amount"),
        )
        .where(_open_arrears(tenant.id), Invoice.due_on < today)
        .group_by(Invoice.contract_id)
        .having(func.min(Invoice.due_on) < threshold, func.sum(Invoice.amount_due) >= tenant.suspension_min_amount)
        .subquery()
    )
    pending = exists().where(
        ServiceOrder.contract_id == Contract.id, ServiceOrder.kind == "suspension", ServiceOrder.status == "pending"
    )
    # A contract with a current payment agreement is left out, whatever else it owes.
    covered = exists().where(Agreement.contract_id == Contract.id, Agreement.status == "current")
    rows = (
        await session.execute(
            select(arrears.c.contract_id, arrears.c.oldest_due_on, arrears.c.amount, Contract.contract_number,
                   Contract.supply_address, Contract.customer_id)
            .join(Contract, Contract.id == arrears.c.contract_id)
            .where(Contract.tenant_id == tenant.id, Contract.status == "active", ~pending, ~covered)
            .order_by(arrears.c.contract_id)
        )
    ).all()
    if not rows:
        return 0
    due_at = now + timedelta(days=tenant.suspension_notice_days)
    await session.execute(
        insert(ServiceOrder.__table__),
        [
            {
                "tenant_id": tenant.id, "contract_id": row.contract_id, "kind": "suspension", "status": "pending",
                "reason": f"Unpaid since {row.oldest_due_on.isoformat()}: {round_money(row.amount, tenant.currency)} {tenant.currency} past due",
                "amount": row.amount, "currency": tenant.currency, "created_at": now, "due_at": due_at,
            }
            for row in rows
        ],
    )
    await _queue_notices(session, tenant, rows, due_at)
    return len(rows)


async def _queue_notices(session: AsyncSession, tenant: Tenant, rows: Sequence[Any], due_at: datetime) -> None:
    """The `suspension_notice` of each new order, once per order."""
    order_ids: dict[int, int] = {}
    for chunk in chunks([row.contract_id for row in rows]):
        found = await session.execute(
            select(ServiceOrder.contract_id, ServiceOrder.id).where(
                ServiceOrder.contract_id.in_(chunk), ServiceOrder.kind == "suspension", ServiceOrder.status == "pending"
            )
        )
        order_ids.update({contract_id: order_id for contract_id, order_id in found.all()})
    customer_ids = sorted({row.customer_id for row in rows})
    customers: dict[int, Any] = {}
    for chunk in chunks(customer_ids):
        found_customers = await session.execute(
            select(Customer.id, Customer.name, Customer.email, Customer.locale).where(Customer.id.in_(chunk))
        )
        customers.update({c.id: c for c in found_customers.all()})
    logins = await customer_login_ids(session, customer_ids)
    suspend_from = tenant_today(tenant, due_at).isoformat()
    await enqueue_many(
        session=session,
        messages=[
            customer_message(
                tenant, customers[row.customer_id], logins.get(row.customer_id), "suspension_notice",
                f"suspension_notice:{order_ids[row.contract_id]}",
                {
                    "contract_number": row.contract_number,
                    "supply_address": row.supply_address,
                    "amount_due": str(round_money(row.amount, tenant.currency)),
                    "oldest_due_date": row.oldest_due_on.isoformat(),
                    "suspend_from": suspend_from,
                },
            )
            for row in rows
        ],
    )


def _still_owing() -> Any:
    """A contract (correlated) still in arrears: an unpaid, undisputed invoice that is overdue or carries arrears."""
    return exists().where(
        Invoice.contract_id == Contract.id,
        Invoice.status.in_(UNPAID_STATUSES),
        Invoice.carried_into_invoice_id.is_(None),
        Invoice.disputed == false(),
        Invoice.amount_due > 0,
        # A payment agreement's frozen invoices are not arrears while it is current.
        Invoice.agreement_id.is_(None),
        or_(Invoice.status == "overdue", Invoice.arrears > 0),
    )


# Of some contracts, those that owe no arrears now, with their tenant's reconnection terms; built once per
# process (every payment runs it), the ids an expanding parameter.
_PAID_UP = (
    select(Contract.id, Contract.tenant_id, Contract.status, Tenant.currency, Tenant.reconnection_fee, Tenant.reconnection_deadline_hours)
    .join(Tenant, Tenant.id == Contract.tenant_id)
    .where(Contract.id.in_(bindparam("contract_ids", expanding=True)), Contract.status.in_(("active", "suspended")), ~_still_owing())
    .order_by(Contract.id)
)


async def after_invoices_paid(*, session: AsyncSession, invoice_ids: Sequence[int], now: datetime) -> None:
    """Called where payments settle invoices (in the payment's transaction): for each contract of these
    invoices that no longer owes arrears, a pending suspension is cancelled and a suspended contract gets
    a reconnection order due within the tenant's deadline, carrying its reconnection fee. Set-based.
    """
    if not invoice_ids:
        return
    contract_ids: set[int] = set()
    for chunk in chunks(sorted(invoice_ids)):
        contract_ids.update((await session.scalars(select(Invoice.contract_id).where(Invoice.id.in_(chunk)))).all())
    await after_contracts_paid(session=session, contract_ids=sorted(contract_ids), now=now)


async def after_contracts_paid(*, session: AsyncSession, contract_ids: Sequence[int], now: datetime) -> None:
    """`after_invoices_paid` for the contracts of the invoices paid, when the caller already has them."""
    for chunk in chunks(sorted(set(contract_ids))):
        paid_up = (await session.execute(_PAID_UP, {"contract_ids": chunk})).all()
        if not paid_up:
            continue
        await session.execute(
            update(ServiceOrder)
            .where(
                ServiceOrder.contract_id.in_([c.id for c in paid_up]),
                ServiceOrder.kind == "suspension",
                ServiceOrder.status == "pending",
            )
            .values(status="cancelled", cancelled_at=now, note="Arrears paid before the suspension.")
            .execution_options(synchronize_session=False)
        )
        suspended = [c.id for c in paid_up if c.status == "suspended"]
        if not suspended:
            continue
        open_reconnections = set(
            (
                await session.scalars(
                    select(ServiceOrder.contract_id).where(
                        ServiceOrder.contract_id.in_(suspended),
                        ServiceOrder.kind == "reconnection",
                        ServiceOrder.status == "pending",
                    )
                )
            ).all()
        )
        new = [c for c in paid_up if c.status == "suspended" and c.id not in open_reconnections]
        if not new:
            continue
        await _insert_reconnections(session, [
            {
                "tenant_id": c.tenant_id, "contract_id": c.id, "kind": "reconnection", "status": "pending",
                "reason": "Arrears paid", "amount": c.reconnection_fee, "currency": c.currency,
                "created_at": now, "due_at": now + timedelta(hours=c.reconnection_deadline_hours),
            }
            for c in new
        ])


# The reconnection fee's line on the contract's next invoice (tenant-named lines print as written).
RECONNECTION_CHARGE_DESCRIPTION = "Reconexión del servicio"


def _fee_charge(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenant_id": order["tenant_id"], "contract_id": order["contract_id"],
        "description": RECONNECTION_CHARGE_DESCRIPTION, "amount": order["amount"], "taxable": False,
        "status": "pending", "created_at": order["created_at"],
    }


async def _insert_reconnections(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert the orders, with their fee as a pending charge for the next bill, inside savepoints: a
    concurrent payment that ordered one first must not fail this payment, nor charge the fee twice."""

    async def insert_with_fees(batch: list[dict[str, Any]]) -> None:
        async with session.begin_nested():
            await session.execute(insert(ServiceOrder.__table__), batch)
            fees = [_fee_charge(order) for order in batch if order["amount"] > 0]
            if fees:
                await session.execute(insert(ContractCharge.__table__), fees)

    try:
        await insert_with_fees(rows)
    except IntegrityError:
        for row in rows:
            with contextlib.suppress(IntegrityError):
                await insert_with_fees([row])


def _meter_serial() -> Any:
    """The contract's active meter (correlated), for the crew."""
    return (
        select(func.min(Meter.serial))
        .where(Meter.contract_id == Contract.id, Meter.status == "active")
        .correlate(Contract)
        .scalar_subquery()
    )


def _rows_query(tenant: Tenant) -> Any:
    return (
        select(
            ServiceOrder.id, ServiceOrder.kind, ServiceOrder.status, ServiceOrder.contract_id, Contract.contract_number,
            Contract.service, Contract.supply_address, Customer.name.label("customer_name"),
            _meter_serial().label("meter_serial"), ServiceOrder.reason, ServiceOrder.amount, ServiceOrder.currency,
            ServiceOrder.created_at, ServiceOrder.due_at, ServiceOrder.executed_at, ServiceOrder.reading,
            ServiceOrder.cancelled_at, ServiceOrder.note,
        )
        .join(Contract, Contract.id == ServiceOrder.contract_id)
        .join(Customer, Customer.id == Contract.customer_id)
        .where(ServiceOrder.tenant_id == tenant.id)
    )


def _late(now: datetime) -> Any:
    return and_(ServiceOrder.kind == "reconnection", ServiceOrder.status == "pending", ServiceOrder.due_at < now)


def _row(row: Any, tenant: Tenant, now: datetime) -> ServiceOrderRow:
    return ServiceOrderRow(
        id=row.id, kind=row.kind, status=row.status, contract_id=row.contract_id, contract_number=row.contract_number,
        service=row.service, supply_address=row.supply_address, customer_name=row.customer_name,
        meter_serial=row.meter_serial, reason=row.reason, amount=round_money(row.amount, tenant.currency),
        currency=row.currency, created_at=row.created_at, due_at=row.due_at, executed_at=row.executed_at,
        reading=row.reading, cancelled_at=row.cancelled_at, note=row.note,
        overdue=row.kind == "reconnection" and row.status == "pending" and row.due_at < now,
    )


def _filtered(stmt: Any, filters: ServiceOrderFilters, now: datetime) -> Any:
    if filters.kind is not None:
        stmt = stmt.where(ServiceOrder.kind == filters.kind)
    if filters.status is not None:
        stmt = stmt.where(ServiceOrder.status == filters.status)
    if filters.contract_number is not None:
        stmt = stmt.where(Contract.contract_number == filters.contract_number.strip())
    if filters.overdue is True:
        stmt = stmt.where(_late(now))
    elif filters.overdue is False:
        stmt = stmt.where(~_late(now))
    return stmt


async def list_orders(
    *, session: AsyncSession, tenant: Tenant, filters: ServiceOrderFilters, limit: int = 50, cursor: str | None = None,
    now: datetime | None = None,
) -> Page[ServiceOrderRow]:
    """A page of the tenant's orders, oldest first."""
    now = now or utcnow()
    page = await paginate(
        session, _filtered(_rows_query(tenant), filters, now), keys=[SortKey(ServiceOrder.id)], limit=limit,
        cursor=cursor, rows=True,
    )
    return Page(items=[_row(r, tenant, now) for r in page.items], next_cursor=page.next_cursor)


async def export_orders(
    *, session: AsyncSession, tenant: Tenant, filters: ServiceOrderFilters, now: datetime | None = None
) -> list[ServiceOrderRow]:
    """Every order matching the filters, by deadline (the crews' work list)."""
    now = now or utcnow()
    stmt = _filtered(_rows_query(tenant), filters, now).order_by(ServiceOrder.due_at, ServiceOrder.id)
    return [_row(r, tenant, now) for r in (await session.execute(stmt)).all()]


async def get_order(*, session: AsyncSession, tenant: Tenant, order_id: int, now: datetime | None = None) -> ServiceOrderRow:
    """One of the tenant's orders; NotFound for another tenant's."""
    row = (await session.execute(_rows_query(tenant).where(ServiceOrder.id == order_id))).one_or_none()
    if row is None:
        raise NotFound("No such service order.", code="service_order_not_found")
    return _row(row, tenant, now or utcnow())


# What executing an order does to its contract: the status it must have, and the one it gets.
_CONTRACT_MOVES = {"suspension": ("active", "suspended"), "reconnection": ("suspended", "active")}


async def change_order(
    *,
    session: AsyncSession,
    tenant: Tenant,
    order_id: int,
    user_id: int,
    status: str,
    executed_at: datetime | None = None,
    reading: Decimal | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> ServiceOrderRow:
    """Execute a pending order (the crew's date and meter reading; the contract moves) or cancel it; one transaction."""
    now = now or utcnow()
    order = await get_order(session=session, tenant=tenant, order_id=order_id, now=now)
    if order.status != "pending":
        raise Conflict(f"The order is already {order.status}.", code="service_order_closed")
    if status == "cancelled":
        await _close(session, order_id, {"status": "cancelled", "cancelled_at": now, "closed_by": user_id, "note": note})
    elif status == "executed":
        when = _checked_execution(order, executed_at, reading, now)
        await _close(session, order_id, {"status": "executed", "executed_at": when, "reading": reading, "closed_by": user_id, "note": note})
        before, after = _CONTRACT_MOVES[order.kind]
        moved = await session.execute(
            update(Contract)
            .where(Contract.id == order.contract_id, Contract.status == before)
            .values(status=after, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            raise Conflict(
                f"The contract is not {before}: a {order.kind} cannot be executed on it.", code="contract_status_changed"
            )
    else:
        raise ValueError(f"unknown target status {status!r}")
    await session.commit()
    return await get_order(session=session, tenant=tenant, order_id=order_id, now=now)


def _checked_execution(order: ServiceOrderRow, executed_at: datetime | None, reading: Decimal | None, now: datetime) -> datetime:
    errors = []
    if executed_at is None:
        errors.append(FieldError("executed_at", "required to execute an order", "required"))
    elif executed_at > now + CREW_CLOCK_SKEW or executed_at < order.created_at:
        # A crew's device may run a little ahead of the server, as a bank's may.
        errors.append(FieldError("executed_at", "between the order's creation and now", "out_of_range"))
    if reading is None:
        errors.append(FieldError("reading", "the meter reading is required to execute an order", "required"))
    if errors:
        raise DomainValidationError("An executed order needs its date and meter reading.", code="invalid_execution", errors=errors)
    assert executed_at is not None
    if order.kind == "suspension" and executed_at < order.due_at:
        raise Conflict(
            "The customer's notice period has not ended: the suspension cannot be executed before its due time.",
            code="notice_period_running",
        )
    return executed_at


async def _close(session: AsyncSession, order_id: int, values: dict[str, Any]) -> None:
    """Move a pending order, conditionally: a crew and an operator closing it at once cannot both win."""
    moved = await session.execute(
        update(ServiceOrder)
        .where(ServiceOrder.id == order_id, ServiceOrder.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict("The order was closed meanwhile.", code="service_order_closed")

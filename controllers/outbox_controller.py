"""Writing to the notification outbox inside the caller's transaction (the dispatcher sends later)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.account_model import Customer
from models.base_model import utcnow
from models.notification_model import NOTIFICATION_EVENTS, Notification
from models.tenant_model import Tenant
from models.user_model import User

# SQL Server accepts at most 2100 parameters per statement.
IN_LIST_CHUNK = 500


@dataclass(frozen=True)
class OutboxMessage:
    """One message to queue. `dedupe_key` makes a repeated event a no-op (e.g. `invoice_issued:42`)."""

    tenant_id: int
    event: str
    dedupe_key: str
    payload: Mapping[str, Any]
    recipient: str | None
    locale: str = "es"
    user_id: int | None = None
    customer_id: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _row(message: OutboxMessage) -> dict[str, Any]:
    if message.event not in NOTIFICATION_EVENTS:
        raise ValueError(f"unknown notification event {message.event!r}")
    now = utcnow()
    return {
        "tenant_id": message.tenant_id,
        "event": message.event,
        "dedupe_key": message.dedupe_key,
        "channel": "email",
        "user_id": message.user_id,
        "customer_id": message.customer_id,
        "recipient": message.recipient,
        "locale": message.locale,
        "payload": dict(message.payload),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def enqueue(*, session: AsyncSession, message: OutboxMessage) -> bool:
    """Queue one message in the caller's transaction; False when its dedupe key was already queued."""
    exists = await session.scalar(
        select(Notification.id).where(
            Notification.tenant_id == message.tenant_id, Notification.dedupe_key == message.dedupe_key
        )
    )
    if exists is not None:
        return False
    await session.execute(insert(Notification), [_row(message)])
    return True


async def enqueue_many(*, session: AsyncSession, messages: Sequence[OutboxMessage]) -> int:
    """Queue many messages with one executemany (the bill run); keys must be new, e.g. per new invoice."""
    if not messages:
        return 0
    # Core executemany: the ORM's bulk path costs more than the INSERT itself for a bank file's 100 000 messages.
    await session.execute(insert(Notification.__table__), [_row(m) for m in messages])
    return len(messages)


def customer_login_id() -> ScalarSelect[int | None]:
    """The customer's own login, for in-app notifications: its oldest user of role customer (correlated to Customer)."""
    return (
        select(func.min(User.id))
        .where(User.customer_id == Customer.id, User.role == "customer")
        .correlate(Customer)
        .scalar_subquery()
    )


# What a message to customers needs of them, with their login (`login_id`, or None), for an expanding
# list of ids: one statement, built once per process (every payment runs it).
MESSAGE_CUSTOMERS = select(
    Customer.id, Customer.name, Customer.email, Customer.locale, customer_login_id().label("login_id")
).where(Customer.id.in_(bindparam("customer_ids", expanding=True)))


async def customer_login_ids(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, int]:
    """The login of each customer that has one (see `customer_login_id`)."""
    found: dict[int, int] = {}
    for chunk in chunks(sorted(set(customer_ids))):
        rows = await session.execute(select(Customer.id, customer_login_id()).where(Customer.id.in_(chunk)))
        found.update({customer_id: user_id for customer_id, user_id in rows.all() if user_id is not None})
    return found


def chunks(values: Sequence[Any], size: int = IN_LIST_CHUNK) -> list[list[Any]]:
    """`values` in lists of at most `size`, for IN lists under SQL Server's parameter limit."""
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def customer_message(
    tenant: Tenant, customer: Customer, user_id: int | None, event: str, dedupe_key: str, payload: Mapping[str, Any]
) -> OutboxMessage:
    """An outbox message to a customer whose login (`user_id`) is already known: its email and locale."""
    return OutboxMessage(
        tenant_id=tenant.id,
        event=event,
        dedupe_key=dedupe_key,
        payload={"customer_name": customer.name, "tenant_name": tenant.name, **payload},
        recipient=customer.email,
        locale=customer.locale,
        user_id=user_id,
        customer_id=customer.id,
    )


async def message_to_customer(
    *, session: AsyncSession, tenant: Tenant, customer: Customer, event: str, dedupe_key: str, payload: Mapping[str, Any]
) -> OutboxMessage:
    """An outbox message to a customer: its email and locale, and its login if it has one."""
    logins = await customer_login_ids(session, [customer.id])
    return customer_message(tenant, customer, logins.get(customer.id), event, dedupe_key, payload)

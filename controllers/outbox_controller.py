"""Writing to the notification outbox inside the caller's transaction (the dispatcher sends later)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base_model import utcnow
from models.notification_model import NOTIFICATION_EVENTS, Notification


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
    await session.execute(insert(Notification), [_row(m) for m in messages])
    return len(messages)

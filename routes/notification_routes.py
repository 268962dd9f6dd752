"""Notification routes: a user's in-app notifications, and the operators' view of the outbox."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from controllers import notification_controller
from routes.common import (
    ListQuery,
    db,
    login_required,
    no_content,
    problems,
    require_principal,
    role_required,
)
from routes.vocabulary import NotificationStatus

bp = Blueprint("notifications", __name__, url_prefix="/api/v1")


class NotificationOut(BaseModel):
    """An in-app notification."""

    id: int
    event: str
    subject: str
    created_at: datetime
    read: bool


class NotificationPage(BaseModel):
    """A page of in-app notifications, newest first."""

    items: list[NotificationOut]
    next_cursor: str | None


class OutboxQuery(ListQuery):
    """Outbox list filters: the delivery status (failed by default)."""

    status: NotificationStatus = "failed"


class OutboxMessageOut(BaseModel):
    """An outbox message as operators see it."""

    id: int
    event: str
    status: NotificationStatus
    channel: str
    recipient: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None
    created_at: datetime


class OutboxPage(BaseModel):
    """A page of outbox messages, newest first."""

    items: list[OutboxMessageOut]
    next_cursor: str | None


def outbox_out(row: object) -> OutboxMessageOut:
    """Serialise an outbox row."""
    return OutboxMessageOut.model_validate(row, from_attributes=True)


@bp.get("/me/notifications")
@login_required
@validate_querystring(ListQuery)
@validate_response(NotificationPage, 200)
async def my_notifications(query_args: ListQuery) -> NotificationPage:
    """The current user's notifications, newest first, with a read flag."""
    principal = await require_principal()
    page = await notification_controller.list_for_user(
        session=db(), tenant=principal.tenant, user_id=principal.user.id, limit=query_args.limit,
        cursor=query_args.cursor,
    )
    items = [NotificationOut.model_validate(item, from_attributes=True) for item in page.items]
    return NotificationPage(items=items, next_cursor=page.next_cursor)


@bp.post("/me/notifications/<int:notification_id>/read")
@login_required
@no_content
@problems(403, 404)
async def mark_notification_read(notification_id: int) -> tuple[str, int]:
    """Mark one of the current user's notifications read."""
    principal = await require_principal()
    await notification_controller.mark_read(
        session=db(), tenant=principal.tenant, user_id=principal.user.id, notification_id=notification_id
    )
    return "", 204


@bp.get("/notifications")
@role_required("operator")
@validate_querystring(OutboxQuery)
@validate_response(OutboxPage, 200)
async def list_outbox(query_args: OutboxQuery) -> OutboxPage:
    """Outbox messages by status; `failed` lists the undeliverable ones."""
    principal = await require_principal()
    page = await notification_controller.list_outbox(
        session=db(), tenant=principal.tenant, status=query_args.status, limit=query_args.limit,
        cursor=query_args.cursor,
    )
    return OutboxPage(items=[outbox_out(row) for row in page.items], next_cursor=page.next_cursor)


@bp.post("/notifications/<int:notification_id>/retry")
@role_required("operator")
@validate_response(OutboxMessageOut, 200)
@problems(404, 409)
async def retry_notification(notification_id: int) -> OutboxMessageOut:
    """Queue a failed message again with a fresh set of attempts."""
    principal = await require_principal()
    row = await notification_controller.retry_failed(
        session=db(), tenant=principal.tenant, notification_id=notification_id
    )
    return outbox_out(row)

"""Notification routes: a user's in-app list and read flag, and the operators' outbox view and retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.notification_model import Notification
from models.tenant_model import Tenant
from tests.conftest import ApiClient, make_user

CREATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PAID = {
    "customer_name": "María", "tenant_name": "EPM", "invoice_number": "FAC-2026-000123", "contract_number": "100200300",
    "period": "2026-10", "amount_paid": "20870", "paid_at": "2026-11-01T03:00:00Z",
}
EXPIRING = {"customer_name": "María", "tenant_name": "EPM", "coupon_reference": "4500012345674", "amount": "20870",
            "expires_at": "2026-11-01T03:00:00Z"}


async def add_row(session: AsyncSession, tenant_id: int, **fields: Any) -> int:
    await session.commit()  # leave any read snapshot older than the logins the fixtures created
    n = await session.scalar(select(Notification.id).order_by(Notification.id.desc()).limit(1)) or 0
    row = Notification(
        tenant_id=tenant_id,
        dedupe_key=fields.pop("dedupe_key", f"row:{n + 1}"),
        event=fields.pop("event", "invoice_paid"),
        channel="email",
        recipient=fields.pop("recipient", "maria@example.co"),
        locale=fields.pop("locale", "es"),
        payload=fields.pop("payload", PAID),
        status=fields.pop("status", "sent"),
        attempts=fields.pop("attempts", 0),
        next_attempt_at=CREATED,
        created_at=fields.pop("created_at", CREATED),
        **fields,
    )
    session.add(row)
    await session.commit()
    return row.id


async def other_tenant(session: AsyncSession) -> Tenant:
    tenant = Tenant(code="otra", name="Otra E.S.P.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000005")
    session.add(tenant)
    await session.commit()
    return tenant


async def test_a_user_sees_only_its_notifications_newest_first_with_subjects_and_pages(
    session: AsyncSession, tenant: Tenant, customer_user_client: ApiClient, app: Quart
) -> None:
    me = customer_user_client.user["id"]  # type: ignore[index]
    someone_else = await make_user(app, role="customer")
    older = await add_row(session, tenant.id, user_id=me, created_at=CREATED)
    newer = await add_row(session, tenant.id, user_id=me, event="coupon_expiring", payload=EXPIRING, locale="en",
                          status="pending", created_at=CREATED + timedelta(hours=1))
    await add_row(session, tenant.id, user_id=someone_else.id)
    await add_row(session, tenant.id, user_id=None)

    first = await customer_user_client.get("/api/v1/me/notifications?limit=1")
    assert first.status_code == 200
    page = await first.get_json()
    assert page["items"] == [
        {"id": newer, "event": "coupon_expiring", "subject": "Your payment coupon 4500012345674 expires soon",
         "created_at": "2026-11-01T13:00:00Z", "read": False},
    ]
    second = await (await customer_user_client.get(f"/api/v1/me/notifications?limit=1&cursor={page['next_cursor']}")).get_json()
    assert [item["id"] for item in second["items"]] == [older]
    assert second["items"][0]["subject"] == "Recibimos el pago de su factura FAC-2026-000123"
    assert second["next_cursor"] is None


async def test_marking_read_sets_the_flag_and_someone_elses_is_not_found(
    session: AsyncSession, tenant: Tenant, customer_user_client: ApiClient, app: Quart
) -> None:
    me = customer_user_client.user["id"]  # type: ignore[index]
    someone_else = await make_user(app, role="customer")
    mine = await add_row(session, tenant.id, user_id=me)
    theirs = await add_row(session, tenant.id, user_id=someone_else.id)

    assert (await customer_user_client.post(f"/api/v1/me/notifications/{mine}/read")).status_code == 204
    assert (await customer_user_client.post(f"/api/v1/me/notifications/{mine}/read")).status_code == 204
    hidden = await customer_user_client.post(f"/api/v1/me/notifications/{theirs}/read")
    missing = await customer_user_client.post("/api/v1/me/notifications/999999/read")

    assert hidden.status_code == missing.status_code == 404
    assert (await hidden.get_json())["code"] == "not_found"
    [item] = (await (await customer_user_client.get("/api/v1/me/notifications")).get_json())["items"]
    assert item["read"] is True
    await session.commit()
    assert (await session.get(Notification, theirs)).read_at is None  # type: ignore[union-attr]


async def test_in_app_routes_need_a_login_and_csrf(client: ApiClient, customer_user_client: ApiClient) -> None:
    assert (await client.get("/api/v1/me/notifications")).status_code == 401
    assert (await client.post("/api/v1/me/notifications/1/read")).status_code == 401
    no_csrf = await customer_user_client.raw.post("/api/v1/me/notifications/1/read")
    assert no_csrf.status_code == 403
    assert (await no_csrf.get_json())["code"] == "csrf_token_missing"


async def test_operators_list_failed_messages_of_their_tenant(
    session: AsyncSession, tenant: Tenant, operator_client: ApiClient
) -> None:
    failed = await add_row(session, tenant.id, status="failed", attempts=8, last_error="SMTP 127.0.0.1:25 unavailable")
    await add_row(session, tenant.id, status="sent")
    elsewhere = await other_tenant(session)
    await add_row(session, elsewhere.id, status="failed")

    response = await operator_client.get("/api/v1/notifications?status=failed")

    assert response.status_code == 200
    body = await response.get_json()
    assert body["next_cursor"] is None
    assert body["items"] == [
        {
            "id": failed, "event": "invoice_paid", "status": "failed", "channel": "email", "recipient": "maria@example.co",
            "attempts": 8, "last_error": "SMTP 127.0.0.1:25 unavailable", "next_attempt_at": "2026-11-01T12:00:00Z",
            "sent_at": None, "created_at": "2026-11-01T12:00:00Z",
        }
    ]
    default = await (await operator_client.get("/api/v1/notifications")).get_json()
    assert [item["id"] for item in default["items"]] == [failed]
    sent = await (await operator_client.get("/api/v1/notifications?status=sent")).get_json()
    assert [item["status"] for item in sent["items"]] == ["sent"]
    bad = await operator_client.get("/api/v1/notifications?status=lost")
    assert bad.status_code == 422


async def test_customers_cannot_see_the_outbox(customer_user_client: ApiClient) -> None:
    assert (await customer_user_client.get("/api/v1/notifications")).status_code == 403
    assert (await customer_user_client.post("/api/v1/notifications/1/retry")).status_code == 403


async def test_an_operator_retries_a_failed_message_once(
    session: AsyncSession, tenant: Tenant, operator_client: ApiClient
) -> None:
    failed = await add_row(session, tenant.id, status="failed", attempts=8, last_error="boom")
    sent = await add_row(session, tenant.id, status="sent")
    reset = await add_row(session, tenant.id, status="failed", event="password_reset", payload={"reset_url": "[redacted]"})
    elsewhere = await add_row(session, (await other_tenant(session)).id, status="failed")

    retried = await operator_client.post(f"/api/v1/notifications/{failed}/retry")
    again = await operator_client.post(f"/api/v1/notifications/{failed}/retry")
    not_failed = await operator_client.post(f"/api/v1/notifications/{sent}/retry")
    reset_link = await operator_client.post(f"/api/v1/notifications/{reset}/retry")
    foreign = await operator_client.post(f"/api/v1/notifications/{elsewhere}/retry")

    assert retried.status_code == 200
    body = await retried.get_json()
    assert (body["id"], body["status"], body["attempts"], body["last_error"]) == (failed, "pending", 0, "boom")
    assert again.status_code == not_failed.status_code == reset_link.status_code == 409
    assert (await again.get_json())["code"] == "not_failed"
    assert (await reset_link.get_json())["code"] == "not_retryable"
    assert foreign.status_code == 404
    await session.commit()
    row = await session.get(Notification, failed)
    assert row is not None and (row.status, row.attempts, row.claim_token) == ("pending", 0, None)


async def test_the_openapi_document_lists_every_status(client: ApiClient) -> None:
    paths = (await (await client.get("/openapi.json")).get_json())["paths"]

    assert set(paths["/api/v1/me/notifications"]["get"]["responses"]) >= {"200", "401", "422"}
    assert set(paths["/api/v1/me/notifications/{notification_id}/read"]["post"]["responses"]) >= {"204", "401", "403", "404"}
    assert set(paths["/api/v1/notifications"]["get"]["responses"]) >= {"200", "401", "403", "422"}
    assert set(paths["/api/v1/notifications/{notification_id}/retry"]["post"]["responses"]) >= {"200", "401", "403", "404", "409"}
    assert set(paths["/api/v1/auth/password-reset"]["post"]["responses"]) >= {"202", "422", "429"}
    assert set(paths["/api/v1/auth/password-reset/confirm"]["post"]["responses"]) >= {"204", "422"}

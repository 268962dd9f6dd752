"""Password reset end to end: request, the email over real SMTP (or .eml), confirm, sessions end."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select

from controllers import password_reset_controller
from controllers.notification_controller import DeliveryPolicy, dispatch_due
from controllers.password_reset_controller import RESET_MAX_AGE_SECONDS, make_reset_token
from models.notification_model import Notification
from tests.conftest import TEST_PASSWORD, TEST_SECRET, ApiClient, MailServer, make_user

RESET = "/api/v1/auth/password-reset"
NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"https://portal\.example/reset-password\?token=([A-Za-z0-9_.\-]+)")


@pytest.fixture
def app_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = {"PUBLIC_BASE_URL": "https://portal.example"}
    if "mail_server" in request.fixturenames:
        server: MailServer = request.getfixturevalue("mail_server")
        overrides |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": server.port, "SMTP_STARTTLS": False}
    return overrides


async def send_queued(app: Quart) -> None:
    services = app.extensions["cuponera"]
    await dispatch_due(sql=services.sql, smtp=services.smtp, policy=DeliveryPolicy())


def plain_text(email: Any) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


async def test_reset_end_to_end_over_smtp(app: Quart, client: ApiClient, mail_server: MailServer) -> None:
    user = await make_user(app, role="customer", email="lucia@example.com", full_name="Lucía Gómez")
    old_session = ApiClient(app)
    assert (await old_session.login("lucia@example.com")).status_code == 200

    requested = await client.post(RESET, json={"email": "Lucia@Example.com"})
    assert requested.status_code == 202
    await send_queued(app)

    [email] = mail_server.catcher.messages
    assert email["To"].addresses[0].addr_spec == "lucia@example.com"
    assert email["Subject"] == "Restablezca su contraseña"
    assert email["X-Cuponera-Event"] == "password_reset"
    body = plain_text(email)
    assert body.startswith("Hola, Lucía Gómez:")
    assert "30 minutos" in body
    token = LINK.search(body).group(1)  # type: ignore[union-attr]
    assert LINK.search(email.get_body(preferencelist=("html",)).get_content()).group(1) == token  # type: ignore[union-attr]

    confirmed = await client.post(f"{RESET}/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert confirmed.status_code == 204

    assert (await old_session.get("/api/v1/auth/me")).status_code == 401
    assert (await ApiClient(app).login("lucia@example.com", TEST_PASSWORD)).status_code == 401
    fresh = ApiClient(app)
    assert (await fresh.login("lucia@example.com", NEW_PASSWORD)).status_code == 200
    assert (await fresh.get("/api/v1/auth/me")).status_code == 200

    reused = await client.post(f"{RESET}/confirm", json={"token": token, "new_password": "a third passphrase"})
    assert reused.status_code == 422
    problem = await reused.get_json()
    assert problem["code"] == "invalid_token"
    assert problem["errors"][0]["field"] == "token"
    assert user.id == fresh.user["id"]  # type: ignore[index]


async def test_reset_without_smtp_writes_an_eml_with_a_working_link(app: Quart, client: ApiClient, tmp_path: Path) -> None:
    await make_user(app, role="operator", email="op@example.com")

    assert (await client.post(RESET, json={"email": "op@example.com"})).status_code == 202
    await send_queued(app)

    [eml] = list((tmp_path / "var" / "mail").glob("*.eml"))
    email = message_from_bytes(eml.read_bytes(), policy=policy.default)
    token = LINK.search(plain_text(email)).group(1)  # type: ignore[union-attr]
    confirmed = await client.post(f"{RESET}/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert confirmed.status_code == 204
    assert (await ApiClient(app).login("op@example.com", NEW_PASSWORD)).status_code == 200


async def test_the_answer_is_the_same_whether_or_not_the_email_exists(app: Quart, client: ApiClient, tmp_path: Path) -> None:
    await make_user(app, role="customer", email="known@example.com")

    known = await client.post(RESET, json={"email": "known@example.com"})
    unknown = await client.post(RESET, json={"email": "unknown@example.com"})

    assert known.status_code == unknown.status_code == 202
    assert await known.get_json() == await unknown.get_json()
    assert (await known.get_json())["detail"].startswith("If the address belongs to an account")
    await send_queued(app)
    assert len(list((tmp_path / "var" / "mail").glob("*.eml"))) == 1


async def test_an_expired_token_is_refused(app: Quart, client: ApiClient) -> None:
    user = await make_user(app, role="customer")
    stale = make_reset_token(
        secret_key=TEST_SECRET, user_id=user.id, password_hash=user.password_hash,
        clock=lambda: time.time() - RESET_MAX_AGE_SECONDS - 60,
    )

    response = await client.post(f"{RESET}/confirm", json={"token": stale, "new_password": NEW_PASSWORD})

    assert response.status_code == 422
    assert (await response.get_json())["code"] == "invalid_token"


async def test_confirm_checks_the_password_policy(app: Quart, client: ApiClient) -> None:
    user = await make_user(app, role="customer")
    token = make_reset_token(secret_key=TEST_SECRET, user_id=user.id, password_hash=user.password_hash)

    response = await client.post(f"{RESET}/confirm", json={"token": token, "new_password": "short"})

    assert response.status_code == 422
    problem = await response.get_json()
    assert problem["code"] == "password_too_short"
    assert problem["errors"][0]["field"] == "new_password"


async def test_bad_bodies_are_validation_problems(client: ApiClient) -> None:
    no_email = await client.post(RESET, json={"email": "not-an-email"})
    no_token = await client.post(f"{RESET}/confirm", json={"new_password": NEW_PASSWORD})

    assert no_email.status_code == no_token.status_code == 422
    assert (await no_token.get_json())["code"] == "validation_error"


async def test_requests_are_rate_limited_per_ip(client: ApiClient) -> None:
    statuses = [(await client.post(RESET, json={"email": f"x{n}@example.com"})).status_code for n in range(11)]

    assert statuses == [202] * 10 + [429]


async def test_a_logged_in_browser_needs_no_csrf_token_here(app: Quart, operator_client: ApiClient) -> None:
    response = await operator_client.raw.post(RESET, json={"email": operator_client.user["email"]})  # type: ignore[index]

    assert response.status_code == 202


async def test_real_and_unknown_emails_do_the_same_work(
    app: Quart, client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(app, role="customer", email="known@example.com")
    work: dict[str, list[str]] = {"tokens": [], "inserts": []}
    real_token, real_enqueue = password_reset_controller.make_reset_token, password_reset_controller.enqueue

    def counting_token(**kwargs: Any) -> str:
        work["tokens"].append(str(kwargs["user_id"]))
        return real_token(**kwargs)

    async def counting_enqueue(**kwargs: Any) -> None:
        work["inserts"].append(kwargs["message"].recipient)
        await real_enqueue(**kwargs)

    monkeypatch.setattr(password_reset_controller, "make_reset_token", counting_token)
    monkeypatch.setattr(password_reset_controller, "enqueue", counting_enqueue)
    assert (await client.post(RESET, json={"email": "known@example.com"})).status_code == 202
    assert (await client.post(RESET, json={"email": "unknown@example.com"})).status_code == 202
    # One token signed and one outbox insert on each path; only the real one survives its savepoint.
    assert len(work["tokens"]) == 2 and work["inserts"] == ["known@example.com", "unknown@example.com"]
    async with app.extensions["cuponera"].sql.session_scope() as session:
        recipients = (await session.scalars(select(Notification.recipient).where(Notification.event == "password_reset"))).all()
    assert recipients == ["known@example.com"]

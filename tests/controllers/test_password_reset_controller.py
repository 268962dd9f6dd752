"""Password reset tokens: issued only for real logins, valid 30 minutes, spent by the password change."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller
from controllers.errors import DomainValidationError
from controllers.password_reset_controller import (
    RESET_MAX_AGE_SECONDS,
    confirm_reset,
    make_reset_token,
    request_reset,
)
from models.notification_model import Notification
from models.tenant_model import Tenant
from models.user_model import User
from tests.conftest import TEST_SECRET, make_user
from tests.factories import make_customer, make_customer_user

NEW_PASSWORD = "a brand new passphrase"


async def reset_rows(session: AsyncSession) -> list[Notification]:
    return list((await session.scalars(select(Notification).where(Notification.event == "password_reset").order_by(Notification.id))).all())


def token_in(row: Notification) -> str:
    return parse_qs(urlsplit(row.payload["reset_url"]).query)["token"][0]


async def request(session: AsyncSession, tenant: Tenant, email: str) -> None:
    await request_reset(
        session=session, tenant=tenant, email=email, secret_key=TEST_SECRET, public_base_url="https://portal.example/"
    )


async def confirm(session: AsyncSession, token: str, password: str = NEW_PASSWORD, **kwargs: object) -> User:
    return await confirm_reset(session=session, token=token, new_password=password, secret_key=TEST_SECRET, rounds=4, **kwargs)


async def test_a_request_queues_one_email_with_a_link_per_request(session: AsyncSession, tenant: Tenant) -> None:
    customer = await make_customer(session, tenant)
    user = await make_customer_user(session, customer, email="ana@example.com")
    user.locale = "pt"
    await session.commit()

    await request(session, tenant, "  ANA@example.com ")
    await request(session, tenant, "ana@example.com")

    first, second = await reset_rows(session)
    assert (first.recipient, first.locale, first.user_id, first.customer_id) == ("ana@example.com", "pt", user.id, customer.id)
    assert first.payload["reset_url"].startswith("https://portal.example/reset-password?token=")
    assert first.payload["expires_in_minutes"] == 30
    assert first.payload["customer_name"] == customer.name
    assert first.dedupe_key != second.dedupe_key
    assert first.dedupe_key.startswith(f"password_reset:{user.id}:")


async def test_unknown_or_disabled_addresses_queue_nothing(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    disabled = await make_user(app, role="operator", email="gone@example.com")
    await session.commit()  # end the fixture's read snapshot, which predates the user
    await session.execute(User.__table__.update().where(User.id == disabled.id).values(status="disabled"))
    await session.commit()

    await request(session, tenant, "nobody@example.com")
    await request(session, tenant, "gone@example.com")

    assert await reset_rows(session) == []


async def test_a_token_sets_the_password_once_and_ends_every_session(app: Quart, session: AsyncSession, tenant: Tenant) -> None:
    user = await make_user(app, role="operator", email="op@example.com")
    await session.commit()  # end the fixture's read snapshot, which predates the user
    await request(session, tenant, "op@example.com")
    [row] = await reset_rows(session)

    updated = await confirm(session, token_in(row))

    assert updated.session_version > user.session_version
    assert await auth_controller.verify_password(NEW_PASSWORD, updated.password_hash)
    with pytest.raises(DomainValidationError) as reused:
        await confirm(session, token_in(row), "yet another passphrase")
    assert reused.value.code == "invalid_token"
    assert reused.value.errors[0].field == "token"


async def test_a_token_older_than_thirty_minutes_is_refused(app: Quart, session: AsyncSession) -> None:
    user = await make_user(app, role="customer", email="late@example.com")
    issued_at = time.time() - RESET_MAX_AGE_SECONDS - 5
    token = make_reset_token(
        secret_key=TEST_SECRET, user_id=user.id, password_hash=user.password_hash, clock=lambda: issued_at
    )

    with pytest.raises(DomainValidationError) as expired:
        await confirm(session, token)
    just_in_time = await confirm(session, token, clock=lambda: issued_at + RESET_MAX_AGE_SECONDS)

    assert expired.value.code == "invalid_token"
    assert just_in_time.id == user.id


@pytest.mark.parametrize("token", ["garbage", "eyJ1c2VyX2lkIjoxfQ.aaaa.bbbb", ""])
async def test_a_forged_token_is_refused(session: AsyncSession, token: str) -> None:
    with pytest.raises(DomainValidationError) as refused:
        await confirm(session, token)
    assert refused.value.code == "invalid_token"


async def test_a_token_signed_with_another_key_or_for_the_unknown_user_is_refused(app: Quart, session: AsyncSession) -> None:
    user = await make_user(app, role="customer")
    other_key = make_reset_token(secret_key="another key", user_id=user.id, password_hash=user.password_hash)
    nobody = make_reset_token(secret_key=TEST_SECRET, user_id=0, password_hash="$2b$12$" + "0" * 53)

    for token in (other_key, nobody):
        with pytest.raises(DomainValidationError) as refused:
            await confirm(session, token)
        assert refused.value.code == "invalid_token"


async def test_a_weak_new_password_keeps_the_token_usable(app: Quart, session: AsyncSession) -> None:
    user = await make_user(app, role="customer")
    token = make_reset_token(secret_key=TEST_SECRET, user_id=user.id, password_hash=user.password_hash)

    with pytest.raises(DomainValidationError) as weak:
        await confirm(session, token, "short")
    assert weak.value.code == "password_too_short"
    assert weak.value.errors[0].field == "new_password"
    assert (await confirm(session, token)).id == user.id


async def test_two_confirmations_racing_with_one_token_change_the_password_once(app: Quart) -> None:
    user = await make_user(app, role="customer")
    token = make_reset_token(secret_key=TEST_SECRET, user_id=user.id, password_hash=user.password_hash)
    sql = app.extensions["cuponera"].sql

    async def attempt(password: str) -> str:
        async with sql.session(write=True) as own:
            try:
                await confirm(own, token, password)
            except DomainValidationError as exc:
                return exc.code
            return "ok"

    outcomes = await asyncio.gather(attempt("first new passphrase"), attempt("second new passphrase"))

    assert sorted(outcomes) == ["invalid_token", "ok"]

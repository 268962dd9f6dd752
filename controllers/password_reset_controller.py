"""Password reset by email: a timed, salted token bound to the current password hash, so it works once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller
from controllers.errors import DomainValidationError, FieldError
from controllers.outbox_controller import OutboxMessage, enqueue
from controllers.signed_tokens import serializer
from models.tenant_model import Tenant
from models.user_model import User

RESET_SALT = "cuponera.password-reset"
RESET_MAX_AGE_SECONDS = 30 * 60
RESET_PATH = "/reset-password"
# Stands in for a real hash when the email is unknown, so both paths sign a token.
_NO_ACCOUNT_HASH = "$2b$12$" + "0" * 53


def _serializer(secret_key: str, clock: Callable[[], float] | None) -> URLSafeTimedSerializer:
    return serializer(secret_key, RESET_SALT, clock)


def password_fingerprint(password_hash: str) -> str:
    """A short digest of the stored hash: changing the password changes it, which spends the token."""
    return hashlib.sha256(password_hash.encode("ascii")).hexdigest()[:16]


def make_reset_token(
    *, secret_key: str, user_id: int, password_hash: str, clock: Callable[[], float] | None = None
) -> str:
    """A URL-safe token naming the user and the password it may replace."""
    return _serializer(secret_key, clock).dumps({"user_id": user_id, "h": password_fingerprint(password_hash)})


def reset_url(public_base_url: str, token: str) -> str:
    """The link the email carries (the frontend's reset page)."""
    return f"{public_base_url.rstrip('/')}{RESET_PATH}?{urlencode({'token': token})}"


async def request_reset(
    *,
    session: AsyncSession,
    tenant: Tenant,
    email: str,
    secret_key: str,
    public_base_url: str,
    clock: Callable[[], float] | None = None,
) -> None:
    """Queue a reset email when the address is an active login; the caller learns nothing either way."""
    user = await session.scalar(
        select(User).where(
            User.tenant_id == tenant.id,
            User.email == auth_controller.normalize_email(email),
            User.status == "active",
        )
    )
    # Both paths do the same work, so response time says nothing about the address: sign a token,
    # build the message and insert it into the outbox inside a savepoint; for an unknown address the
    # savepoint is rolled back, so nothing is sent.
    token = make_reset_token(
        secret_key=secret_key,
        user_id=user.id if user else 0,
        password_hash=user.password_hash if user else _NO_ACCOUNT_HASH,
        clock=clock,
    )
    message = OutboxMessage(
        tenant_id=tenant.id,
        event="password_reset",
        # A fresh nonce: each request sends its own email, never deduplicated into silence.
        dedupe_key=f"password_reset:{user.id if user else 0}:{secrets.token_hex(8)}",
        payload={
            "reset_url": reset_url(public_base_url, token),
            "expires_in_minutes": RESET_MAX_AGE_SECONDS // 60,
            "customer_name": user.full_name if user else "",
            "tenant_name": tenant.name,
        },
        recipient=user.email if user else auth_controller.normalize_email(email),
        locale=user.locale if user else tenant.locale,
        user_id=user.id if user else None,
        customer_id=user.customer_id if user else None,
    )
    savepoint = await session.begin_nested()
    await enqueue(session=session, message=message)
    if user is None:
        await savepoint.rollback()
    else:
        await savepoint.commit()
    await session.commit()


def _invalid_token() -> DomainValidationError:
    return DomainValidationError(
        "The reset link is invalid, expired or already used. Request a new one.",
        code="invalid_token",
        errors=[FieldError("token", "invalid, expired or already used", "invalid_token")],
    )


async def confirm_reset(
    *,
    session: AsyncSession,
    token: str,
    new_password: str,
    secret_key: str,
    rounds: int = 12,
    max_age: int = RESET_MAX_AGE_SECONDS,
    clock: Callable[[], float] | None = None,
) -> User:
    """Set a new password from a valid token and end every session of the user; a 422 `invalid_token` otherwise."""
    try:
        data = _serializer(secret_key, clock).loads(token, max_age=max_age)
    except BadSignature as exc:  # includes SignatureExpired
        raise _invalid_token() from exc
    if not isinstance(data, dict) or not isinstance(data.get("user_id"), int) or not isinstance(data.get("h"), str):
        raise _invalid_token()
    user = await session.scalar(select(User).where(User.id == data["user_id"], User.status == "active"))
    if user is None or not hmac.compare_digest(password_fingerprint(user.password_hash), data["h"]):
        raise _invalid_token()
    auth_controller.check_password_policy(new_password, field="new_password")
    # Spend the token first with a conditional UPDATE on the hash and version we checked: of two
    # concurrent confirmations only one matches, and it holds the row until its commit.
    spent = await session.execute(
        update(User)
        .where(
            User.id == user.id,
            User.password_hash == user.password_hash,
            User.session_version == user.session_version,
        )
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise _invalid_token()
    await session.refresh(user)
    await auth_controller.set_password(session=session, user=user, new_password=new_password, rounds=rounds)
    return user

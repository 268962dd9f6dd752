"""A customer's own profile: contact data, language and paper invoices; a new email only once the new address confirms."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller
from controllers.account_common import commit_or_conflict
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.outbox_controller import OutboxMessage, enqueue
from controllers.signed_tokens import serializer
from models.account_model import Customer
from models.tenant_model import Tenant
from models.user_model import User

EMAIL_CHANGE_SALT = "cuponera.email-change"
EMAIL_CHANGE_MAX_AGE_SECONDS = 24 * 3600
# The portal page that reads the token and confirms it through the API.
EMAIL_CHANGE_PATH = "/portal/"
# What a customer may change on its own record; the national ID and name are the utility's to change.
PROFILE_FIELDS = frozenset({"phone", "billing_address", "locale", "paperless"})


@dataclass(frozen=True)
class Profile:
    """The customer's own data as the profile page shows it."""

    email: str
    pending_email: str | None
    name: str
    national_id_type: str
    national_id: str
    phone: str | None
    billing_address: str
    locale: str
    paperless: bool


def _fingerprint(email: str) -> str:
    """A short digest of the login email the token was made for: once it changes, the token is spent."""
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:16]


async def _customer_login(session: AsyncSession, tenant_id: int, user_id: int) -> tuple[User, Customer]:
    user = await session.scalar(select(User).where(User.id == user_id, User.tenant_id == tenant_id))
    customer = None
    if user is not None and user.customer_id is not None:
        customer = await session.scalar(
            select(Customer).where(Customer.id == user.customer_id, Customer.tenant_id == tenant_id)
        )
    if user is None or customer is None:
        raise NotFound("This login has no customer record.", code="customer_not_found")
    return user, customer


def _profile(user: User, customer: Customer, pending_email: str | None = None) -> Profile:
    return Profile(
        email=user.email, pending_email=pending_email, name=customer.name,
        national_id_type=customer.national_id_type, national_id=customer.national_id_display,
        phone=customer.phone, billing_address=customer.billing_address, locale=customer.locale,
        paperless=customer.paperless,
    )


async def get_profile(*, session: AsyncSession, tenant_id: int, user_id: int) -> Profile:
    """The customer's own profile."""
    user, customer = await _customer_login(session, tenant_id, user_id)
    return _profile(user, customer)


async def update_profile(
    *,
    session: AsyncSession,
    tenant: Tenant,
    user_id: int,
    changes: Mapping[str, Any],
    secret_key: str,
    public_base_url: str,
    clock: Callable[[], float] | None = None,
) -> Profile:
    """Change the customer's own data in one transaction; a new email is only mailed a confirmation link."""
    user, customer = await _customer_login(session, tenant.id, user_id)
    values = {key: value for key, value in changes.items() if key in PROFILE_FIELDS}
    for key, value in values.items():
        setattr(customer, key, value)
    if "locale" in values:
        user.locale = values["locale"]  # the login's emails follow the customer's language
    pending = None
    new_email = changes.get("email")
    if new_email is not None and auth_controller.normalize_email(new_email) != user.email:
        pending = auth_controller.normalize_email(new_email)
        await _check_email_free(session, tenant.id, pending)
        token = serializer(secret_key, EMAIL_CHANGE_SALT, clock).dumps(
            {"user_id": user.id, "email": pending, "was": _fingerprint(user.email)}
        )
        await enqueue(session=session, message=OutboxMessage(
            tenant_id=tenant.id,
            event="email_change",
            dedupe_key=f"email_change:{user.id}:{secrets.token_hex(8)}",
            payload={
                "confirm_url": f"{public_base_url.rstrip('/')}{EMAIL_CHANGE_PATH}?{urlencode({'confirm_email': token})}",
                "new_email": pending,
                "expires_in_hours": EMAIL_CHANGE_MAX_AGE_SECONDS // 3600,
                "customer_name": customer.name,
                "tenant_name": tenant.name,
            },
            # To the new address: only its owner can confirm it.
            recipient=pending,
            locale=customer.locale,
            user_id=user.id,
            customer_id=customer.id,
        ))
    await session.commit()
    return _profile(user, customer, pending)


async def _check_email_free(session: AsyncSession, tenant_id: int, email: str) -> None:
    taken = await session.scalar(select(User.id).where(User.tenant_id == tenant_id, User.email == email))
    if taken is not None:
        raise Conflict("Another login of this utility uses that email.", code="email_taken")


def _invalid_token() -> DomainValidationError:
    return DomainValidationError(
        "The confirmation link is invalid, expired or already used. Change the email again for a new one.",
        code="invalid_token",
        errors=[FieldError("token", "invalid, expired or already used", "invalid_token")],
    )


async def confirm_email_change(
    *,
    session: AsyncSession,
    token: str,
    secret_key: str,
    max_age: int = EMAIL_CHANGE_MAX_AGE_SECONDS,
    clock: Callable[[], float] | None = None,
) -> User:
    """Make the confirmed address the login and contact email; the token works once (422 `invalid_token`)."""
    try:
        data = serializer(secret_key, EMAIL_CHANGE_SALT, clock).loads(token, max_age=max_age)
    except BadSignature as exc:  # includes SignatureExpired
        raise _invalid_token() from exc
    if not isinstance(data, dict) or not isinstance(data.get("user_id"), int) or not isinstance(data.get("email"), str):
        raise _invalid_token()
    user = await session.scalar(select(User).where(User.id == data["user_id"], User.status == "active"))
    if user is None or not hmac.compare_digest(_fingerprint(user.email), str(data.get("was"))):
        raise _invalid_token()
    await _check_email_free(session, user.tenant_id, data["email"])
    # Spend the token with a conditional UPDATE on the email it was made for: of two confirmations one wins.
    changed = await session.execute(
        update(User)
        .where(User.id == user.id, User.email == user.email)
        .values(email=data["email"])
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise _invalid_token()
    if user.customer_id is not None:
        await session.execute(
            update(Customer).where(Customer.id == user.customer_id).values(email=data["email"])
            .execution_options(synchronize_session=False)
        )
    await commit_or_conflict(session, Conflict("Another login of this utility uses that email.", code="email_taken"))
    await session.refresh(user)
    return user

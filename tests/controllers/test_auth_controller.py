"""Auth controller: constant-cost authentication, password policy and session identities."""

from __future__ import annotations

import asyncio
import threading

import bcrypt
import pytest
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller
from controllers.errors import AuthenticationFailed, Conflict, DomainValidationError
from models.tenant_model import Tenant
from tests.conftest import TEST_PASSWORD, make_user


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each bcrypt.checkpw call and the thread it ran on."""
    calls: list[str] = []
    original = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        calls.append(threading.current_thread().name)
        return original(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    return calls


async def test_unknown_email_costs_one_bcrypt_check_like_a_wrong_password(
    app: Quart, session: AsyncSession, tenant: Tenant, bcrypt_calls: list[str]
) -> None:
    await make_user(app, role="customer", email="known@example.com")
    policy = auth_controller.LockoutPolicy()
    dummy = auth_controller.make_dummy_hash(rounds=4)
    for email in ("known@example.com", "unknown@example.com"):
        with pytest.raises(AuthenticationFailed) as caught:
            await auth_controller.authenticate(
                session=session, tenant=tenant, email=email, password="wrong password!", dummy_hash=dummy, policy=policy
            )
        assert caught.value.code == "invalid_credentials"
    assert len(bcrypt_calls) == 2
    # bcrypt ran in worker threads, never on the event loop's thread.
    assert threading.main_thread().name not in bcrypt_calls


async def test_dummy_hash_has_the_configured_cost() -> None:
    dummy = auth_controller.make_dummy_hash(rounds=12)
    assert dummy.startswith("$2b$12$")


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("123456789", "password_too_short"),
        ("a" * 73, "password_too_long"),
        ("ñ" * 37, "password_too_long"),  # 74 bytes in UTF-8, 37 characters
    ],
)
def test_password_policy_rejects(password: str, code: str) -> None:
    with pytest.raises(DomainValidationError) as caught:
        auth_controller.check_password_policy(password)
    assert caught.value.code == code
    assert caught.value.errors[0].field == "password"


@pytest.mark.parametrize("password", ["1234567890", "a" * 72, "ñ" * 36])
def test_password_policy_accepts_the_limits(password: str) -> None:
    auth_controller.check_password_policy(password)


async def test_create_user_refuses_duplicate_email_in_tenant(session: AsyncSession, tenant: Tenant) -> None:
    await auth_controller.create_user(
        session=session, tenant=tenant, email="Dup@Example.com", password=TEST_PASSWORD, role="operator", rounds=4
    )
    with pytest.raises(Conflict) as caught:
        await auth_controller.create_user(
            session=session, tenant=tenant, email="dup@example.com ", password=TEST_PASSWORD, role="admin", rounds=4
        )
    assert caught.value.code == "email_taken"


async def test_create_user_refuses_unknown_role(session: AsyncSession, tenant: Tenant) -> None:
    with pytest.raises(DomainValidationError):
        await auth_controller.create_user(
            session=session, tenant=tenant, email="r@example.com", password=TEST_PASSWORD, role="root", rounds=4
        )


@pytest.mark.parametrize(
    ("auth_id", "expected"),
    [
        ("12:3:abc", (12, 3, "abc")),
        (None, None),
        ("", None),
        ("12:3", None),
        ("x:3:abc", None),
        ("12:3:", None),
    ],
)
def test_parse_auth_id(auth_id: str | None, expected: tuple[int, int, str] | None) -> None:
    parsed = auth_controller.parse_auth_id(auth_id)
    assert (None if parsed is None else (parsed.user_id, parsed.session_version, parsed.nonce)) == expected


def test_csrf_token_is_bound_to_nonce_and_key() -> None:
    token = auth_controller.make_csrf_token("key-one", "nonce-a")
    assert auth_controller.csrf_token_valid("key-one", token, "nonce-a", max_age=60)
    assert not auth_controller.csrf_token_valid("key-one", token, "nonce-b", max_age=60)
    assert not auth_controller.csrf_token_valid("key-two", token, "nonce-a", max_age=60)
    assert not auth_controller.csrf_token_valid("key-one", None, "nonce-a", max_age=60)


async def test_hashing_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await auth_controller.hash_password("a long enough password", rounds=10)
    task.cancel()
    assert ticks > 10


async def test_no_transaction_is_open_while_bcrypt_runs(
    app: Quart, session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(app, role="customer", email="lockfree@example.com")
    await session.commit()  # end the fixture's read snapshot, which predates the new user
    seen: list[bool] = []
    original = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        seen.append(session.sync_session.in_transaction())
        return original(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    user = await auth_controller.authenticate(
        session=session, tenant=tenant, email="lockfree@example.com", password=TEST_PASSWORD,
        dummy_hash=auth_controller.make_dummy_hash(rounds=4), policy=auth_controller.LockoutPolicy(),
    )
    assert user.email == "lockfree@example.com"
    # On SQLite a write transaction holds the database lock; none may span the ~200 ms hash.
    assert seen == [False]

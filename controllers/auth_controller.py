"""Authentication: password hashing, login with lockout, sessions, CSRF tokens and password changes."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import bcrypt
from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import and_, bindparam, case, delete, literal, null, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import (
    AccountLocked,
    AuthenticationFailed,
    Conflict,
    DomainValidationError,
    FieldError,
)
from models.base_model import utcnow
from models.tenant_model import Tenant
from models.user_model import ROLES, LoginThrottle, User

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything past 72 bytes; refuse rather than truncate
CSRF_SALT = "cuponera.csrf"


@dataclass(frozen=True)
class LockoutPolicy:
    """How many failures within a window lock an account, and for how long."""

    threshold: int = 5
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class AuthId:
    """The parts of a session identity: user, the user's session version and a per-login nonce."""

    user_id: int
    session_version: int
    nonce: str

    def __str__(self) -> str:
        """The `<user id>:<session version>:<nonce>` text kept in the session cookie."""
        return f"{self.user_id}:{self.session_version}:{self.nonce}"

    @classmethod
    def for_user(cls, user: User, nonce: str | None = None) -> AuthId:
        """The identity of a session of `user` at its current session version; a fresh nonce unless one is kept."""
        return cls(user_id=user.id, session_version=user.session_version, nonce=nonce or secrets.token_urlsafe(12))

    @classmethod
    def parse(cls, text: str | None) -> AuthId | None:
        """Split a session identity; None when it is absent or not ours."""
        if not text:
            return None
        parts = text.split(":")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or not parts[2]:
            return None
        return cls(user_id=int(parts[0]), session_version=int(parts[1]), nonce=parts[2])


def check_password_policy(password: str, *, field: str = "password") -> None:
    """At least 10 characters and at most 72 bytes in UTF-8; a 422 naming the field otherwise."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise DomainValidationError(
            f"The password must have at least {MIN_PASSWORD_CHARS} characters.",
            code="password_too_short",
            errors=[FieldError(field, f"at least {MIN_PASSWORD_CHARS} characters", "password_too_short")],
        )
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise DomainValidationError(
            f"The password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8.",
            code="password_too_long",
            errors=[FieldError(field, f"at most {MAX_PASSWORD_BYTES} bytes in UTF-8", "password_too_long")],
        )


async def hash_password(password: str, *, rounds: int = 12) -> str:
    """bcrypt-hash a password in a worker thread so the event loop keeps serving."""
    salt = bcrypt.gensalt(rounds=rounds)
    digest = await asyncio.to_thread(bcrypt.hashpw, password.encode("utf-8"), salt)
    return digest.decode("ascii")


async def verify_password(password: str, password_hash: str) -> bool:
    """Check a password against a bcrypt hash in a worker thread."""
    encoded = password.encode("utf-8")
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    return await asyncio.to_thread(bcrypt.checkpw, encoded, password_hash.encode("ascii"))


def make_dummy_hash(rounds: int = 12) -> str:
    """A hash of a random secret, checked for unknown emails so they cost as much as a wrong password."""
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def email_looks_valid(email: str) -> bool:
    """True when the text is one email address by the API's own rule (email-validator, at most 254 characters)."""
    email = email.strip()
    if len(email) > 254:
        return False
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding spaces."""
    return email.strip().lower()


def new_auth_id(user: User) -> str:
    """A session identity bound to the user's current session version, with a fresh nonce."""
    return str(AuthId.for_user(user))


def parse_auth_id(auth_id: str | None) -> AuthId | None:
    """Split a session identity; None when it is absent or not ours."""
    return AuthId.parse(auth_id)


def make_csrf_token(secret_key: str, nonce: str) -> str:
    """A signed, timestamped CSRF token bound to the session's nonce."""
    return URLSafeTimedSerializer(secret_key, salt=CSRF_SALT).dumps(nonce)


def csrf_token_valid(secret_key: str, token: str | None, nonce: str, *, max_age: int) -> bool:
    """True when the token was made by us for this very session."""
    if not token:
        return False
    try:
        value = URLSafeTimedSerializer(secret_key, salt=CSRF_SALT).loads(token, max_age=max_age)
    except BadSignature:
        return False
    return isinstance(value, str) and hmac.compare_digest(value, nonce)


# What a request's checks and pages read about its user; never the password hash or the lockout counters.
# Built once: its cache key is computed once per process, not once per request.
_SESSION_USER = select(
    User.id, User.tenant_id, User.email, User.role, User.status, User.full_name, User.locale, User.customer_id,
    User.session_version,
).where(User.id == bindparam("user_id"))


async def _session_user_values(*, session: AsyncSession, user_id: int, session_version: int) -> dict | None:
    row = (await session.execute(_SESSION_USER, {"user_id": user_id})).first()
    if row is None or row.status != "active" or row.session_version != session_version:
        return None
    return row._asdict()


async def load_session_user(
    *, session: AsyncSession, user_id: int, session_version: int
) -> User | None:
    """The active user behind a session, if that session has not been ended by logout or a password change.

    One primary-key probe of columns, so a logout, password change, role change or disabling done by
    any process takes effect on the next request of every process. The result is a User that belongs
    to no session: read its fields; a unit of work that changes the user loads it (see `change_password`).
    """
    values = await _session_user_values(session=session, user_id=user_id, session_version=session_version)
    return User(**values) if values is not None else None


@dataclass
class SessionCache:
    """Active sessions' users, per process, kept while a change signal reads as it did before they were read.

    `signal` is what the caller read from a signal that changes after every commit that changes a user
    (`clients.sql_client.ChangeSignal`, SQLite only), read BEFORE the user row: a change committed
    before that read is in the row, and one committed after it changes the signal, which empties the
    cache on the next request. So a logout, password change, role change or disabling in any process
    applies on the next request of every process, without a round trip per request. `ttl_seconds`
    only bounds a signal that was never written (a process killed between its commit and the bump).
    With no signal (None: PostgreSQL, Azure SQL) nothing is kept and every request reads the row.
    Each request gets a User of its own (fresh, of no session), never a shared object.
    """

    ttl_seconds: float = 60.0
    max_entries: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _signal: bytes | None = None
    _users: dict[tuple[int, int], tuple[float, dict]] = field(default_factory=dict)

    def kept(self, *, user_id: int, session_version: int, signal: bytes | None) -> User | None:
        """The kept user of this session while `signal` has not changed; None means "read it" (see `load`)."""
        if signal is None:
            return None
        if signal != self._signal:
            self._users.clear()
            self._signal = signal
        found = self._users.get((user_id, session_version))
        if found is not None and found[0] > self.clock():
            return User(**found[1])
        return None

    async def load(
        self, *, session: AsyncSession, user_id: int, session_version: int, signal: bytes | None
    ) -> User | None:
        """`load_session_user`, answered from this process's copy while `signal` has not changed."""
        if signal is None:
            return await load_session_user(session=session, user_id=user_id, session_version=session_version)
        kept = self.kept(user_id=user_id, session_version=session_version, signal=signal)
        if kept is not None:
            return kept
        key = (user_id, session_version)
        values = await _session_user_values(session=session, user_id=user_id, session_version=session_version)
        if values is None:
            return None
        # Another request of this process may have seen a newer signal meanwhile: then this row may
        # predate the change, and is used for this request only.
        if self._signal == signal:
            if len(self._users) >= self.max_entries:
                self._users.clear()
            self._users[key] = (self.clock() + self.ttl_seconds, values)
        return User(**values)

    def clear(self) -> None:
        """Forget every kept user."""
        self._users.clear()


async def authenticate(
    *,
    session: AsyncSession,
    tenant: Tenant,
    email: str,
    password: str,
    dummy_hash: str,
    policy: LockoutPolicy,
    ip: str = "unknown",
    now: datetime | None = None,
) -> User:
    """Check credentials with a lockout per email and address; real and unknown emails take the same path."""
    now = now or utcnow()
    email = normalize_email(email)
    user = await session.scalar(select(User).where(User.tenant_id == tenant.id, User.email == email))
    throttle = await session.scalar(
        select(LoginThrottle).where(
            LoginThrottle.tenant_id == tenant.id, LoginThrottle.email == email, LoginThrottle.ip == ip
        )
    )
    # End the transaction before bcrypt's ~200 ms: on SQLite a write session's transaction holds
    # the database write lock, which would make every other writer wait for the hash.
    await session.commit()
    # One bcrypt check on every path (the dummy hash for unknown emails), so timing reveals nothing.
    password_ok = await verify_password(password, user.password_hash if user is not None else dummy_hash)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        retry_after = int((throttle.locked_until - now).total_seconds()) + 1
        raise AccountLocked(
            "Too many failed logins. The account is locked for a while; try again later.",
            extra={"retry_after": retry_after},
        )
    if user is None or not password_ok or user.status != "active":
        await _record_failure(
            session=session, tenant_id=tenant.id, email=email, ip=ip, throttle=throttle, policy=policy, now=now
        )
        raise AuthenticationFailed("The email or password is wrong.", code="invalid_credentials")
    if throttle is not None:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.id == throttle.id))
        await session.commit()
    return user


async def _record_failure(
    *,
    session: AsyncSession,
    tenant_id: int,
    email: str,
    ip: str,
    throttle: LoginThrottle | None,
    policy: LockoutPolicy,
    now: datetime,
) -> None:
    """Count a failure of this email from this address; the threshold-th one in the window locks the pair.

    One UPDATE computes the new count from the stored one (`failed_count + 1`), so concurrent failed
    logins each count: a read-modify-write would let parallel guesses overwrite each other.
    """
    in_window = and_(LoginThrottle.window_start.is_not(None), LoginThrottle.window_start > now - policy.window)
    count = case((in_window, LoginThrottle.failed_count + 1), else_=1)
    locks = count >= policy.threshold
    moment = LoginThrottle.window_start.type  # binds go through the column's UTC type
    key = (LoginThrottle.tenant_id == tenant_id, LoginThrottle.email == email, LoginThrottle.ip == ip)
    in_sql = {
        "failed_count": case((locks, 0), else_=count),
        "window_start": case((locks, null()), (in_window, LoginThrottle.window_start), else_=literal(now, moment)),
        "locked_until": case((locks, literal(now + policy.lock_for, moment)), else_=null()),
    }
    counted = update(LoginThrottle).where(*key).values(**in_sql).execution_options(synchronize_session=False)
    if throttle is not None:
        await session.execute(counted)
    else:
        first: dict[str, object] = {"failed_count": 1, "window_start": now, "locked_until": None}
        if policy.threshold <= 1:
            first = {"failed_count": 0, "window_start": None, "locked_until": now + policy.lock_for}
        try:
            async with session.begin_nested():
                session.add(LoginThrottle(tenant_id=tenant_id, email=email, ip=ip, **first))
        except IntegrityError:
            await session.execute(counted)  # a concurrent failure created the row first; count on it
    await session.commit()
    await session.commit()


async def change_password(
    *, session: AsyncSession, user: User, current_password: str, new_password: str, rounds: int = 12
) -> User:
    """Replace the password and bump the session version, which ends every other session."""
    user = await session.get_one(User, user.id, populate_existing=True)
    await session.commit()  # no transaction (on SQLite: no write lock) while bcrypt runs
    if not await verify_password(current_password, user.password_hash):
        raise DomainValidationError(
            "The current password is wrong.",
            code="invalid_current_password",
            errors=[FieldError("current_password", "does not match", "invalid_current_password")],
        )
    check_password_policy(new_password, field="new_password")
    await set_password(session=session, user=user, new_password=new_password, rounds=rounds)
    return user


async def end_sessions(*, session: AsyncSession, user: User) -> None:
    """Bump the session version so every cookie of the user is refused by every process (logout)."""
    # The version lives in the database, so a process holding an old cookie sees the change on its next request.
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def set_password(*, session: AsyncSession, user: User, new_password: str, rounds: int = 12) -> None:
    """Store a new hash, unlock, and end every session of the user (password change and reset)."""
    new_hash = await hash_password(new_password, rounds=rounds)
    user.password_hash = new_hash
    user.session_version = user.session_version + 1
    user.password_changed_at = utcnow()
    user.failed_login_count = 0
    user.failed_login_window_start = None
    user.locked_until = None
    session.add(user)
    await session.commit()


async def create_user(
    *,
    session: AsyncSession,
    tenant: Tenant,
    email: str,
    password: str,
    role: str,
    full_name: str = "",
    locale: str | None = None,
    rounds: int = 12,
    commit: bool = True,
) -> User:
    """Create a login; the email must be new in the tenant and the password must pass the policy."""
    if role not in ROLES:
        raise DomainValidationError(
            f"Unknown role {role!r}.", errors=[FieldError("role", f"one of {', '.join(ROLES)}")]
        )
    check_password_policy(password)
    email = normalize_email(email)
    existing = await session.scalar(select(User.id).where(User.tenant_id == tenant.id, User.email == email))
    if existing is not None:
        raise Conflict("A user with that email already exists.", code="email_taken")
    user = User(
        tenant_id=tenant.id,
        email=email,
        password_hash=await hash_password(password, rounds=rounds),
        role=role,
        status="active",
        full_name=full_name,
        locale=locale or tenant.locale,
        failed_login_count=0,
        session_version=1,
    )
    session.add(user)
    if commit:
        await session.commit()
    else:
        await session.flush()
    return user

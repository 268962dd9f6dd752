"""Fixtures: an app on a fresh database per test (SQLite, or PostgreSQL with TEST_DATABASE_URL) and role clients."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import quart_rate_limiter
from quart import Quart
from sqlalchemy import MetaData, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from clients.sql_client import build_engine, upgrade_to_head
from controllers import auth_controller, tenant_controller
from models.tenant_model import Tenant
from models.user_model import User

# Every statement the suite runs is also checked as Azure SQL would see it (see tests/tsql_gate.py).
pytest_plugins = ["tests.tsql_gate"]

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
TEST_PASSWORD = "correct horse battery"
TEST_SECRET = "test-secret-key-not-for-production"


def migrate(url: str, schema: str | None = None) -> None:
    """Run every Alembic migration against a database, the way production does."""
    upgrade_to_head(url, schema=schema)


@dataclass
class TestDatabase:
    """Where a test's database lives and how to reset it."""

    url: str
    schema: str | None
    template: Path | None = None
    seed_rows: dict[str, list[dict[str, Any]]] | None = None

    __test__ = False  # not a test class


async def _snapshot_rows(url: str, schema: str) -> dict[str, list[dict[str, Any]]]:
    """Rows the migrations inserted (the default tenant, seeded holidays), to restore per test."""
    engine = build_engine(url, schema=schema)
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        async with engine.connect() as conn:
            meta = MetaData()
            await conn.run_sync(lambda sync: meta.reflect(sync, schema=schema))
            for table in meta.sorted_tables:
                if table.name == "alembic_version":
                    continue
                result = await conn.execute(select(table))
                found = [dict(r._mapping) for r in result]
                if found:
                    rows[table.name] = found
    finally:
        await engine.dispose()
    return rows


@pytest.fixture(scope="session")
def test_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """Migrate once per session: a template SQLite file, or a private PostgreSQL schema."""
    if TEST_DATABASE_URL:
        schema = f"cuponera_test_{uuid.uuid4().hex[:10]}"

        async def create_schema() -> None:
            engine = build_engine(TEST_DATABASE_URL)
            async with engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await engine.dispose()

        asyncio.run(create_schema())
        try:
            migrate(TEST_DATABASE_URL, schema)
            seed_rows = asyncio.run(_snapshot_rows(TEST_DATABASE_URL, schema))
            yield TestDatabase(url=TEST_DATABASE_URL, schema=schema, seed_rows=seed_rows)
        finally:

            async def drop_schema() -> None:
                engine = build_engine(TEST_DATABASE_URL)
                async with engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                await engine.dispose()

            asyncio.run(drop_schema())
    else:
        template = tmp_path_factory.mktemp("template") / "cuponera.db"
        migrate(f"sqlite+aiosqlite:///{template}")
        yield TestDatabase(url="", schema=None, template=template)


async def _reset_postgres(db: TestDatabase) -> None:
    """Empty every table and restore the migration-seeded rows, so each test starts fresh."""
    engine = build_engine(db.url, schema=db.schema)
    try:
        async with engine.begin() as conn:
            meta = MetaData()
            await conn.run_sync(lambda sync: meta.reflect(sync, schema=db.schema))
            tables = [t for t in meta.sorted_tables if t.name != "alembic_version"]
            names = ", ".join(f'"{db.schema}"."{t.name}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            for table in tables:
                rows = (db.seed_rows or {}).get(table.name)
                if not rows:
                    continue
                await conn.execute(insert(table), rows)
                if "id" in table.c:
                    await conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('\"{db.schema}\".\"{table.name}\"', 'id'), "
                            f'(SELECT MAX(id) FROM "{db.schema}"."{table.name}"))'
                        )
                    )
    finally:
        await engine.dispose()


@pytest.fixture
async def database_url(test_database: TestDatabase, tmp_path: Path) -> str:
    """A fresh database for one test; returns its URL."""
    if test_database.template is not None:
        target = tmp_path / "cuponera.db"
        shutil.copyfile(test_database.template, target)
        return f"sqlite+aiosqlite:///{target}"
    await _reset_postgres(test_database)
    return test_database.url


def app_config(database_url: str, test_database: TestDatabase, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Settings for a test app: fast bcrypt, a fixed secret and a private var/ directory."""
    return {
        "ENV": "test",
        "DATABASE_URL": database_url,
        "DATABASE_SCHEMA": test_database.schema,
        "SECRET_KEY": TEST_SECRET,
        "VAR_DIR": tmp_path / "var",
        "BCRYPT_ROUNDS": 4,
        "LOG_LEVEL": "WARNING",
        "COOKIE_SECURE": False,
        "DEMO_DATA": False,
        **overrides,
    }


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
async def app(
    database_url: str, test_database: TestDatabase, tmp_path: Path, app_overrides: dict[str, Any]
) -> AsyncIterator[Quart]:
    """The app on a fresh database, with startup and shutdown hooks run."""
    application = create_app(app_config(database_url, test_database, tmp_path, **app_overrides))
    async with application.test_app():
        yield application


@pytest.fixture
async def session(app: Quart) -> AsyncIterator[AsyncSession]:
    """A session on the test database, for arranging data and checking results."""
    async with app.extensions["cuponera"].sql.session_scope() as db_session:
        yield db_session


@pytest.fixture
async def tenant(session: AsyncSession) -> Tenant:
    """The default tenant."""
    return await tenant_controller.default_tenant(session=session)


class ApiClient:
    """A test client that sends the session's CSRF token on unsafe methods, like a browser frontend."""

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.raw = app.test_client()
        self.csrf_token: str | None = None
        self.user: dict[str, Any] | None = None

    async def login(self, email: str, password: str = TEST_PASSWORD, **kwargs: Any) -> Any:
        """Log in and keep the CSRF token."""
        response = await self.raw.post("/api/v1/auth/login", json={"email": email, "password": password}, **kwargs)
        if response.status_code == 200:
            body = await response.get_json()
            self.csrf_token = body["csrf_token"]
            self.user = body["user"]
        return response

    def _headers(self, method: str, headers: dict[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        if method in {"POST", "PUT", "PATCH", "DELETE"} and self.csrf_token and "X-CSRF-Token" not in merged:
            merged["X-CSRF-Token"] = self.csrf_token
        return merged

    async def open(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request with CSRF handled."""
        kwargs["headers"] = self._headers(method, kwargs.get("headers"))
        return await self.raw.open(path, method=method, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> Any:
        """GET."""
        return await self.open("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        """POST."""
        return await self.open("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Any:
        """PUT."""
        return await self.open("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Any:
        """PATCH."""
        return await self.open("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE."""
        return await self.open("DELETE", path, **kwargs)


async def make_user(
    app: Quart,
    *,
    role: str,
    email: str | None = None,
    password: str = TEST_PASSWORD,
    tenant_code: str | None = None,
    full_name: str = "Test User",
) -> User:
    """Create a user directly through the controller."""
    async with app.extensions["cuponera"].sql.session_scope(write=True) as db_session:
        tenant = await tenant_controller.resolve_public_tenant(session=db_session, code=tenant_code)
        return await auth_controller.create_user(
            session=db_session,
            tenant=tenant,
            email=email or f"{role}-{uuid.uuid4().hex[:8]}@example.com",
            password=password,
            role=role,
            full_name=full_name,
            rounds=4,
        )


async def logged_in_client(app: Quart, role: str, **user_kwargs: Any) -> ApiClient:
    """A client logged in as a new user of the role."""
    user = await make_user(app, role=role, **user_kwargs)
    api = ApiClient(app)
    response = await api.login(user.email)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return api


class _StoppedClock(datetime):
    """A datetime whose now() is one fixed instant (quart-rate-limiter reads its clock through `datetime.now`)."""

    instant: datetime

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return cls.instant if tz is not None else cls.instant.replace(tzinfo=None)


@pytest.fixture(autouse=True)
def rate_limit_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the rate limiter's clock for the test: a limit of N a minute refuses request N+1 however slow
    the machine is, instead of refilling a token every 60/N seconds while a loaded CI box works through
    the first N. App processes a test starts keep the real clock."""
    clock = type("StoppedClock", (_StoppedClock,), {"instant": datetime.now(UTC)})
    monkeypatch.setattr(quart_rate_limiter, "datetime", clock)


@pytest.fixture
def client(app: Quart) -> ApiClient:
    """An anonymous client."""
    return ApiClient(app)


@pytest.fixture
async def admin_client(app: Quart) -> ApiClient:
    """A client logged in as an admin."""
    return await logged_in_client(app, "admin")


@pytest.fixture
async def operator_client(app: Quart) -> ApiClient:
    """A client logged in as an operator."""
    return await logged_in_client(app, "operator")


@pytest.fixture
async def customer_user_client(app: Quart) -> ApiClient:
    """A client logged in as a customer-role user with no customer record linked."""
    return await logged_in_client(app, "customer")


class MailCatcher:
    """An aiosmtpd handler that keeps every message it accepts, parsed, for notification tests."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        """Refuse mailboxes at refused.example for good (a 5xx), accept the rest."""
        if address.endswith("@refused.example"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept and keep the message."""
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
        return "250 Message accepted"

    def message_ids(self) -> list[str]:
        """The Message-ID of every message received, in arrival order."""
        return [str(message["Message-ID"]) for message in self.messages]


@dataclass
class MailServer:
    """A real SMTP server on loopback that can be started late (to play an SMTP outage) and stopped."""

    port: int
    catcher: MailCatcher
    controller: Any = None

    def start(self) -> None:
        """Start listening on the port."""
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.catcher, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def smtp_settings(self, **overrides: Any) -> Any:
        """SmtpSettings that deliver to this server."""
        from config import SmtpSettings

        return SmtpSettings(host="127.0.0.1", port=self.port, starttls=False, timeout=5.0, **overrides)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A running local SMTP server that collects messages (call .stop()/.start() to simulate an outage)."""
    server = MailServer(port=free_port(), catcher=MailCatcher())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def customer_client(app: Quart) -> ApiClient:
    """A customer login linked to a customer record with one active contract.

    Exposes `.customer_id`, `.contract_id` and `.contract_number` on the client.
    """
    from tests.factories import make_contract, make_customer, make_customer_user

    async with app.extensions["cuponera"].sql.session_scope(write=True) as db_session:
        tenant = await tenant_controller.default_tenant(session=db_session)
        customer = await make_customer(db_session, tenant)
        contract = await make_contract(db_session, customer)
        user = await make_customer_user(db_session, customer)
        await db_session.commit()
        email, customer_id, contract_id, contract_number = user.email, customer.id, contract.id, contract.contract_number
    api = ApiClient(app)
    response = await api.login(email)
    assert response.status_code == 200, await response.get_data(as_text=True)
    api.customer_id = customer_id  # type: ignore[attr-defined]
    api.contract_id = contract_id  # type: ignore[attr-defined]
    api.contract_number = contract_number  # type: ignore[attr-defined]
    return api

"""What the request path keeps between requests, and what it must not: sessions are checked every request.

Two app instances on one database stand in for two worker processes: each has its own per-process
tenant cache, and a logout, a password change or a demotion done through one takes effect on the
very next request the other serves.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from quart import Quart
from sqlalchemy import text, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from controllers.auth_controller import SessionCache
from controllers.tenant_controller import TenantCache
from models.tenant_model import Tenant
from models.user_model import User
from tests.conftest import TEST_PASSWORD, ApiClient, TestDatabase, app_config, make_user
from tests.served_app import app_process


@pytest.fixture
async def second_process(database_url: str, test_database: TestDatabase, tmp_path: Path) -> AsyncIterator[Quart]:
    """Another app on the same database, with caches of its own (another worker process)."""
    other = create_app(app_config(database_url, test_database, tmp_path / "second"))
    async with other.test_app():
        yield other


async def _same_session_on(other: Quart, api: ApiClient) -> ApiClient:
    """A client of `other` carrying `api`'s session cookie and CSRF token."""
    twin = ApiClient(other)
    value = next(c.value for c in api.raw.cookie_jar if c.name == "cuponera_session")  # type: ignore[union-attr]
    assert value
    twin.raw.set_cookie("localhost", "cuponera_session", value)
    twin.csrf_token = api.csrf_token
    return twin


async def test_logout_in_one_process_ends_the_session_on_the_next_request_of_another(app: Quart, second_process: Quart) -> None:
    user = await make_user(app, role="operator")
    api = ApiClient(app)
    assert (await api.login(user.email)).status_code == 200
    twin = await _same_session_on(second_process, api)
    assert (await twin.get("/api/v1/auth/me")).status_code == 200  # the second process has seen the session
    assert (await api.post("/api/v1/auth/logout")).status_code == 204
    assert (await twin.get("/api/v1/auth/me")).status_code == 401


async def test_password_change_in_one_process_ends_other_sessions_in_another(app: Quart, second_process: Quart) -> None:
    user = await make_user(app, role="customer")
    stays, other = ApiClient(app), ApiClient(app)
    assert (await stays.login(user.email)).status_code == 200
    assert (await other.login(user.email)).status_code == 200
    twin = await _same_session_on(second_process, other)
    assert (await twin.get("/api/v1/auth/me")).status_code == 200
    changed = await stays.post(
        "/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "otra clave larga 2026"}
    )
    assert changed.status_code == 204
    assert (await twin.get("/api/v1/auth/me")).status_code == 401
    assert (await stays.get("/api/v1/auth/me")).status_code == 200


async def test_a_demotion_in_one_process_applies_on_the_next_request_of_another(
    app: Quart, second_process: Quart, admin_client: ApiClient
) -> None:
    user = await make_user(app, role="admin")
    api = ApiClient(app)
    assert (await api.login(user.email)).status_code == 200
    twin = await _same_session_on(second_process, api)
    assert (await twin.get("/api/v1/users")).status_code == 200
    assert (await admin_client.patch(f"/api/v1/users/{user.id}", json={"role": "operator"})).status_code == 200
    assert (await twin.get("/api/v1/users")).status_code == 403
    me = await (await twin.get("/api/v1/auth/me")).get_json()
    assert me["role"] == "operator"


async def test_the_cached_tenant_outlives_a_rollback_and_follows_a_change_after_its_ttl(session: AsyncSession, tenant: Tenant) -> None:
    now = [1000.0]
    cache = TenantCache(ttl_seconds=60, clock=lambda: now[0])
    tenant_id, name = tenant.id, tenant.name
    cached = await cache.public(session=session, code=None)
    assert (cached.id, cached.name) == (tenant_id, name)
    await session.rollback()  # expires what the session loaded; the cached copy belongs to no session
    assert cached.name == name and await cache.by_id(session=session, tenant_id=tenant_id) is not None

    await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(name="Energía del Valle S.A."))
    await session.commit()
    now[0] += 59
    assert (await cache.public(session=session, code=None)).name == name
    now[0] += 2
    assert (await cache.public(session=session, code=None)).name == "Energía del Valle S.A."
    assert (await cache.by_id(session=session, tenant_id=tenant_id)).name == "Energía del Valle S.A."  # type: ignore[union-attr]
    assert await cache.by_id(session=session, tenant_id=tenant_id + 1000) is None


async def test_session_users_are_kept_while_the_change_signal_reads_the_same(session: AsyncSession, app: Quart) -> None:
    user = await make_user(app, role="operator", full_name="Ana Pérez")
    now = [1000.0]
    cache = SessionCache(ttl_seconds=60, clock=lambda: now[0])
    first = await cache.load(session=session, user_id=user.id, session_version=1, signal=b"one")
    assert first is not None and first.full_name == "Ana Pérez"
    # Written behind the ORM's back (no signal): the kept copy answers while the signal is unchanged...
    await session.execute(text("UPDATE users SET full_name = 'Ana Gómez' WHERE id = :id"), {"id": user.id})
    await session.commit()
    again = await cache.load(session=session, user_id=user.id, session_version=1, signal=b"one")
    assert again is not None and again.full_name == "Ana Pérez" and again is not first  # a fresh object per request
    # ...and a new signal value, or the time limit, makes the next request read the row.
    assert (await cache.load(session=session, user_id=user.id, session_version=1, signal=b"two")).full_name == "Ana Gómez"  # type: ignore[union-attr]
    await session.execute(text("UPDATE users SET full_name = 'Ana Ruiz' WHERE id = :id"), {"id": user.id})
    await session.commit()
    now[0] += 61
    assert (await cache.load(session=session, user_id=user.id, session_version=1, signal=b"two")).full_name == "Ana Ruiz"  # type: ignore[union-attr]
    # A stale version is refused; with no signal (PostgreSQL, Azure SQL) every call reads the row.
    assert await cache.load(session=session, user_id=user.id, session_version=2, signal=b"two") is None
    await session.execute(text("UPDATE users SET status = 'disabled' WHERE id = :id"), {"id": user.id})
    await session.commit()
    assert await cache.load(session=session, user_id=user.id, session_version=1, signal=None) is None


async def test_commits_that_change_users_move_the_change_signal(app: Quart, session: AsyncSession) -> None:
    signal = app.extensions["cuponera"].sql.change_signal
    if signal is None:
        assert app.extensions["cuponera"].sql.engine.dialect.name != "sqlite"
        return  # PostgreSQL: no signal, the session check reads the user row every request
    user = await make_user(app, role="customer")
    before = signal.read()
    assert before
    await session.execute(update(Tenant).where(Tenant.is_default == true()).values(name="Otra S.A."))
    await session.commit()
    assert signal.read() == before  # not a users change
    await session.execute(update(User).where(User.id == user.id).values(role="operator"))
    await session.rollback()
    assert signal.read() == before  # rolled back: nothing changed
    await session.execute(update(User).where(User.id == user.id).values(role="operator"))
    assert signal.read() == before  # signalled after the commit, never before
    await session.commit()
    after = signal.read()
    assert after and after != before
    loaded = await session.get_one(User, user.id)
    loaded.full_name = "Nuevo Nombre"  # a flushed object change counts too
    await session.commit()
    assert signal.read() not in {before, after}


async def test_two_served_processes_a_password_change_or_logout_in_one_is_a_401_on_the_next_request_of_the_other(
    app: Quart, database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    user = await make_user(app, role="customer")
    common = {"database_url": database_url, "schema": test_database.schema}
    async with (
        app_process(var_dir=tmp_path / "one", **common) as one,
        app_process(var_dir=tmp_path / "two", **common) as two,
        httpx.AsyncClient() as client,
    ):

        async def log_in() -> tuple[dict[str, str], str]:
            response = await client.post(f"{one.base_url}/api/v1/auth/login", json={"email": user.email, "password": TEST_PASSWORD})
            assert response.status_code == 200
            client.cookies.clear()  # each request below names its session explicitly
            return {"Cookie": f"cuponera_session={response.cookies['cuponera_session']}"}, response.json()["csrf_token"]

        async def me(base_url: str, headers: dict[str, str]) -> int:
            return (await client.get(f"{base_url}/api/v1/auth/me", headers=headers)).status_code

        changing, csrf = await log_in()
        other, _ = await log_in()
        for _ in range(3):  # the second process has read (and keeps) both sessions
            assert await me(two.base_url, changing) == 200 and await me(two.base_url, other) == 200
        changed = await client.post(
            f"{one.base_url}/api/v1/auth/password", headers={**changing, "X-CSRF-Token": csrf},
            json={"current_password": TEST_PASSWORD, "new_password": "otra clave larga 2026"},
        )
        assert changed.status_code == 204
        assert await me(two.base_url, other) == 401  # ended by the change made in the first process
        assert await me(one.base_url, other) == 401

        client_cookie = {"Cookie": changed.headers["set-cookie"].split(";", 1)[0]}  # the changer keeps a new session
        assert await me(two.base_url, client_cookie) == 200
        logout_csrf = (await client.get(f"{two.base_url}/api/v1/auth/csrf", headers=client_cookie)).json()["csrf_token"]
        assert (await client.post(f"{two.base_url}/api/v1/auth/logout", headers={**client_cookie, "X-CSRF-Token": logout_csrf})).status_code == 204
        assert await me(one.base_url, client_cookie) == 401


async def test_a_served_app_moves_its_start_up_objects_out_of_the_collectors_way(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    assert gc.get_freeze_count() == 0  # tests never freeze (they build many apps in one process)
    served = create_app(app_config(database_url, test_database, tmp_path, ENV="development", WORKER_IN_PROCESS=False))
    try:
        async with served.test_app():
            assert gc.get_freeze_count() > 10_000  # modules, models, the app: all of start-up
    finally:
        gc.unfreeze()

"""What the request path keeps between requests, and what it must not: sessions are checked every request.

Two app instances on one database stand in for two worker processes: each has its own per-process
tenant cache, and a logout, a password change or a demotion done through one takes effect on the
very next request the other serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quart import Quart
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from controllers.tenant_controller import TenantCache
from models.tenant_model import Tenant
from tests.conftest import TEST_PASSWORD, ApiClient, TestDatabase, app_config, make_user


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

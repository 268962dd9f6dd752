"""Auth routes: login, lockout, rate limit, me, CSRF, logout and password change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from quart import Quart
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base_model import utcnow
from models.user_model import LoginThrottle, User
from tests.conftest import TEST_PASSWORD, ApiClient, logged_in_client, make_user


async def test_login_returns_user_csrf_token_and_http_only_cookie(app: Quart, client: ApiClient) -> None:
    user = await make_user(app, role="operator", email="Op@Example.com", full_name="Óscar Operador")
    response = await client.login("  op@example.COM ")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["user"] == {"id": user.id, "email": "op@example.com", "role": "operator", "full_name": "Óscar Operador"}
    assert len(body["csrf_token"]) > 20
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("cuponera_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


async def test_wrong_password_and_unknown_email_look_the_same(app: Quart, client: ApiClient) -> None:
    await make_user(app, role="customer", email="c@example.com")
    wrong = await client.login("c@example.com", "wrong password!")
    unknown = await client.login("nobody@example.com", "wrong password!")
    assert wrong.status_code == unknown.status_code == 401
    wrong_body, unknown_body = await wrong.get_json(), await unknown.get_json()
    assert wrong_body["code"] == unknown_body["code"] == "invalid_credentials"
    assert wrong_body["detail"] == unknown_body["detail"]
    assert wrong.content_type == "application/problem+json"


async def test_me_requires_login(client: ApiClient) -> None:
    response = await client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert (await response.get_json())["code"] == "not_authenticated"


async def test_me_shows_user_role_and_tenant(operator_client: ApiClient) -> None:
    response = await operator_client.get("/api/v1/auth/me")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["role"] == "operator"
    assert body["email"] == operator_client.user["email"]
    assert body["tenant"]["code"] == "default"
    assert body["tenant"]["currency"] == "COP"


async def test_unsafe_request_without_csrf_token_is_refused(operator_client: ApiClient) -> None:
    response = await operator_client.raw.post("/api/v1/auth/logout")
    assert response.status_code == 403
    assert (await response.get_json())["code"] == "csrf_token_missing"
    bad = await operator_client.raw.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "forged"})
    assert bad.status_code == 403
    assert (await bad.get_json())["code"] == "csrf_token_invalid"
    still_in = await operator_client.get("/api/v1/auth/me")
    assert still_in.status_code == 200


async def test_csrf_token_of_another_session_is_refused(app: Quart) -> None:
    first = await logged_in_client(app, "operator")
    second = await logged_in_client(app, "operator")
    response = await first.raw.post("/api/v1/auth/logout", headers={"X-CSRF-Token": second.csrf_token})
    assert response.status_code == 403


async def test_fresh_csrf_token_works(operator_client: ApiClient) -> None:
    response = await operator_client.get("/api/v1/auth/csrf")
    assert response.status_code == 200
    token = (await response.get_json())["csrf_token"]
    logout = await operator_client.raw.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token})
    assert logout.status_code == 204


async def test_logout_ends_the_session(operator_client: ApiClient) -> None:
    response = await operator_client.post("/api/v1/auth/logout")
    assert response.status_code == 204
    assert "cuponera_session=;" in response.headers["Set-Cookie"]
    me = await operator_client.get("/api/v1/auth/me")
    assert me.status_code == 401


def _throttle(email: str) -> Any:
    return select(LoginThrottle).where(LoginThrottle.email == email)


async def test_five_failures_lock_the_email_from_that_address_for_fifteen_minutes(
    app: Quart, client: ApiClient, session: AsyncSession
) -> None:
    await make_user(app, role="customer", email="lock@example.com")
    for _ in range(4):
        assert (await client.login("lock@example.com", "wrong password!")).status_code == 401
    fifth = await client.login("lock@example.com", "wrong password!")
    assert fifth.status_code == 401
    locked = await client.login("lock@example.com")
    assert locked.status_code == 423
    body = await locked.get_json()
    assert body["code"] == "account_locked"
    assert 850 <= int(locked.headers["Retry-After"]) <= 901
    row = await session.scalar(_throttle("lock@example.com"))
    assert row is not None and row.locked_until is not None
    assert timedelta(minutes=14) < row.locked_until - utcnow() <= timedelta(minutes=15)
    # When the lock has passed, the right password works again and the counters reset.
    await session.execute(update(LoginThrottle).where(LoginThrottle.id == row.id).values(locked_until=utcnow() - timedelta(seconds=1)))
    await session.commit()
    assert (await client.login("lock@example.com")).status_code == 200
    session.expire_all()
    assert await session.scalar(_throttle("lock@example.com")) is None


async def test_the_lockout_looks_the_same_for_real_and_unknown_emails(app: Quart, client: ApiClient) -> None:
    await make_user(app, role="customer", email="real@example.com")
    answers = {}
    for email in ("real@example.com", "ghost@example.com"):
        for _ in range(5):
            assert (await client.login(email, "wrong password!")).status_code == 401
        answers[email] = await client.login(email, "wrong password!")
    real, ghost = answers["real@example.com"], answers["ghost@example.com"]
    assert real.status_code == ghost.status_code == 423
    real_body, ghost_body = await real.get_json(), await ghost.get_json()
    real_body.pop("request_id"), ghost_body.pop("request_id")
    assert real_body["retry_after"] - ghost_body["retry_after"] in (-1, 0, 1)
    real_body.pop("retry_after"), ghost_body.pop("retry_after")
    assert real_body == ghost_body and real_body["code"] == "account_locked"
    # The per-IP rate-limit headers count this address's requests, not the account's.
    ignored = {"x-request-id", "retry-after", "content-length", "date", "ratelimit-remaining", "ratelimit-reset"}
    assert {(k.lower(), v) for k, v in real.headers.items() if k.lower() not in ignored} == {
        (k.lower(), v) for k, v in ghost.headers.items() if k.lower() not in ignored
    }


async def test_a_stranger_cannot_lock_a_customer_out_from_another_address(app: Quart) -> None:
    await make_user(app, role="customer", email="victim@example.com")
    stranger = ApiClient(app)
    for _ in range(6):
        await stranger.login("victim@example.com", "wrong password!", scope_base={"client": ("203.0.113.9", 4000)})
    assert (await stranger.login("victim@example.com", scope_base={"client": ("203.0.113.9", 4000)})).status_code == 423
    customer = ApiClient(app)
    assert (await customer.login("victim@example.com", scope_base={"client": ("198.51.100.7", 5000)})).status_code == 200


async def test_failures_outside_the_window_do_not_lock(app: Quart, client: ApiClient, session: AsyncSession) -> None:
    await make_user(app, role="customer", email="slow@example.com")
    for _ in range(4):
        await client.login("slow@example.com", "wrong password!")
    await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.email == "slow@example.com")
        .values(window_start=utcnow() - timedelta(minutes=16))
    )
    await session.commit()
    assert (await client.login("slow@example.com", "wrong password!")).status_code == 401
    assert (await client.login("slow@example.com")).status_code == 200


async def test_login_is_rate_limited_per_ip(app: Quart, client: ApiClient) -> None:
    statuses = [(await client.login(f"nobody{i}@example.com", "whatever-pass")).status_code for i in range(31)]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429
    last = await client.login("nobody@example.com", "whatever-pass")
    assert (await last.get_json())["code"] == "rate_limited"
    assert int(last.headers["Retry-After"]) >= 1


async def test_password_change_ends_other_sessions_but_not_this_one(app: Quart) -> None:
    user = await make_user(app, role="customer", email="pw@example.com")
    first, second = ApiClient(app), ApiClient(app)
    assert (await first.login(user.email)).status_code == 200
    assert (await second.login(user.email)).status_code == 200
    response = await first.post(
        "/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "a brand new secret"}
    )
    assert response.status_code == 204
    assert (await first.get("/api/v1/auth/me")).status_code == 200
    assert (await second.get("/api/v1/auth/me")).status_code == 401
    # The changed session keeps its CSRF token.
    assert (await first.post("/api/v1/auth/logout")).status_code == 204
    assert (await ApiClient(app).login(user.email)).status_code == 401
    assert (await ApiClient(app).login(user.email, "a brand new secret")).status_code == 200


async def test_password_change_checks_current_and_policy(customer_user_client: ApiClient) -> None:
    wrong = await customer_user_client.post(
        "/api/v1/auth/password", json={"current_password": "not it at all", "new_password": "a brand new secret"}
    )
    assert wrong.status_code == 422
    assert (await wrong.get_json())["code"] == "invalid_current_password"
    short = await customer_user_client.post(
        "/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "short"}
    )
    assert short.status_code == 422
    body = await short.get_json()
    assert body["code"] == "password_too_short"
    assert body["errors"][0]["field"] == "new_password"
    long = await customer_user_client.post(
        "/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "ñ" * 37}
    )
    assert long.status_code == 422
    assert (await long.get_json())["code"] == "password_too_long"


async def test_tampered_session_cookie_is_anonymous(app: Quart, operator_client: ApiClient) -> None:
    operator_client.raw.set_cookie("localhost", "cuponera_session", "1:1:forged.signature")
    response = await operator_client.get("/api/v1/auth/me")
    assert response.status_code == 401


async def test_disabled_user_cannot_log_in_and_loses_sessions(
    app: Quart, operator_client: ApiClient, session: AsyncSession
) -> None:
    user_id = operator_client.user["id"]
    await session.execute(update(User).where(User.id == user_id).values(status="disabled"))
    await session.commit()
    assert (await operator_client.get("/api/v1/auth/me")).status_code == 401
    assert (await ApiClient(app).login(operator_client.user["email"])).status_code == 401


async def test_users_are_scoped_to_their_tenant(app: Quart, session: AsyncSession) -> None:
    from models.tenant_model import Tenant

    session.add(
        Tenant(code="cge", name="CGE Distribución", country="CL", currency="CLP", timezone="America/Santiago",
               locale="es", gln="7809998000014", payment_terms_days=20, coupon_validity_hours=48)
    )
    await session.commit()
    await make_user(app, role="customer", email="same@example.com", tenant_code="cge")
    default_client = ApiClient(app)
    assert (await default_client.login("same@example.com")).status_code == 401
    chile = ApiClient(app)
    assert (await chile.login("same@example.com", headers={"X-Tenant-ID": "cge"})).status_code == 200
    me = await chile.get("/api/v1/auth/me", headers={"X-Tenant-ID": "default"})
    assert (await me.get_json())["tenant"]["code"] == "cge"


async def test_logout_refuses_the_old_cookie_and_csrf_token_everywhere(app: Quart) -> None:
    user = await make_user(app, role="customer", email="bye@example.com")
    api = ApiClient(app)
    login = await api.login(user.email)
    cookie = login.headers["Set-Cookie"].split(";", 1)[0]
    old_token = api.csrf_token
    assert (await api.post("/api/v1/auth/logout")).status_code == 204
    # A copy of the old cookie (another tab, a stolen one, another process) is anonymous now.
    replay = app.test_client()
    me = await replay.get("/api/v1/auth/me", headers={"Cookie": cookie})
    assert me.status_code == 401
    assert (await me.get_json())["code"] == "not_authenticated"
    unsafe = await replay.post(
        "/api/v1/auth/password",
        headers={"Cookie": cookie, "X-CSRF-Token": old_token or ""},
        json={"current_password": TEST_PASSWORD, "new_password": "a brand new secret"},
    )
    assert unsafe.status_code == 401
    again = await replay.post("/api/v1/auth/logout", headers={"Cookie": cookie, "X-CSRF-Token": old_token or ""})
    assert again.status_code == 401
    # A fresh login works as before.
    assert (await ApiClient(app).login(user.email)).status_code == 200

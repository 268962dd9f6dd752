"""Customer self-registration: proof by national ID and contract number, one generic mismatch, no double logins."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import registration_controller
from models.account_model import Contract, Customer
from models.tenant_model import Tenant
from models.user_model import User
from tests.conftest import ApiClient, make_user
from tests.factories import make_contract, make_customer

PASSWORD = "una clave bien larga"


async def _holder(session: AsyncSession, tenant: Tenant, **fields: Any) -> tuple[Customer, Contract]:
    customer = await make_customer(session, tenant, national_id_type="rut", national_id="12.345.678-5", **fields)
    contract = await make_contract(session, customer, contract_number="CTR-77")
    await session.commit()
    return customer, contract


def _body(**fields: Any) -> dict[str, Any]:
    return {
        "email": "Maria@Example.com",
        "password": PASSWORD,
        "full_name": "María Núñez",
        "national_id_type": "rut",
        "national_id": "12345678-5",
        "contract_number": "ctr-77",
        **fields,
    }


async def test_register_links_a_customer_login_then_log_in(client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    customer, contract = await _holder(session, tenant, locale="en")
    other_customer = await make_customer(session, tenant)
    await make_contract(session, other_customer)
    await session.commit()

    response = await client.post("/api/v1/auth/register", json=_body())
    assert response.status_code == 201
    body = await response.get_json()
    assert {k: body[k] for k in ("email", "role", "full_name")} == {"email": "maria@example.com", "role": "customer", "full_name": "María Núñez"}
    assert "Set-Cookie" not in response.headers  # not logged in: the client logs in next
    user = await session.scalar(select(User).where(User.id == body["id"]))
    assert user is not None and (user.customer_id, user.locale, user.role) == (customer.id, "en", "customer")

    assert (await client.login("maria@example.com", PASSWORD)).status_code == 200
    mine = await (await client.get("/api/v1/me/contracts")).get_json()
    assert [c["id"] for c in mine["items"]] == [contract.id]


async def test_every_mismatch_gives_the_same_answer(client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    await _holder(session, tenant)
    stranger = await make_customer(session, tenant, national_id_type="rut", national_id="11.111.111-1")
    await make_contract(session, stranger, contract_number="CTR-88")
    sleeper = await make_customer(session, tenant, national_id_type="cc", national_id="52123456", status="inactive")
    await make_contract(session, sleeper, contract_number="CTR-99")
    await session.commit()
    attempts = [
        _body(national_id="7.654.321-6"),  # a valid RUT that is nobody's
        _body(contract_number="CTR-404"),  # no such contract
        _body(contract_number="CTR-88"),  # someone else's contract
        _body(national_id="11.111.111-1"),  # someone else's ID with my contract
        _body(national_id_type="cc", national_id="12345678"),  # the same digits under another type
        _body(national_id_type="cc", national_id="52123456", contract_number="CTR-99"),  # an inactive customer
    ]
    answers = []
    for attempt in attempts:
        response = await client.post("/api/v1/auth/register", json=attempt)
        assert response.status_code == 422, attempt
        body = await response.get_json()
        body.pop("request_id", None)
        answers.append(body)
    assert answers[0]["code"] == "registration_mismatch"
    assert "errors" not in answers[0]
    assert all(answer == answers[0] for answer in answers)
    assert await session.scalar(select(User.id)) is None


async def test_mismatch_still_hashes_the_password(
    client: ApiClient, session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    original = registration_controller.hash_password

    async def counting(password: str, *, rounds: int = 12) -> str:
        hashed.append(password)
        return await original(password, rounds=rounds)

    monkeypatch.setattr(registration_controller, "hash_password", counting)
    response = await client.post("/api/v1/auth/register", json=_body(contract_number="CTR-404"))
    assert response.status_code == 422
    assert hashed == [PASSWORD]


async def test_invalid_national_id_names_the_field(client: ApiClient) -> None:
    response = await client.post("/api/v1/auth/register", json=_body(national_id="12.345.678-9"))
    body = await response.get_json()
    assert (response.status_code, body["code"], body["errors"][0]["field"]) == (422, "invalid_national_id", "national_id")


async def test_weak_password_and_bad_fields(client: ApiClient) -> None:
    short = await client.post("/api/v1/auth/register", json=_body(password="corta"))
    assert (short.status_code, (await short.get_json())["code"]) == (422, "password_too_short")
    long = await client.post("/api/v1/auth/register", json=_body(password="ñ" * 40))
    assert (long.status_code, (await long.get_json())["code"]) == (422, "password_too_long")
    for bad in ({"email": "nope"}, {"national_id_type": "dni"}, {"full_name": ""}, {"contract_number": ""}):
        response = await client.post("/api/v1/auth/register", json=_body(**bad))
        assert response.status_code == 422, bad


async def test_registering_twice_is_409(app: Any, client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    await _holder(session, tenant)
    assert (await client.post("/api/v1/auth/register", json=_body())).status_code == 201
    again = await client.post("/api/v1/auth/register", json=_body(email="otra@example.com"))
    assert (again.status_code, (await again.get_json())["code"]) == (409, "already_registered")
    same_email = await client.post("/api/v1/auth/register", json=_body())
    assert (same_email.status_code, (await same_email.get_json())["code"]) == (409, "already_registered")


async def test_email_of_another_login_is_409(app: Any, client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    await _holder(session, tenant)
    await make_user(app, role="operator", email="maria@example.com")
    response = await client.post("/api/v1/auth/register", json=_body())
    assert (response.status_code, (await response.get_json())["code"]) == (409, "already_registered")


async def test_register_needs_no_csrf_token_even_with_a_session(customer_client: ApiClient) -> None:
    response = await customer_client.raw.post("/api/v1/auth/register", json=_body(contract_number="CTR-404"))
    assert response.status_code == 422
    assert (await response.get_json())["code"] == "registration_mismatch"

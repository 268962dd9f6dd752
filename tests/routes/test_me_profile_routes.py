"""A customer edits its own profile; a new email takes effect only from the link mailed to that address."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.account_model import Customer
from models.notification_model import Notification
from models.user_model import User
from tests.conftest import ApiClient, make_user


async def _confirmation_token(session: AsyncSession, new_email: str) -> str:
    row = await session.scalar(
        select(Notification).where(Notification.event == "email_change", Notification.recipient == new_email)
    )
    assert row is not None, "no confirmation email queued"
    assert row.payload["new_email"] == new_email
    return parse_qs(urlsplit(row.payload["confirm_url"]).query)["confirm_email"][0]


async def test_a_customer_changes_contact_data_language_and_paper(customer_client: ApiClient, session: AsyncSession) -> None:
    before = await (await customer_client.get("/api/v1/me")).get_json()
    assert before["paperless"] is False and before["pending_email"] is None
    response = await customer_client.patch(
        "/api/v1/me", json={"phone": "+57 300 123 4567", "billing_address": "Calle 10 # 43-20, Medellín",
                            "locale": "pt", "paperless": True},
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await response.get_json()
    assert (body["phone"], body["billing_address"], body["locale"], body["paperless"]) == (
        "+57 300 123 4567", "Calle 10 # 43-20, Medellín", "pt", True
    )
    customer = await session.get(Customer, customer_client.customer_id, populate_existing=True)
    assert customer is not None and (customer.locale, customer.paperless) == ("pt", True)
    user = await session.scalar(select(User).where(User.customer_id == customer.id))
    assert user is not None and user.locale == "pt"  # its emails follow

    cleared = await customer_client.patch("/api/v1/me", json={"phone": None})
    assert (await cleared.get_json())["phone"] is None


async def test_a_new_email_counts_only_once_confirmed_from_that_address(
    app: Quart, customer_client: ApiClient, session: AsyncSession
) -> None:
    old_email = customer_client.user["email"]
    response = await customer_client.patch("/api/v1/me", json={"email": "Nueva.Direccion@Example.co"})
    assert response.status_code == 200
    body = await response.get_json()
    assert (body["email"], body["pending_email"]) == (old_email, "nueva.direccion@example.co")
    token = await _confirmation_token(session, "nueva.direccion@example.co")

    anonymous = ApiClient(app)  # the link may be opened on another device, without a session
    assert (await anonymous.post("/api/v1/me/email-confirmation", json={"token": token})).status_code == 204
    assert (await ApiClient(app).login("nueva.direccion@example.co")).status_code == 200
    assert (await ApiClient(app).login(old_email)).status_code == 401
    await session.rollback()  # end this session's read snapshot
    customer = await session.get(Customer, customer_client.customer_id, populate_existing=True)
    assert customer is not None and customer.email == "nueva.direccion@example.co"

    again = await anonymous.post("/api/v1/me/email-confirmation", json={"token": token})
    assert again.status_code == 422 and (await again.get_json())["code"] == "invalid_token"
    forged = await anonymous.post("/api/v1/me/email-confirmation", json={"token": token[:-2] + "xx"})
    assert forged.status_code == 422 and (await forged.get_json())["code"] == "invalid_token"


async def test_an_email_of_another_login_is_refused(app: Quart, customer_client: ApiClient) -> None:
    other = await make_user(app, role="operator", email="taken@example.co")
    response = await customer_client.patch("/api/v1/me", json={"email": other.email})
    assert response.status_code == 409 and (await response.get_json())["code"] == "email_taken"


async def test_only_the_customer_edits_what_is_its_own(
    client: ApiClient, operator_client: ApiClient, customer_client: ApiClient
) -> None:
    assert (await client.patch("/api/v1/me", json={"locale": "en"})).status_code == 401
    assert (await operator_client.patch("/api/v1/me", json={"locale": "en"})).status_code == 403
    assert (await operator_client.get("/api/v1/me")).status_code == 403
    for body in ({"name": "Otro Nombre"}, {"national_id": "123"}, {"email": "a@b.co, evil@evil.co"},
                 {"phone": "call me"}, {"locale": "fr"}, {"billing_address": None}):
        response = await customer_client.patch("/api/v1/me", json=body)
        assert response.status_code == 422, body
        assert (await response.get_json())["code"] == "validation_error", body


async def test_email_changes_are_rate_limited_but_other_edits_are_not(customer_client: ApiClient) -> None:
    statuses = [
        (await customer_client.patch("/api/v1/me", json={"email": f"nueva{n}@example.co"})).status_code for n in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    assert (await customer_client.patch("/api/v1/me", json={"locale": "en"})).status_code == 200

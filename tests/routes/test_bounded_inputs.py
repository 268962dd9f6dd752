"""Bounded inputs (routes.fields): money, dates, ASCII digits, single emails and safe names, through the routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.smtp_client import OutgoingEmail, SmtpClient, SmtpDeliveryError, SmtpSettings
from controllers import collection_controller
from models.billing_model import Invoice
from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.payment_builders import make_debtor
from tests.routes.test_payment_routes import DUE, new_coupon

CUSTOMER = {"name": "Juana Pérez", "national_id_type": "cc", "national_id": "1020304050", "billing_address": "Calle 1"}


async def _errors(response: Any) -> list[str]:
    assert response.status_code == 422, await response.get_data(as_text=True)
    return [e["field"] for e in (await response.get_json())["errors"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Juana\x00Pérez"}, "name"),
        ({"name": "Juana\r\nBcc: x@evil.co"}, "name"),
        ({"name": "Juana \u202egnp.exe"}, "name"),
        ({"name": "Juana \u2066Pérez\u2069"}, "name"),
        ({"billing_address": "Calle 1\nPiso 2"}, "billing_address"),
        ({"national_id": "１０２０３０４０５０"}, "national_id"),
        ({"email": "x,evil@evil.co"}, "email"),
        ({"email": "a@example.com, b@evil.co"}, "email"),
        ({"email": "a@example.com\r\nBcc: b@evil.co"}, "email"),
        ({"email": "Juana <a@example.com>"}, "email"),
    ],
)
async def test_customer_fields_refuse_unsafe_text(operator_client: ApiClient, changes: dict[str, Any], field: str) -> None:
    assert field in await _errors(await operator_client.post("/api/v1/customers", json={**CUSTOMER, **changes}))


async def test_a_plain_customer_is_still_accepted(operator_client: ApiClient) -> None:
    response = await operator_client.post("/api/v1/customers", json={**CUSTOMER, "email": "Juana@Example.com"})
    assert response.status_code == 201
    assert (await response.get_json())["email"].lower() == "juana@example.com"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/invoice-lookup?contract_number=%EF%BC%91%EF%BC%92", "/api/v1/me/transactions?from=0001-01-01"],
)
async def test_full_width_digits_and_year_one_are_refused_in_queries(customer_user_client: ApiClient, path: str) -> None:
    response = await customer_user_client.get(path)
    assert response.status_code in (400, 422)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"paid_at": "0001-01-01T00:00:00+00:00"}, "paid_at"),
        ({"paid_at": "2101-01-01T00:00:00+00:00"}, "paid_at"),
        ({"amount": "９７０００"}, "amount"),
        ({"amount": "97000.001"}, "amount"),
        ({"amount": "1e13"}, "amount"),
        ({"reference": "１２３"}, "reference"),
    ],
)
async def test_collection_fields_are_bounded(
    client: ApiClient, session: AsyncSession, tenant: Tenant, changes: dict[str, Any], field: str
) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000", "12000"), due_on=DUE)
    reference = (await new_coupon(client, debtor))["reference"]
    _key, raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco")
    payload = {"reference": reference, "amount": "97000", "paid_at": "2026-11-10T10:30:00-05:00", **changes}
    response = await client.post("/api/v1/collections", json=payload, headers={"Authorization": f"Bearer {raw}"})
    assert field in await _errors(response)


async def test_a_coupon_too_large_for_the_barcode_is_a_clear_422(client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=DUE)
    # Stored directly (an invoice line's unit price column cannot hold it): an invoice of 10^15.
    huge = Decimal(10) ** 15
    await session.execute(update(Invoice).where(Invoice.id == debtor.invoices[0].id).values(total=huge, amount_due=huge))
    await session.commit()
    response = await client.post("/api/v1/coupons", json={"contract_number": debtor.contract.contract_number})
    assert response.status_code == 422
    assert (await response.get_json())["code"] == "amount_too_large"


@pytest.mark.parametrize("recipient", ["x,evil@evil.co", "a@example.com, b@evil.co", "a@example.com\r\nBcc: b@evil.co"])
def test_the_to_header_never_holds_two_recipients(tmp_path: Any, recipient: str) -> None:
    client = SmtpClient(SmtpSettings(host=None, port=25, mail_from="no-reply@example.com", mail_dir=tmp_path))
    with pytest.raises(SmtpDeliveryError) as caught:
        client.build_message(OutgoingEmail(to=recipient, subject="Hola", text="Texto", html=None))
    assert caught.value.permanent


async def test_registration_refuses_a_bidi_name(app: Quart, client: ApiClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={
            "email": "new@example.com", "password": "a long enough secret", "full_name": "Ana \u202eanA",
            "national_id_type": "cc", "national_id": "1020304050", "contract_number": "C-1",
        },
    )
    assert "full_name" in await _errors(response)

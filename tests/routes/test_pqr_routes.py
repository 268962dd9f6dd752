"""PQR routes: the customer files and follows, the operator lists and answers, and nobody sees others' PQRs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pytest
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import holiday_controller
from domain.business_days import add_business_days
from domain.country_packs import country_pack
from models.account_model import Contract, Customer
from models.billing_model import Invoice
from models.notification_model import Notification
from models.pqr_model import Pqr
from models.tenant_model import Tenant
from tests.conftest import ApiClient, make_user
from tests.factories import make_contract, make_customer, make_customer_user, make_invoice

HOLIDAYS = frozenset(d for year in (country_pack("CO").holidays(year) for year in (2026, 2027)) for d, _ in year)
RADICADO = re.compile(r"^PQR-(\d{8})-(\d{5,})$")


@dataclass
class CustomerAccount:
    """A customer's records and a logged-in client for it."""

    customer: Customer
    contract: Contract
    invoice: Invoice
    client: ApiClient


async def customer_account(app: Quart, session: AsyncSession, tenant: Tenant) -> CustomerAccount:
    """A customer with a contract, an invoice and a logged-in login."""
    customer = await make_customer(session, tenant)
    user = await make_customer_user(session, customer)
    contract = await make_contract(session, customer)
    invoice = await make_invoice(session, contract)
    await session.commit()
    api = ApiClient(app)
    assert (await api.login(user.email)).status_code == 200
    return CustomerAccount(customer=customer, contract=contract, invoice=invoice, client=api)


@pytest.fixture
async def holidays(session: AsyncSession, tenant: Tenant) -> None:
    for year in (country_pack("CO").holidays(year) for year in (2026, 2027)):
        await holiday_controller.add_holidays(session=session, tenant_id=tenant.id, holidays=year)
    await session.commit()


@pytest.fixture
async def me(app: Quart, session: AsyncSession, tenant: Tenant, holidays: None) -> CustomerAccount:
    return await customer_account(app, session, tenant)


@pytest.fixture
async def someone_else(app: Quart, session: AsyncSession, tenant: Tenant, holidays: None) -> CustomerAccount:
    return await customer_account(app, session, tenant)


def new_pqr(**fields: object) -> dict[str, object]:
    """A valid filing body."""
    return {"type": "petition", "subject": "Revisión de lectura", "description": "La lectura parece alta.", **fields}


async def filed(api: ApiClient, **fields: object) -> dict[str, object]:
    """File a PQR and return its body."""
    response = await api.post("/api/v1/pqrs", json=new_pqr(**fields))
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await response.get_json()


async def test_a_customer_files_a_claim_the_operator_answers_and_the_customer_reads_it(
    app: Quart, session: AsyncSession, me: CustomerAccount, operator_client: ApiClient
) -> None:
    response = await me.client.post(
        "/api/v1/pqrs",
        json=new_pqr(type="claim", subject="Cobro excesivo", description="El consumo facturado no es el mío.",
                     invoice_id=me.invoice.id),
    )
    assert response.status_code == 201
    body = await response.get_json()
    match = RADICADO.match(body["filing_number"])
    assert match is not None and match.group(2) == "00001"
    filed_on = date(int(match.group(1)[:4]), int(match.group(1)[4:6]), int(match.group(1)[6:]))
    assert body["due_on"] == add_business_days(filed_on, 15, HOLIDAYS).isoformat()
    assert {k: body[k] for k in ("type", "status", "answer", "answered_at", "contract_id", "invoice_id",
                                 "customer_id", "overdue", "days_left")} == {
        "type": "claim", "status": "filed", "answer": None, "answered_at": None, "contract_id": me.contract.id,
        "invoice_id": me.invoice.id, "customer_id": me.customer.id, "overdue": False, "days_left": 15,
    }
    pqr_id = body["id"]
    assert await session.scalar(select(Invoice.disputed).where(Invoice.id == me.invoice.id)) is True

    soon = await operator_client.get("/api/v1/pqrs?due_within_days=15&status=filed")
    assert soon.status_code == 200
    assert [item["id"] for item in (await soon.get_json())["items"]] == [pqr_id]

    answered = await operator_client.patch(
        f"/api/v1/pqrs/{pqr_id}", json={"status": "answered", "answer": "Reliquidamos la factura: el consumo real es 80 kWh."}
    )
    assert answered.status_code == 200, await answered.get_data(as_text=True)
    assert (await answered.get_json())["status"] == "answered"

    seen = await me.client.get(f"/api/v1/pqrs/{pqr_id}")
    assert seen.status_code == 200
    view = await seen.get_json()
    assert view["status"] == "answered"
    assert view["answer"] == "Reliquidamos la factura: el consumo real es 80 kWh."
    assert view["answered_at"] is not None and view["filed_at"] is not None
    assert (view["overdue"], view["days_left"]) == (False, None)

    invoice_id = me.invoice.id
    await session.rollback()  # end the read snapshot taken before the requests
    assert await session.scalar(select(Invoice.disputed).where(Invoice.id == invoice_id)) is False
    events = (await session.scalars(select(Notification.event).order_by(Notification.id))).all()
    assert events == ["pqr_filed", "pqr_answered"]


async def test_an_illegal_transition_is_a_409_listing_the_allowed_ones(
    me: CustomerAccount, operator_client: ApiClient
) -> None:
    pqr_id = (await filed(me.client))["id"]
    response = await operator_client.patch(f"/api/v1/pqrs/{pqr_id}", json={"status": "closed"})
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    body = await response.get_json()
    assert (body["code"], body["current_status"], body["allowed"]) == (
        "invalid_transition", "filed", ["in_progress", "answered"]
    )


async def test_answering_without_an_answer_is_a_422(me: CustomerAccount, operator_client: ApiClient) -> None:
    pqr_id = (await filed(me.client))["id"]
    response = await operator_client.patch(f"/api/v1/pqrs/{pqr_id}", json={"status": "answered"})
    assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] == "answer_required"
    assert body["errors"][0]["field"] == "answer"


async def test_customers_see_only_their_own(
    me: CustomerAccount, someone_else: CustomerAccount, operator_client: ApiClient
) -> None:
    mine = (await filed(me.client))["id"]
    theirs = (await filed(someone_else.client))["id"]
    assert (await me.client.get(f"/api/v1/pqrs/{theirs}")).status_code == 404
    assert (await someone_else.client.get(f"/api/v1/pqrs/{mine}")).status_code == 404
    listed = await (await me.client.get("/api/v1/pqrs")).get_json()
    assert [item["id"] for item in listed["items"]] == [mine]
    everything = await (await operator_client.get("/api/v1/pqrs")).get_json()
    assert sorted(item["id"] for item in everything["items"]) == sorted([mine, theirs])
    assert (await operator_client.get(f"/api/v1/pqrs/{theirs}")).status_code == 200


async def test_a_customer_cannot_name_another_customers_invoice_or_contract(
    session: AsyncSession, me: CustomerAccount, someone_else: CustomerAccount
) -> None:
    response = await me.client.post("/api/v1/pqrs", json=new_pqr(type="claim", invoice_id=someone_else.invoice.id))
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "invoice_not_found"
    response = await me.client.post("/api/v1/pqrs", json=new_pqr(contract_id=someone_else.contract.id))
    assert response.status_code == 404
    assert await session.scalar(select(Invoice.disputed).where(Invoice.id == someone_else.invoice.id)) is False


async def test_customers_cannot_move_pqrs(me: CustomerAccount) -> None:
    pqr_id = (await filed(me.client))["id"]
    response = await me.client.patch(f"/api/v1/pqrs/{pqr_id}", json={"status": "closed"})
    assert response.status_code == 403


async def test_anonymous_requests_are_401(client: ApiClient, me: CustomerAccount) -> None:
    pqr_id = (await filed(me.client))["id"]
    assert (await client.post("/api/v1/pqrs", json=new_pqr())).status_code == 401
    assert (await client.get("/api/v1/pqrs")).status_code == 401
    assert (await client.get(f"/api/v1/pqrs/{pqr_id}")).status_code == 401
    assert (await client.patch(f"/api/v1/pqrs/{pqr_id}", json={"status": "in_progress"})).status_code == 401


async def test_a_customer_login_without_a_customer_record_gets_403(customer_user_client: ApiClient) -> None:
    response = await customer_user_client.post("/api/v1/pqrs", json=new_pqr())
    assert response.status_code == 403
    assert (await response.get_json())["code"] == "no_customer_record"
    assert (await customer_user_client.get("/api/v1/pqrs")).status_code == 403


async def test_another_tenants_operator_sees_nothing(
    app: Quart, session: AsyncSession, me: CustomerAccount
) -> None:
    pqr_id = (await filed(me.client))["id"]
    session.add(Tenant(code="otra", name="Otra E.S.P.", country="CO", currency="COP", timezone="America/Bogota",
                       gln="7709998000025"))
    await session.commit()
    operator = await make_user(app, role="operator", tenant_code="otra")
    foreign = ApiClient(app)
    assert (await foreign.login(operator.email, headers={"X-Tenant-ID": "otra"})).status_code == 200
    assert (await foreign.get(f"/api/v1/pqrs/{pqr_id}")).status_code == 404
    assert (await foreign.patch(f"/api/v1/pqrs/{pqr_id}", json={"status": "in_progress"})).status_code == 404
    assert (await (await foreign.get("/api/v1/pqrs")).get_json())["items"] == []
    # Nor can it file for a customer of the default tenant.
    response = await foreign.post("/api/v1/pqrs", json=new_pqr(customer_id=me.customer.id))
    assert response.status_code == 404


async def test_an_operator_files_at_the_counter_for_a_customer(
    me: CustomerAccount, operator_client: ApiClient
) -> None:
    missing = await operator_client.post("/api/v1/pqrs", json=new_pqr())
    assert missing.status_code == 422
    assert (await missing.get_json())["code"] == "customer_id_required"
    body = await filed(operator_client, customer_id=me.customer.id, type="complaint")
    assert body["customer_id"] == me.customer.id
    listed = await (await me.client.get("/api/v1/pqrs")).get_json()
    assert [item["id"] for item in listed["items"]] == [body["id"]]


async def test_unicode_description_up_to_5000_characters(session: AsyncSession, me: CustomerAccount) -> None:
    text = ("Ñandú pidió revisión: «cobro» 😀 " * 200)[:5000]
    body = await filed(me.client, subject="Árbol caído sobre la acometida", description=text)
    assert body["description"] == text
    stored = await session.scalar(select(Pqr.description).where(Pqr.id == body["id"]))
    assert stored == text
    too_long = await me.client.post("/api/v1/pqrs", json=new_pqr(description="a" * 5001))
    assert too_long.status_code == 422
    assert (await too_long.get_json())["errors"][0]["field"] == "description"


@pytest.mark.parametrize(
    ("field", "value"),
    [("type", "suggestion"), ("subject", ""), ("subject", "x" * 201), ("description", "   "), ("invoice_id", "abc")],
)
async def test_invalid_filings_are_422(me: CustomerAccount, field: str, value: object) -> None:
    response = await me.client.post("/api/v1/pqrs", json=new_pqr(**{field: value}))
    assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"].split(".")[0] == field


@pytest.mark.parametrize(
    "query", ["sort=subject", "due_within_days=61", "status=open", "overdue=maybe", "limit=0"]
)
async def test_invalid_list_parameters_are_422(operator_client: ApiClient, query: str) -> None:
    response = await operator_client.get(f"/api/v1/pqrs?{query}")
    assert response.status_code == 422


async def test_a_forged_cursor_is_a_400(operator_client: ApiClient) -> None:
    response = await operator_client.get("/api/v1/pqrs?cursor=bm90LWEtY3Vyc29y")
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "invalid_cursor"


async def test_list_filters_and_order_through_the_api(
    me: CustomerAccount, someone_else: CustomerAccount, operator_client: ApiClient
) -> None:
    first = (await filed(me.client, type="claim", invoice_id=me.invoice.id))["id"]
    second = (await filed(someone_else.client, type="complaint"))["id"]
    third = (await filed(me.client))["id"]
    await operator_client.patch(f"/api/v1/pqrs/{second}", json={"status": "in_progress"})

    async def ids(query: str) -> list[int]:
        response = await operator_client.get(f"/api/v1/pqrs?{query}")
        assert response.status_code == 200
        return [item["id"] for item in (await response.get_json())["items"]]

    assert await ids("sort=-filing_number") == [third, second, first]
    assert await ids("status=in_progress") == [second]
    assert await ids("type=claim") == [first]
    assert await ids(f"contract_number={me.contract.contract_number}") == [first]
    assert await ids("overdue=true") == []
    assert await ids("overdue=false&sort=filing_number") == [first, second, third]
    page = await (await operator_client.get("/api/v1/pqrs?limit=2&sort=filing_number")).get_json()
    assert [item["id"] for item in page["items"]] == [first, second]
    rest = await ids(f"limit=2&sort=filing_number&cursor={page['next_cursor']}")
    assert rest == [third]


async def test_openapi_documents_the_pqr_routes(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    collection = spec["paths"]["/api/v1/pqrs"]
    item = spec["paths"]["/api/v1/pqrs/{pqr_id}"]
    assert {"201", "401", "403", "404", "422"} <= set(collection["post"]["responses"])
    assert {"200", "400", "401", "403", "422"} <= set(collection["get"]["responses"])
    assert {"200", "401", "403", "404"} <= set(item["get"]["responses"])
    assert {"200", "401", "403", "404", "409", "422"} <= set(item["patch"]["responses"])

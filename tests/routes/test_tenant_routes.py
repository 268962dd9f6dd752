"""Tenants in three countries: created from a country pack, configured by their own admin only."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import tenant_controller
from controllers.account_common import tenant_today
from domain.business_days import add_business_days
from domain.country_packs import country_pack
from models.pqr_model import TenantHoliday
from models.tenant_model import Tenant
from tests.conftest import ApiClient, TestDatabase, make_user
from tests.test_cli import run_cli

CHILE_GLN = "7800000000009"


async def test_create_tenant_command_applies_the_chilean_pack(
    database_url: str, test_database: TestDatabase, tmp_path: Path, session: AsyncSession
) -> None:
    common = {"database_url": database_url, "schema": test_database.schema, "var_dir": tmp_path}
    code, out, err = await run_cli(
        ["create-tenant", "--code", "aguas-sur", "--name", "Aguas del Sur S.A.", "--country", "cl",
         "--gln", CHILE_GLN, "--legal-id", "76.086.428-5"],
        **common,
    )
    assert code == 0, err
    assert out.strip() == (
        "created tenant aguas-sur (CL, CLP, America/Santiago, es; PQR term 20 business days)"
    )
    tenant = await session.scalar(select(Tenant).where(Tenant.code == "aguas-sur"))
    assert tenant is not None
    assert (tenant.currency, tenant.timezone, tenant.locale, tenant.legal_id) == (
        "CLP", "America/Santiago", "es", "76.086.428-5"
    )
    year = tenant_today(tenant).year
    days = set(await session.scalars(select(TenantHoliday.day).where(TenantHoliday.tenant_id == tenant.id)))
    assert days == {d for each in (year, year + 1) for d, _ in country_pack("CL").holidays(each)}

    again, _, err = await run_cli(
        ["create-tenant", "--code", "aguas-sur", "--name", "Otra", "--country", "CL", "--gln", CHILE_GLN], **common
    )
    assert again == 1 and "tenant_code_taken" in err


async def test_create_tenant_command_refuses_bad_options_naming_them(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    common = {"database_url": database_url, "schema": test_database.schema, "var_dir": tmp_path}
    base = ["create-tenant", "--code", "energia-br", "--name", "Energia", "--country", "BR", "--gln", "7890000000000"]
    cases = [
        (["--country", "AR"], "'--country'"),
        (["--gln", "7890000000001"], "'--gln'"),
        (["--code", "Energía BR"], "'--code'"),
    ]
    for override, named in cases:
        args = list(base)
        flag = override[0]
        args[args.index(flag) + 1] = override[1]
        code, _, err = await run_cli(args, **common)
        assert code == 2, (override, err)
        assert named in err, err
    code, _, err = await run_cli([*base, "--legal-id", "11.222.333/0001-00"], **common)
    assert code == 1 and "invalid_legal_id" in err


async def test_admin_configures_its_own_tenant(app: Quart, admin_client: ApiClient, session: AsyncSession) -> None:
    response = await admin_client.patch(
        "/api/v1/tenant",
        json={"sender_name": "EPM Servicio al Cliente", "reply_to": "clientes@epm.example.co",
              "pqr_answer_business_days": 10, "channel_fee": "1500", "payment_terms_days": 20},
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await response.get_json()
    assert (body["sender_name"], body["reply_to"], body["pqr_answer_business_days"], body["channel_fee"]) == (
        "EPM Servicio al Cliente", "clientes@epm.example.co", 10, "1500"
    )
    assert body["payment_terms_days"] == 20 and body["currency"] == "COP"
    settings = await admin_client.get("/api/v1/tenant/settings")
    assert (await settings.get_json())["reply_to"] == "clientes@epm.example.co"

    cleared = await admin_client.patch("/api/v1/tenant", json={"reply_to": None})
    assert (await cleared.get_json())["reply_to"] is None
    default = await tenant_controller.default_tenant(session=session)
    await session.refresh(default)
    assert (default.reply_to, default.pqr_answer_business_days) == (None, 10)


async def test_admin_sets_the_suspension_rules(admin_client: ApiClient, session: AsyncSession) -> None:
    before = await (await admin_client.get("/api/v1/tenant/settings")).get_json()
    assert (before["suspension_after_days"], before["suspension_min_amount"], before["suspension_notice_days"],
            before["reconnection_fee"], before["reconnection_deadline_hours"]) == (60, "0", 5, "0", 24)

    response = await admin_client.patch(
        "/api/v1/tenant",
        json={"suspension_after_days": 45, "suspension_min_amount": "50000", "suspension_notice_days": 3,
              "reconnection_fee": "38500", "reconnection_deadline_hours": 48},
    )

    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await response.get_json()
    assert (body["suspension_after_days"], body["suspension_min_amount"], body["suspension_notice_days"],
            body["reconnection_fee"], body["reconnection_deadline_hours"]) == (45, "50000", 3, "38500", 48)
    default = await tenant_controller.default_tenant(session=session)
    await session.refresh(default)
    assert (default.suspension_after_days, default.reconnection_fee) == (45, 38500)
    for bad, code in (({"reconnection_fee": "10.5"}, "invalid_amount"), ({"suspension_after_days": 0}, "validation_error"),
                      ({"reconnection_deadline_hours": 0}, "validation_error")):
        refused = await admin_client.patch("/api/v1/tenant", json=bad)
        assert refused.status_code == 422 and (await refused.get_json())["code"] == code, bad


async def test_tenant_settings_are_for_admins_only(client: ApiClient, operator_client: ApiClient, customer_client: ApiClient) -> None:
    assert (await client.patch("/api/v1/tenant", json={"name": "X"})).status_code == 401
    for caller in (operator_client, customer_client):
        assert (await caller.patch("/api/v1/tenant", json={"name": "X"})).status_code == 403
        assert (await caller.get("/api/v1/tenant/settings")).status_code == 403


async def test_bad_settings_are_422_with_a_code(admin_client: ApiClient) -> None:
    cases = [
        ({"gln": "7709998000010"}, "invalid_gln"),
        ({"legal_id": "900.123.456-0"}, "invalid_legal_id"),
        ({"channel_fee": "1500.50"}, "invalid_amount"),
        ({"pqr_answer_business_days": 0}, "validation_error"),
        ({"reply_to": "a@b.co, evil@evil.co"}, "validation_error"),
        ({"name": None}, "validation_error"),
        ({"currency": "USD"}, "validation_error"),
    ]
    for body, code in cases:
        response = await admin_client.patch("/api/v1/tenant", json=body)
        assert response.status_code == 422, (body, await response.get_data(as_text=True))
        assert (await response.get_json())["code"] == code, body


async def test_an_admin_changes_only_its_own_tenant(app: Quart, session: AsyncSession) -> None:
    other = await tenant_controller.create_tenant(
        session=session, code="aguas-sur", name="Aguas del Sur S.A.", country="CL", gln=CHILE_GLN
    )
    user = await make_user(app, role="admin", tenant_code="aguas-sur")
    other_admin = ApiClient(app)
    assert (await other_admin.login(user.email, headers={"X-Tenant-ID": "aguas-sur"})).status_code == 200
    response = await other_admin.patch("/api/v1/tenant", json={"name": "Aguas del Sur SpA"})
    assert response.status_code == 200
    assert (await response.get_json())["currency"] == "CLP"
    names = dict((await session.execute(select(Tenant.code, Tenant.name))).all())
    assert names["aguas-sur"] == "Aguas del Sur SpA"
    assert names["default"] != "Aguas del Sur SpA"
    assert other.pqr_answer_business_days == 20


async def test_the_pqr_deadline_follows_the_tenants_term(
    admin_client: ApiClient, customer_client: ApiClient, session: AsyncSession
) -> None:
    await admin_client.patch("/api/v1/tenant", json={"pqr_answer_business_days": 5})
    response = await customer_client.post(
        "/api/v1/pqrs", json={"type": "petition", "subject": "Medidor", "description": "¿Cuándo cambian el medidor?"}
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    tenant = await tenant_controller.default_tenant(session=session)
    holidays = set(await session.scalars(select(TenantHoliday.day).where(TenantHoliday.tenant_id == tenant.id)))
    expected = add_business_days(tenant_today(tenant), 5, holidays)
    assert date.fromisoformat((await response.get_json())["due_on"]) == expected

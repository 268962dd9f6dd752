"""/api/v1/bank-keys: an admin creates a bank's key (shown once), lists keys by prefix and revokes one for good."""

from __future__ import annotations

from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import tenant_controller
from controllers.collection_controller import hash_api_key
from models.payment_model import BankApiKey
from tests.conftest import ApiClient, make_user

PATH = "/api/v1/bank-keys"


async def bank_call(client: ApiClient, raw_key: str) -> int:
    """A bank's authenticated read: 404 (no such file) means the key was accepted, 401 that it was not."""
    return (await client.get("/api/v1/collection-files/999999", headers={"Authorization": f"Bearer {raw_key}"})).status_code


async def test_an_admin_creates_lists_and_revokes_a_key(admin_client: ApiClient, client: ApiClient, session: AsyncSession) -> None:
    created = await admin_client.post(PATH, json={"name": "Banco de Bogotá"})
    assert created.status_code == 201, await created.get_data(as_text=True)
    assert created.headers["Cache-Control"] == "no-store"
    body = await created.get_json()
    raw = body["key"]
    assert raw.startswith("cbk_") and len(raw) > 40 and body["key_prefix"] == raw[:12]
    assert (body["name"], body["revoked_at"]) == ("Banco de Bogotá", None)
    stored = await session.scalar(select(BankApiKey).where(BankApiKey.id == body["id"]))
    assert stored is not None and stored.key_hash == hash_api_key(raw) and raw not in (stored.key_hash, stored.key_prefix)
    assert await bank_call(client, raw) == 404

    listed = await (await admin_client.get(PATH)).get_json()
    assert [k["id"] for k in listed["items"]] == [body["id"]]
    assert "key" not in listed["items"][0] and raw not in str(listed)

    revoked = await admin_client.post(f"{PATH}/{body['id']}/revoke")
    assert revoked.status_code == 200 and (await revoked.get_json())["revoked_at"] is not None
    assert await bank_call(client, raw) == 401
    again = await admin_client.post(f"{PATH}/{body['id']}/revoke")
    assert (again.status_code, (await again.get_json())["code"]) == (409, "bank_key_revoked")
    assert (await (await admin_client.get(PATH)).get_json())["items"][0]["revoked_at"] is not None


async def test_only_an_admin_of_the_keys_tenant_manages_it(
    app: Quart, admin_client: ApiClient, operator_client: ApiClient, client: ApiClient, session: AsyncSession
) -> None:
    body = await (await admin_client.post(PATH, json={"name": "Bancolombia"})).get_json()
    assert (await operator_client.get(PATH)).status_code == 403
    assert (await operator_client.post(PATH, json={"name": "Otro"})).status_code == 403
    assert (await operator_client.post(f"{PATH}/{body['id']}/revoke")).status_code == 403
    assert (await client.get(PATH)).status_code == 401
    for bad in ({"name": ""}, {"name": "x" * 101}, {}):
        assert (await admin_client.post(PATH, json=bad)).status_code == 422, bad
    assert (await admin_client.post(f"{PATH}/999999/revoke")).status_code == 404

    await tenant_controller.create_tenant(session=session, code="aguas-sur", name="Aguas del Sur S.A.", country="CL", gln="7800000000009")
    user = await make_user(app, role="admin", tenant_code="aguas-sur")
    other = ApiClient(app)
    assert (await other.login(user.email, headers={"X-Tenant-ID": "aguas-sur"})).status_code == 200
    assert (await (await other.get(PATH)).get_json())["items"] == []
    foreign = await other.post(f"{PATH}/{body['id']}/revoke")
    assert (foreign.status_code, (await foreign.get_json())["code"]) == (404, "bank_key_not_found")
    assert await bank_call(client, body["key"]) == 404

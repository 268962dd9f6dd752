"""User administration: admins list, create and change logins; disabling ends sessions; the last admin stays."""

from __future__ import annotations

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from models.tenant_model import Tenant
from tests.conftest import TEST_PASSWORD, ApiClient, make_user
from tests.factories import make_customer

OTHER = "aguas-sur"


async def test_an_admin_creates_lists_and_renames_users(app: Quart, admin_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    created = await admin_client.post(
        "/api/v1/users",
        json={"email": "Carla@Example.com", "password": TEST_PASSWORD, "role": "operator", "full_name": "Carla Ríos"},
    )
    assert created.status_code == 201, await created.get_data(as_text=True)
    carla = await created.get_json()
    assert (carla["email"], carla["role"], carla["full_name"], carla["disabled"], carla["customer_id"]) == (
        "carla@example.com", "operator", "Carla Ríos", False, None,
    )
    assert "password_hash" not in carla
    # The new login works.
    assert (await ApiClient(app).login("carla@example.com")).status_code == 200

    taken = await admin_client.post(
        "/api/v1/users", json={"email": "carla@example.com", "password": TEST_PASSWORD, "role": "operator", "full_name": "X"}
    )
    assert taken.status_code == 409 and (await taken.get_json())["code"] == "email_taken"
    bad_email = await admin_client.post(
        "/api/v1/users", json={"email": "notanemail", "password": TEST_PASSWORD, "role": "operator", "full_name": "X"}
    )
    assert bad_email.status_code == 422
    weak = await admin_client.post(
        "/api/v1/users", json={"email": "w@example.com", "password": "short", "role": "operator", "full_name": "X"}
    )
    assert weak.status_code == 422

    # A customer login needs a customer record of this tenant, and only one login per customer.
    unlinked = await admin_client.post(
        "/api/v1/users", json={"email": "c@example.com", "password": TEST_PASSWORD, "role": "customer", "full_name": "C"}
    )
    assert unlinked.status_code == 422 and (await unlinked.get_json())["code"] == "customer_required"
    tenant_id = tenant.id
    await session.rollback()  # end the read snapshot taken by the `tenant` fixture before writing
    customer = await make_customer(session, tenant_id)
    await session.commit()
    linked_body = {"email": "c@example.com", "password": TEST_PASSWORD, "role": "customer", "full_name": "C", "customer_id": customer.id}
    linked = await admin_client.post("/api/v1/users", json=linked_body)
    assert linked.status_code == 201 and (await linked.get_json())["customer_id"] == customer.id
    second = await admin_client.post("/api/v1/users", json=dict(linked_body, email="c2@example.com"))
    assert second.status_code == 409 and (await second.get_json())["code"] == "already_registered"
    staff_with_customer = await admin_client.post("/api/v1/users", json=dict(linked_body, email="s@example.com", role="operator"))
    assert staff_with_customer.status_code == 422

    operators = await (await admin_client.get("/api/v1/users?role=operator")).get_json()
    assert [u["email"] for u in operators["items"]] == ["carla@example.com"]
    everyone = await (await admin_client.get("/api/v1/users?limit=2")).get_json()
    assert len(everyone["items"]) == 2 and everyone["next_cursor"] is not None
    rest = await (await admin_client.get(f"/api/v1/users?limit=2&cursor={everyone['next_cursor']}")).get_json()
    assert [u["role"] for u in everyone["items"] + rest["items"]] == ["admin", "operator", "customer"]

    renamed = await admin_client.patch(f"/api/v1/users/{carla['id']}", json={"full_name": "Carla Ríos Mora", "role": "admin"})
    assert renamed.status_code == 200
    assert ((await renamed.get_json())["full_name"], (await renamed.get_json())["role"]) == ("Carla Ríos Mora", "admin")
    to_customer = await admin_client.patch(f"/api/v1/users/{carla['id']}", json={"role": "customer"})
    assert to_customer.status_code == 422
    null_name = await admin_client.patch(f"/api/v1/users/{carla['id']}", json={"full_name": None})
    assert null_name.status_code == 422


async def test_disabling_a_user_ends_its_sessions_at_once(app: Quart, admin_client: ApiClient) -> None:
    operator = await make_user(app, role="operator")
    api = ApiClient(app)
    assert (await api.login(operator.email)).status_code == 200
    assert (await api.get("/api/v1/auth/me")).status_code == 200

    disabled = await admin_client.patch(f"/api/v1/users/{operator.id}", json={"disabled": True})
    assert disabled.status_code == 200 and (await disabled.get_json())["disabled"] is True
    assert (await api.get("/api/v1/auth/me")).status_code == 401
    assert (await ApiClient(app).login(operator.email)).status_code == 401
    listed = await (await admin_client.get("/api/v1/users?disabled=true")).get_json()
    assert [u["id"] for u in listed["items"]] == [operator.id]

    enabled = await admin_client.patch(f"/api/v1/users/{operator.id}", json={"disabled": False})
    assert (await enabled.get_json())["disabled"] is False
    assert (await ApiClient(app).login(operator.email)).status_code == 200
    # The old session stays ended.
    assert (await api.get("/api/v1/auth/me")).status_code == 401


async def test_the_last_active_admin_cannot_be_disabled_or_demoted(app: Quart, admin_client: ApiClient) -> None:
    me = admin_client.user["id"]  # type: ignore[index]
    for change in ({"disabled": True}, {"role": "operator"}):
        refused = await admin_client.patch(f"/api/v1/users/{me}", json=change)
        assert refused.status_code == 409 and (await refused.get_json())["code"] == "last_admin", change
    assert (await admin_client.get("/api/v1/auth/me")).status_code == 200

    other = await make_user(app, role="admin")
    # With a second active admin, the first may step down; then the second is the last one.
    assert (await admin_client.patch(f"/api/v1/users/{other.id}", json={"role": "operator"})).status_code == 200
    assert (await admin_client.patch(f"/api/v1/users/{me}", json={"role": "operator"})).status_code == 409
    assert (await admin_client.patch(f"/api/v1/users/{other.id}", json={"role": "admin"})).status_code == 200
    assert (await admin_client.patch(f"/api/v1/users/{me}", json={"disabled": True})).status_code == 200
    assert (await admin_client.get("/api/v1/users")).status_code == 401


async def test_only_admins_of_the_tenant_reach_users(
    app: Quart, session: AsyncSession, admin_client: ApiClient, operator_client: ApiClient, customer_client: ApiClient, client: ApiClient
) -> None:
    target = await make_user(app, role="operator")
    for api, status in ((operator_client, 403), (customer_client, 403), (client, 401)):
        assert (await api.get("/api/v1/users")).status_code == status
        assert (await api.get(f"/api/v1/users/{target.id}")).status_code == status
        assert (await api.patch(f"/api/v1/users/{target.id}", json={"disabled": True})).status_code == status
        body = {"email": "x@example.com", "password": TEST_PASSWORD, "role": "admin", "full_name": "X"}
        assert (await api.post("/api/v1/users", json=body)).status_code == status

    await session.rollback()
    session.add(Tenant(code=OTHER, name="Aguas del Sur S.A.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000001"))
    await session.commit()
    other_admin = await make_user(app, role="admin", tenant_code=OTHER)
    other = ApiClient(app)
    assert (await other.login(other_admin.email, headers={"X-Tenant-ID": OTHER})).status_code == 200
    assert (await other.get(f"/api/v1/users/{target.id}")).status_code == 404
    assert (await other.patch(f"/api/v1/users/{target.id}", json={"disabled": True})).status_code == 404
    assert [u["id"] for u in (await (await other.get("/api/v1/users")).get_json())["items"]] == [other_admin.id]
    assert (await admin_client.get(f"/api/v1/users/{target.id}")).status_code == 200


async def test_openapi_documents_the_user_routes(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/users"])
    assert {"get", "patch"} <= set(spec["paths"]["/api/v1/users/{user_id}"])
    assert "409" in spec["paths"]["/api/v1/users/{user_id}"]["patch"]["responses"]

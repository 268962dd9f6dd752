"""Customer CRUD through the API: national IDs, filters, ordering, partial updates, deletes and paging."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from quart import Quart
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.account_model import Customer
from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.factories import make_contract, make_customer, make_customer_user

RUT = {"name": "Ñandú Pérez", "national_id_type": "rut", "national_id": "12.345.678-5", "email": "Nandu@Example.com"}


async def _create(client: ApiClient, **fields: Any) -> Any:
    return await client.post("/api/v1/customers", json={**RUT, **fields})


async def test_create_normalises_the_national_id(operator_client: ApiClient) -> None:
    response = await _create(operator_client, phone="+56 9 1234 5678", billing_address="Av. Providencia 1234")
    assert response.status_code == 201
    body = await response.get_json()
    assert body["national_id"] == "123456785"
    assert body["national_id_display"] == "12.345.678-5"
    assert (body["name"], body["email"], body["status"], body["locale"]) == ("Ñandú Pérez", "nandu@example.com", "active", "es")
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    fetched = await operator_client.get(f"/api/v1/customers/{body['id']}")
    assert (await fetched.get_json()) == body


async def test_invalid_rut_is_422_naming_the_field(operator_client: ApiClient) -> None:
    response = await _create(operator_client, national_id="12.345.678-9")
    assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] == "invalid_national_id"
    assert body["errors"][0]["field"] == "national_id"
    assert response.content_type == "application/problem+json"


async def test_bad_fields_are_422(operator_client: ApiClient) -> None:
    for bad in ({"national_id_type": "passport"}, {"name": ""}, {"email": "nope"}, {"phone": "call me"}, {"status": "x"}):
        response = await _create(operator_client, **bad)
        assert response.status_code == 422, bad
        assert (await response.get_json())["errors"][0]["field"] == next(iter(bad))


async def test_duplicate_national_id_is_409(operator_client: ApiClient) -> None:
    assert (await _create(operator_client)).status_code == 201
    again = await _create(operator_client, national_id="12345678-5", name="Otro")
    assert again.status_code == 409
    body = await again.get_json()
    assert body["code"] == "national_id_exists"
    assert body["errors"][0]["field"] == "national_id"


async def test_same_number_under_another_type_is_a_different_customer(operator_client: ApiClient) -> None:
    assert (await _create(operator_client, national_id_type="cc", national_id="12345678")).status_code == 201
    assert (await _create(operator_client, national_id_type="nit", national_id="800.197.268-4")).status_code == 201


async def test_filters(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    nunez = await make_customer(session, tenant, name="María Núñez", national_id_type="rut", national_id="12345678-5")
    await make_customer(session, tenant, name="Carlos Núñez", status="inactive")
    await make_customer(session, tenant, name="100% Gómez_")
    await session.commit()

    async def names(query: str) -> list[str]:
        response = await operator_client.get(f"/api/v1/customers?{query}")
        assert response.status_code == 200, await response.get_data(as_text=True)
        return [c["name"] for c in (await response.get_json())["items"]]

    assert await names("name=n%C3%BA%C3%B1ez") == ["Carlos Núñez", "María Núñez"]
    assert await names("name=MAR%C3%8DA") == ["María Núñez"]
    assert await names("name=MAR") == ["María Núñez"]
    assert await names("name=100%25") == ["100% Gómez_"]
    assert await names("name=0%25%20G") == ["100% Gómez_"]
    assert await names("name=_") == ["100% Gómez_"]
    assert await names("name=n%C3%BA%C3%B1ez&status=inactive") == ["Carlos Núñez"]
    assert await names("national_id_type=rut&national_id=12.345.678-5") == ["María Núñez"]
    assert await names("national_id=12345678-5") == ["María Núñez"]
    assert await names(f"national_id={nunez.national_id}") == ["María Núñez"]
    assert await names("national_id=999") == []
    bad = await operator_client.get("/api/v1/customers?national_id_type=rut&national_id=12.345.678-9")
    assert bad.status_code == 422
    assert (await bad.get_json())["code"] == "invalid_national_id"


async def test_explicit_order_and_its_whitelist(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    # Unaccented first letters: where accents sort depends on the database's collation.
    for name in ("Beatriz", "Andrés", "Camilo", "Beatriz"):
        await make_customer(session, tenant, name=name)
    await session.commit()
    response = await operator_client.get("/api/v1/customers?order=-name")
    items = (await response.get_json())["items"]
    assert [c["name"] for c in items] == ["Camilo", "Beatriz", "Beatriz", "Andrés"]
    assert items[1]["id"] > items[2]["id"]  # ties broken by id, in the same direction
    by_created = await operator_client.get("/api/v1/customers?order=created_at")
    ids = [c["id"] for c in (await by_created.get_json())["items"]]
    assert ids == sorted(ids)
    bad = await operator_client.get("/api/v1/customers?order=password_hash")
    assert bad.status_code == 422
    assert (await bad.get_json())["errors"][0]["field"] == "order"


async def test_cursor_of_another_order_is_400(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    for _ in range(3):
        await make_customer(session, tenant)
    await session.commit()
    first = await (await operator_client.get("/api/v1/customers?order=name&limit=1")).get_json()
    response = await operator_client.get(f"/api/v1/customers?order=created_at&limit=1&cursor={first['next_cursor']}")
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "invalid_cursor"
    garbage = await operator_client.get("/api/v1/customers?cursor=not-a-cursor")
    assert garbage.status_code == 400


async def test_patch_changes_only_what_was_sent(operator_client: ApiClient) -> None:
    created = await (await _create(operator_client, phone="3001234567")).get_json()
    response = await operator_client.patch(f"/api/v1/customers/{created['id']}", json={"billing_address": "Calle 5", "phone": None})
    assert response.status_code == 200
    body = await response.get_json()
    assert (body["billing_address"], body["phone"], body["name"], body["email"]) == ("Calle 5", None, RUT["name"], "nandu@example.com")
    assert body["updated_at"] >= created["updated_at"]


async def test_patch_refuses_null_for_required_fields(operator_client: ApiClient) -> None:
    created = await (await _create(operator_client)).get_json()
    response = await operator_client.patch(f"/api/v1/customers/{created['id']}", json={"name": None})
    assert response.status_code == 422
    assert (await response.get_json())["errors"][0]["field"] == "name"


async def test_patch_revalidates_the_national_id(operator_client: ApiClient) -> None:
    created = await (await _create(operator_client)).get_json()
    other = await (await _create(operator_client, national_id="11.111.111-1", name="Otra")).get_json()
    url = f"/api/v1/customers/{created['id']}"
    bad = await operator_client.patch(url, json={"national_id": "11.111.111-2"})
    assert (bad.status_code, (await bad.get_json())["code"]) == (422, "invalid_national_id")
    wrong_type = await operator_client.patch(url, json={"national_id_type": "cpf"})
    assert (wrong_type.status_code, (await wrong_type.get_json())["code"]) == (422, "invalid_national_id")
    taken = await operator_client.patch(url, json={"national_id": other["national_id_display"]})
    assert (taken.status_code, (await taken.get_json())["code"]) == (409, "national_id_exists")
    ok = await operator_client.patch(url, json={"national_id_type": "cc", "national_id": "1.020.304.050"})
    assert ok.status_code == 200
    body = await ok.get_json()
    assert (body["national_id_type"], body["national_id"], body["national_id_display"]) == ("cc", "1020304050", "1.020.304.050")


async def test_delete_only_without_dependents(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    with_contract = await make_customer(session, tenant)
    await make_contract(session, with_contract)
    with_login = await make_customer(session, tenant)
    await make_customer_user(session, with_login)
    alone = await make_customer(session, tenant)
    await session.commit()
    blocked = await operator_client.delete(f"/api/v1/customers/{with_contract.id}")
    assert blocked.status_code == 409
    body = await blocked.get_json()
    assert (body["code"], body["dependents"]) == ("has_dependents", ["contracts"])
    login = await operator_client.delete(f"/api/v1/customers/{with_login.id}")
    assert (await login.get_json())["dependents"] == ["users"]
    assert (await operator_client.delete(f"/api/v1/customers/{alone.id}")).status_code == 204
    assert (await operator_client.get(f"/api/v1/customers/{alone.id}")).status_code == 404


async def test_unknown_ids_are_404(operator_client: ApiClient) -> None:
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"name": "X"}} if method == "patch" else {}
        response = await getattr(operator_client, method)("/api/v1/customers/999999", **kwargs)
        assert response.status_code == 404, method
        assert (await response.get_json())["code"] == "not_found"


async def test_customers_and_anonymous_callers_are_kept_out(customer_client: ApiClient, client: ApiClient) -> None:
    requests = [
        ("get", "/api/v1/customers", {}),
        ("post", "/api/v1/customers", {"json": RUT}),
        ("get", f"/api/v1/customers/{customer_client.customer_id}", {}),  # type: ignore[attr-defined]
        ("patch", f"/api/v1/customers/{customer_client.customer_id}", {"json": {"name": "X"}}),  # type: ignore[attr-defined]
        ("delete", f"/api/v1/customers/{customer_client.customer_id}", {}),  # type: ignore[attr-defined]
    ]
    for method, path, kwargs in requests:
        forbidden = await getattr(customer_client, method)(path, **kwargs)
        assert forbidden.status_code == 403, (method, path)
        anonymous = await getattr(client, method)(path, **kwargs)
        assert anonymous.status_code == 401, (method, path)


async def test_pages_through_250_customers_in_a_stable_order(
    app: Quart, operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    # Many equal names, so the id tie-breaker decides the order across page boundaries.
    rows = [
        {
            "tenant_id": tenant.id,
            "name": f"Cliente {i % 7}",
            "national_id_type": "cc",
            "national_id": f"{20_000_000 + i}",
            "national_id_display": f"{20_000_000 + i}",
            "billing_address": "",
            "locale": "es",
            "status": "active",
        }
        for i in range(250)
    ]
    await session.execute(insert(Customer), rows)
    await session.commit()
    for order, key in (("name", lambda c: (c["name"], c["id"])), ("-name", lambda c: (c["name"], c["id"]))):
        seen: list[dict[str, Any]] = []
        cursor = None
        pages = 0
        while True:
            query = f"order={order}&limit=100" + (f"&cursor={cursor}" if cursor else "")
            body = await (await operator_client.get(f"/api/v1/customers?{query}")).get_json()
            seen += body["items"]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        ids = [c["id"] for c in seen]
        assert len(ids) == len(set(ids)) == 250
        assert seen == sorted(seen, key=key, reverse=order.startswith("-"))

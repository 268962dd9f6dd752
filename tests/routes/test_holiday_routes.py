"""/api/v1/tenant/holidays: anyone reads a year's holidays; an admin adds, removes and loads them; tenants stay apart."""

from __future__ import annotations

from datetime import date

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import tenant_controller
from domain.country_packs import country_pack
from tests.conftest import ApiClient, make_user

PATH = "/api/v1/tenant/holidays"
YEAR = 2031  # a year nothing seeds, so every row here is this test's


async def test_an_admin_loads_a_year_adds_and_removes_a_day_and_anyone_reads_them(
    admin_client: ApiClient, client: ApiClient
) -> None:
    expected = dict(country_pack("CO").holidays(YEAR))
    loaded = await admin_client.post(f"{PATH}/load", json={"year": YEAR})
    assert loaded.status_code == 200, await loaded.get_data(as_text=True)
    assert await loaded.get_json() == {"year": YEAR, "added": len(expected)}
    assert await (await admin_client.post(f"{PATH}/load", json={"year": YEAR})).get_json() == {"year": YEAR, "added": 0}

    local = await admin_client.post(PATH, json={"day": f"{YEAR}-03-11", "name": "Aniversario del municipio"})
    assert local.status_code == 201 and await local.get_json() == {"day": f"{YEAR}-03-11", "name": "Aniversario del municipio"}
    twice = await admin_client.post(PATH, json={"day": f"{YEAR}-03-11", "name": "Otra vez"})
    assert (twice.status_code, (await twice.get_json())["code"]) == (409, "holiday_exists")

    listed = await (await client.get(PATH, query_string={"year": YEAR})).get_json()
    assert listed["year"] == YEAR
    assert [(h["day"], h["name"]) for h in listed["items"]] == sorted(
        [(d.isoformat(), n) for d, n in expected.items()] + [(f"{YEAR}-03-11", "Aniversario del municipio")]
    )

    new_year = f"{YEAR}-01-01"
    assert date.fromisoformat(new_year) in expected
    assert (await admin_client.delete(f"{PATH}/{new_year}")).status_code == 204
    gone = await admin_client.delete(f"{PATH}/{new_year}")
    assert (gone.status_code, (await gone.get_json())["code"]) == (404, "holiday_not_found")
    after = await (await client.get(PATH, query_string={"year": YEAR})).get_json()
    assert new_year not in {h["day"] for h in after["items"]} and len(after["items"]) == len(expected)


async def test_only_admins_write_bad_input_is_a_clear_422_and_tenants_stay_apart(
    app: Quart, admin_client: ApiClient, operator_client: ApiClient, client: ApiClient, session: AsyncSession
) -> None:
    body = {"day": f"{YEAR}-05-05", "name": "Día cívico"}
    assert (await client.post(PATH, json=body)).status_code in (401, 403)
    assert (await operator_client.post(PATH, json=body)).status_code == 403
    assert (await operator_client.post(f"{PATH}/load", json={"year": YEAR})).status_code == 403
    assert (await operator_client.delete(f"{PATH}/{YEAR}-01-01")).status_code == 403

    for bad in ({"day": "2031-02-30", "name": "x"}, {"day": f"{YEAR}-05-05", "name": ""}, {"day": "1900-01-01", "name": "x"}):
        response = await admin_client.post(PATH, json=bad)
        assert response.status_code == 422, bad
    assert (await admin_client.post(f"{PATH}/load", json={"year": 1800})).status_code == 422
    bad_day = await admin_client.delete(f"{PATH}/mañana")
    assert bad_day.status_code == 422 and (await bad_day.get_json())["errors"][0]["field"] == "day"
    assert (await client.get(PATH, query_string={"year": 3000})).status_code == 422

    assert (await admin_client.post(PATH, json=body)).status_code == 201
    await tenant_controller.create_tenant(session=session, code="aguas-sur", name="Aguas del Sur S.A.", country="CL", gln="7800000000009")
    user = await make_user(app, role="admin", tenant_code="aguas-sur")
    other = ApiClient(app)
    assert (await other.login(user.email, headers={"X-Tenant-ID": "aguas-sur"})).status_code == 200
    theirs = await (await other.get(PATH, query_string={"year": YEAR})).get_json()
    assert f"{YEAR}-05-05" not in {h["day"] for h in theirs["items"]}
    assert (await other.delete(f"{PATH}/{YEAR}-05-05")).status_code == 404
    ours = await (await client.get(PATH, query_string={"year": YEAR})).get_json()
    assert ours["items"] == [{"day": f"{YEAR}-05-05", "name": "Día cívico"}]

"""Tariff routes: admin-only CRUD, field errors from the calculator's rules, decimals as strings."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.billing_model import Tariff
from tests.conftest import ApiClient

WATER = {
    "service": "water",
    "effective_from": "2026-01-01",
    "currency": "COP",
    "name": "Acueducto 2026",
    "fixed_charges": [{"name": "Cargo fijo", "amount": "12450.30"}],
    "blocks": [{"up_to": "11", "unit_price": "3150.40"}, {"up_to": None, "unit_price": "4410.56"}],
    "stratum_adjustments": {
        "1": {"percent": "-50", "applies_to": "subsistence"},
        "5": {"percent": "20", "applies_to": "consumption"},
    },
    "taxes": [{"name": "IVA", "rate": "19", "applies_to": ["fixed"]}],
    "late_fee_monthly_rate": "2",
    "rounding_increment": "10",
}


def tariff(**changes: Any) -> dict[str, Any]:
    """The water tariff body with some fields changed."""
    return {**WATER, **changes}


async def test_an_admin_creates_reads_lists_changes_and_deletes_a_tariff(
    admin_client: ApiClient, session: AsyncSession
) -> None:
    created = await admin_client.post("/api/v1/tariffs", json=tariff())
    assert created.status_code == 201, await created.get_data(as_text=True)
    body = await created.get_json()
    assert {k: body[k] for k in WATER} == WATER
    assert body["unit"] == "m3"
    stored = await session.scalar(select(Tariff).where(Tariff.id == body["id"]))
    assert stored is not None
    # Decimals live in the JSON documents as strings, never floats.
    assert stored.blocks == [{"up_to": "11", "unit_price": "3150.40"}, {"up_to": None, "unit_price": "4410.56"}]
    assert stored.stratum_adjustments["1"] == {"percent": "-50", "applies_to": "subsistence"}

    fetched = await admin_client.get(f"/api/v1/tariffs/{body['id']}")
    assert fetched.status_code == 200 and (await fetched.get_json())["blocks"] == WATER["blocks"]

    await admin_client.post("/api/v1/tariffs", json=tariff(effective_from="2026-07-01"))
    await admin_client.post("/api/v1/tariffs", json=tariff(service="gas", blocks=[{"up_to": None, "unit_price": "3420.15"}]))
    listed = await (await admin_client.get("/api/v1/tariffs?service=water")).get_json()
    assert [(t["service"], t["effective_from"]) for t in listed["items"]] == [
        ("water", "2026-07-01"), ("water", "2026-01-01")
    ]
    everything = await (await admin_client.get("/api/v1/tariffs?limit=2")).get_json()
    assert [t["service"] for t in everything["items"]] == ["gas", "water"] and everything["next_cursor"]

    patched = await admin_client.patch(
        f"/api/v1/tariffs/{body['id']}", json={"late_fee_monthly_rate": "1.5", "rounding_increment": None}
    )
    assert patched.status_code == 200
    assert {k: (await patched.get_json())[k] for k in ("late_fee_monthly_rate", "rounding_increment", "name")} == {
        "late_fee_monthly_rate": "1.5", "rounding_increment": None, "name": "Acueducto 2026"
    }

    deleted = await admin_client.delete(f"/api/v1/tariffs/{body['id']}")
    assert deleted.status_code == 204
    assert (await admin_client.get(f"/api/v1/tariffs/{body['id']}")).status_code == 404


async def test_an_invalid_tariff_names_every_field_at_fault(admin_client: ApiClient) -> None:
    response = await admin_client.post(
        "/api/v1/tariffs",
        json=tariff(
            currency="CLP",
            blocks=[
                {"up_to": "20", "unit_price": "100"},
                {"up_to": "10", "unit_price": "-5"},
                {"up_to": None, "unit_price": "100"},
            ],
            taxes=[{"name": "IVA", "rate": "119", "applies_to": ["consumption"]}],
        ),
    )
    assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] == "invalid_tariff"
    assert {e["field"]: e["message"] for e in body["errors"]} == {
        "currency": "must be the tenant's currency COP",
        "blocks[1].up_to": "must be greater than blocks[0].up_to",
        "blocks[1].unit_price": "must not be negative",
        "taxes[0].rate": "must be between 0 and 100",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"blocks": [{"up_to": "20", "unit_price": "1"}, {"up_to": "20", "unit_price": "1"}]}, "blocks[1].up_to"),
        ({"blocks": [{"up_to": None, "unit_price": "-0.01"}]}, "blocks[0].unit_price"),
        ({"fixed_charges": [{"name": "Cargo", "amount": "-1"}]}, "fixed_charges[0].amount"),
        ({"taxes": [{"name": "IVA", "rate": "100.01", "applies_to": ["fixed"]}]}, "taxes[0].rate"),
        ({"taxes": [{"name": "IVA", "rate": "19", "applies_to": ["tax"]}]}, "taxes[0].applies_to[0]"),
        ({"late_fee_monthly_rate": "101"}, "late_fee_monthly_rate"),
        ({"stratum_adjustments": {"2": {"percent": "-120", "applies_to": "subsistence"}}}, "stratum_adjustments[2].percent"),
        ({"currency": "BRL"}, "currency"),
        ({"fixed_charges": [{"name": "Cargo", "amount": "1e30"}]}, "fixed_charges[0].amount"),
        ({"blocks": [{"up_to": None, "unit_price": "1e-12"}]}, "blocks[0].unit_price"),
        ({"blocks": [{"up_to": None, "unit_price": "1e30"}]}, "blocks[0].unit_price"),
        ({"blocks": [{"up_to": "11", "unit_price": "1"}, {"up_to": "40", "unit_price": "2"}]}, "blocks[1].up_to"),
        ({"effective_from": "0001-01-01"}, "effective_from"),
        ({"effective_from": "2101-01-01"}, "effective_from"),
        ({"fixed_charges": [{"name": "Cargo", "amount": "１２"}]}, "fixed_charges.0.amount"),
        ({"name": "Tarifa\u202egnp.exe"}, "name"),
        ({"fixed_charges": [{"name": "Cargo\u0000", "amount": "1"}]}, "fixed_charges.0.name"),
    ],
)
async def test_each_rule_is_a_422_on_its_field(admin_client: ApiClient, changes: dict[str, Any], field: str) -> None:
    response = await admin_client.post("/api/v1/tariffs", json=tariff(**changes))
    assert response.status_code == 422
    assert field in [e["field"] for e in (await response.get_json())["errors"]]


async def test_a_patch_that_breaks_the_tariff_is_refused_and_changes_nothing(admin_client: ApiClient) -> None:
    created = await (await admin_client.post("/api/v1/tariffs", json=tariff())).get_json()
    response = await admin_client.patch(
        f"/api/v1/tariffs/{created['id']}", json={"blocks": [{"up_to": "5", "unit_price": "1"}, {"up_to": "4", "unit_price": "1"}]}
    )
    assert response.status_code == 422
    assert (await (await admin_client.get(f"/api/v1/tariffs/{created['id']}")).get_json())["blocks"] == WATER["blocks"]


async def test_a_second_version_on_the_same_date_is_a_409(admin_client: ApiClient) -> None:
    assert (await admin_client.post("/api/v1/tariffs", json=tariff())).status_code == 201
    response = await admin_client.post("/api/v1/tariffs", json=tariff(name="again"))
    assert response.status_code == 409
    assert (await response.get_json())["code"] == "tariff_exists"


async def test_a_malformed_body_is_a_validation_error_not_a_500(admin_client: ApiClient) -> None:
    response = await admin_client.post("/api/v1/tariffs", json=tariff(blocks=[{"unit_price": "abc"}], service="steam"))
    assert response.status_code == 422
    fields = {e["field"] for e in (await response.get_json())["errors"]}
    assert {"service", "blocks.0.unit_price", "blocks.0.up_to"} <= fields


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/tariffs"), ("POST", "/api/v1/tariffs"), ("GET", "/api/v1/tariffs/1"),
     ("PATCH", "/api/v1/tariffs/1"), ("DELETE", "/api/v1/tariffs/1")],
)
async def test_tariffs_are_for_admins_only(
    operator_client: ApiClient, client: ApiClient, method: str, path: str
) -> None:
    body = tariff() if method in {"POST", "PATCH"} else None
    forbidden = await operator_client.open(method, path, json=body)
    assert forbidden.status_code == 403
    assert (await forbidden.get_json())["code"] == "forbidden"
    anonymous = await client.open(method, path, json=body)
    assert anonymous.status_code in {401, 403}  # anonymous unsafe requests may fail CSRF first

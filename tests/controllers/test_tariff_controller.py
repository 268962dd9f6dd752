"""Tariff versions: the version in force, and versions that billed something stay as they are."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import tariff_controller
from controllers.errors import Conflict
from models.tenant_model import Tenant
from tests.billing_builders import make_tariff
from tests.factories import make_contract, make_customer, make_invoice


async def test_the_version_in_force_is_the_latest_started_on_or_before_the_date(
    session: AsyncSession, tenant: Tenant
) -> None:
    old = await make_tariff(session, tenant, "water", effective_from=date(2025, 1, 1))
    new = await make_tariff(session, tenant, "water", effective_from=date(2026, 7, 1))
    await make_tariff(session, tenant, "water", effective_from=date(2026, 12, 1))
    gas = await make_tariff(session, tenant, "gas", effective_from=date(2026, 6, 30))

    def ids(found: dict) -> dict[str, int]:
        return {service: tariff.id for service, tariff in found.items()}

    assert ids(await tariff_controller.tariffs_in_force(session=session, tenant_id=tenant.id, on=date(2026, 6, 30))) == {
        "water": old.id, "gas": gas.id
    }
    assert ids(await tariff_controller.tariffs_in_force(session=session, tenant_id=tenant.id, on=date(2026, 7, 1))) == {
        "water": new.id, "gas": gas.id
    }
    assert await tariff_controller.tariffs_in_force(session=session, tenant_id=tenant.id, on=date(2024, 12, 31)) == {}


async def test_a_version_that_billed_invoices_can_be_neither_changed_nor_deleted(
    session: AsyncSession, tenant: Tenant
) -> None:
    tariff = await make_tariff(session, tenant, "electricity")
    contract = await make_contract(session, await make_customer(session, tenant))
    await make_invoice(session, contract, tariff_id=tariff.id, number="T-1")
    await session.commit()

    with pytest.raises(Conflict) as changed:
        await tariff_controller.update_tariff(
            session=session, tenant=tenant, tariff_id=tariff.id, changes={"name": "nuevo"}
        )
    with pytest.raises(Conflict) as deleted:
        await tariff_controller.delete_tariff(session=session, tenant=tenant, tariff_id=tariff.id)
    assert changed.value.code == deleted.value.code == "tariff_in_use"

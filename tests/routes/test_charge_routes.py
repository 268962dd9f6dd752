"""One-off charges and credits: applied once by the contract's next bill, taxed by the tariff's rules,
a credit never making an invoice negative; and billing one contract on demand with the run's own code."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import billing_run_controller
from controllers.billing_run_controller import run_period
from domain.billing_calculator import Block, TaxRule
from domain.billing_calculator import Tariff as CalculatorTariff
from domain.charges import PendingCharge
from models.account_model import Contract
from models.billing_model import ContractCharge, Invoice
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import ApiClient, make_user
from tests.factories import make_invoice

# 1000 COP per kWh, no fixed charge, no stratum adjustment, no rounding; VAT 19 % on adjustments only.
TAXED_ADJUSTMENTS = CalculatorTariff(
    currency="COP",
    fixed_charges=(),
    blocks=(Block(None, Decimal(1000)),),
    stratum_adjustments={},
    taxes=(TaxRule("IVA 19%", Decimal(19), ("adjustment",)),),
    late_fee_monthly_rate=Decimal(0),
    rounding_increment=None,
)
OTHER = "aguas-sur"


async def _setup(session: AsyncSession, tenant: Tenant, count: int = 1, **readings: Any) -> list[int]:
    await make_tariff(session, tenant, "electricity", tariff=TAXED_ADJUSTMENTS)
    ids = []
    for _ in range(count):
        metered = await make_metered_contract(
            session, tenant, readings=readings or {"2026-10": (100, 100), "2026-11": (200, 100)}
        )
        ids.append(metered.contract.id)
    await session.commit()
    return ids


async def _charge(client: ApiClient, contract_id: int, description: str, amount: str, taxable: bool) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/contracts/{contract_id}/charges",
        json={"description": description, "amount": amount, "taxable": taxable},
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await response.get_json()


async def _invoice(client: ApiClient, session: AsyncSession, contract_id: int, period: str) -> dict[str, Any]:
    invoice_id = await session.scalar(
        select(Invoice.id).where(Invoice.contract_id == contract_id, Invoice.period == period)
    )
    assert invoice_id is not None
    return await (await client.get(f"/api/v1/invoices/{invoice_id}")).get_json()


async def _run(session: AsyncSession, tenant: Tenant, period: str) -> Any:
    """Bill the period in-process, ending the test session's transaction so the API can write next."""
    run = await run_period(session=session, tenant=tenant, period=period)
    await session.commit()
    return run


def _lines(invoice: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(line["kind"], line["description"], line["amount"]) for line in invoice["lines"]]


async def _charges(client: ApiClient, contract_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/contracts/{contract_id}/charges")
    assert response.status_code == 200
    return (await response.get_json())["items"]


async def test_a_charge_and_a_credit_appear_on_the_next_invoice_with_their_taxes(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    [contract_id] = await _setup(session, tenant)
    fee = await _charge(operator_client, contract_id, "Cambio de medidor", "45000", True)
    credit = await _charge(operator_client, contract_id, "Compensación reclamo", "-10000", False)
    assert (fee["status"], fee["invoice_id"], fee["amount"], fee["taxable"]) == ("pending", None, "45000", True)

    await _run(session, tenant, "2026-10")

    invoice = await _invoice(operator_client, session, contract_id, "2026-10")
    assert _lines(invoice) == [
        ("consumption", "Consumo (kWh)", "100000"),
        ("adjustment", "Cambio de medidor", "45000"),
        ("adjustment", "Compensación reclamo", "-10000"),
        # Only the taxable charge is taxed: 19 % of 45000.
        ("tax", "IVA 19%", "8550"),
    ]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("135000", "8550", "143550")
    listed = await _charges(operator_client, contract_id)
    assert [(c["id"], c["status"], c["invoice_id"], c["billed_amount"]) for c in listed] == [
        (fee["id"], "billed", invoice["id"], "45000"),
        (credit["id"], "billed", invoice["id"], "-10000"),
    ]


async def test_a_credit_larger_than_the_bill_leaves_it_at_zero_and_carries_the_rest(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    [contract_id] = await _setup(session, tenant)
    credit = await _charge(operator_client, contract_id, "Compensación", "-150000", False)

    await _run(session, tenant, "2026-10")
    october = await _invoice(operator_client, session, contract_id, "2026-10")
    assert _lines(october) == [("consumption", "Consumo (kWh)", "100000"), ("adjustment", "Compensación", "-100000")]
    assert (october["total"], october["amount_due"]) == ("0", "0")
    listed = await _charges(operator_client, contract_id)
    assert [(c["status"], c["amount"], c["billed_amount"], c["invoice_id"], c["carried_from_id"]) for c in listed] == [
        ("billed", "-150000", "-100000", october["id"], None),
        ("pending", "-50000", None, None, credit["id"]),
    ]

    await _run(session, tenant, "2026-11")
    november = await _invoice(operator_client, session, contract_id, "2026-11")
    assert _lines(november) == [("consumption", "Consumo (kWh)", "100000"), ("adjustment", "Compensación", "-50000")]
    assert november["total"] == "50000"
    assert [c["status"] for c in await _charges(operator_client, contract_id)] == ["billed", "billed"]


async def test_a_taxable_credit_larger_than_the_bill_takes_its_tax_with_it(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    [contract_id] = await _setup(session, tenant)
    await _charge(operator_client, contract_id, "Nota crédito", "-150000", True)

    await _run(session, tenant, "2026-10")
    invoice = await _invoice(operator_client, session, contract_id, "2026-10")
    # 100000 / 1.19 = 84033.6: the credit takes 84033 and its VAT -15966, leaving 1 peso, never below zero.
    assert _lines(invoice) == [
        ("consumption", "Consumo (kWh)", "100000"),
        ("adjustment", "Nota crédito", "-84033"),
        ("tax", "IVA 19%", "-15966"),
    ]
    assert invoice["total"] == "1"
    rest = (await _charges(operator_client, contract_id))[1]
    assert (rest["status"], rest["amount"], rest["taxable"]) == ("pending", "-65967", True)


async def test_a_charge_is_billed_once_across_a_rerun(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    [contract_id] = await _setup(session, tenant)
    first = await _charge(operator_client, contract_id, "Reconexión", "30000", False)
    await _run(session, tenant, "2026-10")
    # Added after the period was billed: a re-run of that period skips the contract, so it waits.
    second = await _charge(operator_client, contract_id, "Visita técnica", "20000", False)
    await _run(session, tenant, "2026-10")

    october = await _invoice(operator_client, session, contract_id, "2026-10")
    assert [c["id"] for c in (await _charges(operator_client, contract_id)) if c["invoice_id"] == october["id"]] == [
        first["id"]
    ]
    assert (await _charges(operator_client, contract_id))[1]["status"] == "pending"

    await _run(session, tenant, "2026-11")
    november = await _invoice(operator_client, session, contract_id, "2026-11")
    # Billed the same day as October, so October is not past due yet: no arrears line.
    assert [line[1] for line in _lines(november) if line[0] == "adjustment"] == ["Visita técnica"]
    listed = await _charges(operator_client, contract_id)
    assert [(c["id"], c["invoice_id"]) for c in listed] == [(first["id"], october["id"]), (second["id"], november["id"])]
    billed_by = await session.execute(
        select(ContractCharge.invoice_id, func.count()).group_by(ContractCharge.invoice_id).order_by(ContractCharge.invoice_id)
    )
    assert billed_by.all() == [(october["id"], 1), (november["id"], 1)]


async def test_bad_charges_are_refused(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    [contract_id] = await _setup(session, tenant)
    for amount in ("0", "10.50"):  # zero, and a fraction of a peso
        response = await operator_client.post(
            f"/api/v1/contracts/{contract_id}/charges", json={"description": "x", "amount": amount}
        )
        assert response.status_code == 422, amount
        assert [e["field"] for e in (await response.get_json())["errors"]] == ["amount"]
    missing = await operator_client.post("/api/v1/contracts/999999/charges", json={"description": "x", "amount": "5"})
    assert missing.status_code == 404


@pytest.fixture
async def operator_b(app: Quart, session: AsyncSession) -> ApiClient:
    session.add(
        Tenant(code=OTHER, name="Aguas del Sur S.A.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000001")
    )
    await session.commit()
    user = await make_user(app, role="operator", tenant_code=OTHER)
    api = ApiClient(app)
    response = await api.login(user.email, headers={"X-Tenant-ID": OTHER})
    assert response.status_code == 200
    return api


async def test_charges_and_bills_are_for_operators_of_the_tenant(
    customer_user_client: ApiClient, operator_b: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    [contract_id] = await _setup(session, tenant)
    charge = {"description": "Cambio de medidor", "amount": "45000"}
    bill = {"period": "2026-10"}
    charges_path, bill_path = f"/api/v1/contracts/{contract_id}/charges", f"/api/v1/contracts/{contract_id}/bill"
    assert (await customer_user_client.post(charges_path, json=charge)).status_code == 403
    assert (await customer_user_client.get(charges_path)).status_code == 403
    assert (await customer_user_client.post(bill_path, json=bill)).status_code == 403
    assert (await operator_b.post(charges_path, json=charge)).status_code == 404
    assert (await operator_b.get(charges_path)).status_code == 404
    assert (await operator_b.post(bill_path, json=bill)).status_code == 404
    assert await session.scalar(select(func.count()).select_from(ContractCharge)) == 0
    assert await session.scalar(select(func.count()).select_from(Invoice)) == 0


def _same(invoice: dict[str, Any]) -> tuple[Any, ...]:
    return (
        [(line["kind"], line["description"], line["quantity"], line["unit_price"], line["amount"]) for line in invoice["lines"]],
        invoice["subtotal"], invoice["tax"], invoice["total"], invoice["consumption"], invoice["period"],
    )


async def test_billing_one_contract_gives_the_lines_the_run_gives(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    alone, by_run = await _setup(session, tenant, count=2)
    for contract_id in (alone, by_run):
        await _charge(operator_client, contract_id, "Cambio de medidor", "45000", True)

    response = await operator_client.post(f"/api/v1/contracts/{alone}/bill", json={"period": "2026-10"})
    assert response.status_code == 201, await response.get_data(as_text=True)
    billed = await response.get_json()
    assert billed["contract_id"] == alone and billed["status"] == "issued"
    run = await _run(session, tenant, "2026-10")
    assert (run.billed, run.skipped) == (1, 1)  # the run left the contract billed alone

    assert _same(billed) == _same(await _invoice(operator_client, session, by_run, "2026-10"))
    assert _same(billed)[3] == "153550"  # 100000 + 45000 + 19 % VAT of 45000
    assert (await _charges(operator_client, alone))[0]["invoice_id"] == billed["id"]
    contract = await (await operator_client.get(f"/api/v1/contracts/{alone}")).get_json()
    assert contract["status"] == "active"


async def test_a_final_bill_terminates_the_contract_and_a_second_is_a_409(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    [contract_id] = await _setup(session, tenant)
    path = f"/api/v1/contracts/{contract_id}/bill"
    response = await operator_client.post(path, json={"period": "2026-10", "final": True})
    assert response.status_code == 201, await response.get_data(as_text=True)
    assert (await response.get_json())["total"] == "100000"
    contract = await session.scalar(
        select(Contract).where(Contract.id == contract_id).execution_options(populate_existing=True)
    )
    assert contract is not None and contract.status == "terminated"

    again = await operator_client.post(path, json={"period": "2026-10", "final": True})
    assert again.status_code == 409
    assert (await again.get_json())["code"] == "already_billed"
    later = await operator_client.post(path, json={"period": "2026-11"})
    assert (later.status_code, (await later.get_json())["code"]) == (409, "contract_not_active")
    refused = await operator_client.post(f"/api/v1/contracts/{contract_id}/charges", json={"description": "x", "amount": "5"})
    assert (refused.status_code, (await refused.get_json())["code"]) == (409, "contract_terminated")
    assert await session.scalar(select(func.count()).select_from(Invoice)) == 1


async def test_a_contract_the_run_cannot_bill_is_a_409_with_the_reason(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    await make_tariff(session, tenant, "electricity", tariff=TAXED_ADJUSTMENTS)
    metered = await make_metered_contract(session, tenant)  # no readings: nothing to estimate from
    await session.commit()
    await _charge(operator_client, metered.contract.id, "Cambio de medidor", "45000", True)
    response = await operator_client.post(f"/api/v1/contracts/{metered.contract.id}/bill", json={"period": "2026-10"})
    assert response.status_code == 409
    problem = await response.get_json()
    assert problem["code"] == "cannot_bill" and "no actual readings to estimate from" in problem["detail"]
    assert await session.scalar(select(func.count()).select_from(Invoice)) == 0
    assert (await _charges(operator_client, metered.contract.id))[0]["status"] == "pending"


async def test_a_charge_waits_while_the_run_cannot_bill_its_contract(session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity", tariff=TAXED_ADJUSTMENTS)
    metered = await make_metered_contract(session, tenant)
    session.add(ContractCharge(tenant_id=tenant.id, contract_id=metered.contract.id, description="x", amount=Decimal(5), taxable=False))
    await session.commit()
    run = await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    assert (run.billed, run.skipped) == (0, 1)
    assert await session.scalar(select(ContractCharge.status)) == "pending"


async def test_a_charge_another_bill_took_after_the_batch_read_it_is_left_to_it_and_the_batch_redone(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exactly once under a race: another bill committed the charge after this batch read it as pending.

    The stale read is played by handing the batch, once, the charge as it was before the other bill.
    """
    [contract_id] = await _setup(session, tenant)
    contract = await session.get(Contract, contract_id)
    assert contract is not None
    other_id = (await make_invoice(session, contract, period="2026-09", status="paid")).id
    await session.commit()
    charge = await _charge(operator_client, contract_id, "Cambio de medidor", "45000", True)
    await session.execute(
        update(ContractCharge).where(ContractCharge.id == charge["id"])
        .values(status="billed", invoice_id=other_id, billed_amount=Decimal(45000))
    )
    await session.commit()

    original = billing_run_controller._pending_charges
    calls = 0

    async def stale_once(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {contract_id: [PendingCharge(charge["id"], "Cambio de medidor", Decimal(45000), True)]}
        return await original(*args)

    monkeypatch.setattr(billing_run_controller, "_pending_charges", stale_once)
    run = await _run(session, tenant, "2026-10")

    assert calls == 2 and run.billed == 1
    october = await _invoice(operator_client, session, contract_id, "2026-10")
    assert _lines(october) == [("consumption", "Consumo (kWh)", "100000")]
    [listed] = await _charges(operator_client, contract_id)
    assert (listed["status"], listed["invoice_id"]) == ("billed", other_id)

"""Test data builders that insert rows directly, for tests whose subject is not account management."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller
from domain.national_id import normalize_national_id
from models.account_model import Contract, Customer, Meter, Reading
from models.billing_model import Invoice, InvoiceLine
from models.tenant_model import Tenant
from models.user_model import User

_counter = itertools.count(1)


def unique_number() -> int:
    """A number unique within the test session."""
    return next(_counter)


async def make_customer(session: AsyncSession, tenant: Tenant | int, **fields: Any) -> Customer:
    """A customer with a valid Colombian cédula (CC has no check digit, so any 6-10 digits do)."""
    n = unique_number()
    national = normalize_national_id(fields.pop("national_id_type", "cc"), fields.pop("national_id", f"{10_000_000 + n}"))
    customer = Customer(
        tenant_id=tenant if isinstance(tenant, int) else tenant.id,
        name=fields.pop("name", f"Cliente Núñez {n}"),
        national_id_type=national.type,
        national_id=national.number,
        national_id_display=national.display,
        email=fields.pop("email", f"cliente{n}@example.com"),
        phone=fields.pop("phone", "+57 300 000 0000"),
        billing_address=fields.pop("billing_address", "Calle 10 # 20-30, Medellín"),
        locale=fields.pop("locale", "es"),
        status=fields.pop("status", "active"),
        **fields,
    )
    session.add(customer)
    await session.flush()
    return customer


async def make_contract(session: AsyncSession, customer: Customer, **fields: Any) -> Contract:
    """An active residential electricity contract, stratum 3 unless told otherwise."""
    n = unique_number()
    contract = Contract(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        contract_number=fields.pop("contract_number", f"{1_000_000 + n}"),
        service=fields.pop("service", "electricity"),
        supply_address=fields.pop("supply_address", "Carrera 43A # 1-50, Medellín"),
        stratum=fields.pop("stratum", "3"),
        tariff_class=fields.pop("tariff_class", "residential"),
        status=fields.pop("status", "active"),
        **fields,
    )
    session.add(contract)
    await session.flush()
    return contract


async def make_meter(session: AsyncSession, contract: Contract, **fields: Any) -> Meter:
    """An active 5-digit meter installed at the start of 2025."""
    meter = Meter(
        tenant_id=contract.tenant_id,
        contract_id=contract.id,
        serial=fields.pop("serial", f"MTR-{unique_number():07d}"),
        register_digits=fields.pop("register_digits", 5),
        multiplier=fields.pop("multiplier", Decimal(1)),
        initial_value=fields.pop("initial_value", Decimal(0)),
        installed_on=fields.pop("installed_on", date(2025, 1, 1)),
        status=fields.pop("status", "active"),
        **fields,
    )
    session.add(meter)
    await session.flush()
    return meter


async def make_reading(
    session: AsyncSession, meter: Meter, period: str, value: Decimal | int | str, consumption: Decimal | int | str, **fields: Any
) -> Reading:
    """A reading row as given (no validation: that is the reading controller's job)."""
    reading = Reading(
        tenant_id=meter.tenant_id,
        meter_id=meter.id,
        period=period,
        value=Decimal(value),
        consumption=Decimal(consumption),
        kind=fields.pop("kind", "actual"),
        flags=fields.pop("flags", ""),
        read_on=fields.pop("read_on", None),
        **fields,
    )
    session.add(reading)
    await session.flush()
    return reading


async def make_invoice(
    session: AsyncSession,
    contract: Contract,
    *,
    period: str = "2026-10",
    total: Decimal | int | str = Decimal(85000),
    issued_on: date | None = None,
    due_on: date | None = None,
    status: str = "issued",
    **fields: Any,
) -> Invoice:
    """An issued invoice with one consumption line for the whole total."""
    issued = issued_on or date(2026, 11, 1)
    amount = Decimal(total)
    invoice = Invoice(
        tenant_id=contract.tenant_id,
        number=fields.pop("number", f"FAC-2026-{unique_number():06d}"),
        contract_id=contract.id,
        customer_id=contract.customer_id,
        period=period,
        issued_on=issued,
        due_on=due_on or issued + timedelta(days=15),
        status=status,
        currency=fields.pop("currency", "COP"),
        consumption=fields.pop("consumption", Decimal(100)),
        subtotal=amount,
        tax=fields.pop("tax", Decimal(0)),
        total=amount,
        amount_due=fields.pop("amount_due", amount if status in {"issued", "overdue"} else Decimal(0)),
        **fields,
    )
    session.add(invoice)
    await session.flush()
    session.add(
        InvoiceLine(
            invoice_id=invoice.id, position=1, kind="consumption", description="Consumo", quantity=Decimal(100),
            unit_price=amount / 100, amount=amount,
        )
    )
    await session.flush()
    return invoice


async def make_customer_user(
    session: AsyncSession, customer: Customer, *, email: str | None = None, password: str = "correct horse battery"
) -> User:
    """A customer-role login linked to the customer record."""
    tenant = await session.get(Tenant, customer.tenant_id)
    assert tenant is not None
    user = await auth_controller.create_user(
        session=session,
        tenant=tenant,
        email=email or f"user{unique_number()}@example.com",
        password=password,
        role="customer",
        full_name=customer.name,
        rounds=4,
        commit=False,
    )
    user.customer_id = customer.id
    await session.flush()
    return user

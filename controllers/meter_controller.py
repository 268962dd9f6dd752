"""Meters: operator CRUD within one tenant; what decides consumption is fixed once readings exist."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import (
    commit_or_conflict,
    delete_and_commit,
    ensure_no_dependents,
    to_scale,
    unique_conflict,
)
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.list_ordering import paginate_ordered, sort_keys
from controllers.pagination import Page
from models.account_model import Contract, Meter, Reading
from models.tenant_model import Tenant

ORDER_COLUMNS = {"serial": Meter.serial, "installed_on": Meter.installed_on, "created_at": Meter.created_at}
# Changing these would change how every stored reading's consumption was computed.
SCALES = {"multiplier": 3, "initial_value": 3, "latitude": 6, "longitude": 6}
FIXED_ONCE_READ = ("contract_id", "register_digits", "multiplier", "initial_value", "installed_on")


def normalize_serial(raw: str) -> str:
    """Serials compare without surrounding spaces and case."""
    return raw.strip().upper()


def _serial_conflict() -> Conflict:
    return unique_conflict(code="serial_exists", field="serial", detail="A meter with that serial already exists.")


def _check_initial_value(initial_value: Decimal, register_digits: int) -> None:
    if initial_value >= Decimal(10) ** register_digits:
        raise DomainValidationError(
            f"A {register_digits}-digit register cannot show {initial_value}.",
            code="initial_value_exceeds_register",
            errors=[FieldError("initial_value", f"below 10^{register_digits}", "initial_value_exceeds_register")],
        )


async def _ensure_serial_free(session: AsyncSession, tenant: Tenant, serial: str, *, except_id: int | None = None) -> None:
    stmt = select(Meter.id).where(Meter.tenant_id == tenant.id, Meter.serial == serial)
    if except_id is not None:
        stmt = stmt.where(Meter.id != except_id)
    if await session.scalar(stmt) is not None:
        raise _serial_conflict()


async def _ensure_contract(session: AsyncSession, tenant: Tenant, contract_id: int) -> None:
    found = await session.scalar(select(Contract.id).where(Contract.id == contract_id, Contract.tenant_id == tenant.id))
    if found is None:
        raise DomainValidationError(
            "No contract has that id.",
            code="contract_not_found",
            errors=[FieldError("contract_id", "no such contract", "contract_not_found")],
        )


async def create_meter(
    *,
    session: AsyncSession,
    tenant: Tenant,
    serial: str,
    contract_id: int,
    installed_on: date,
    register_digits: int = 5,
    multiplier: Decimal = Decimal(1),
    initial_value: Decimal = Decimal(0),
    status: str = "active",
    kind: str = "standard",
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
) -> Meter:
    """Install a meter on a contract; the serial is unique per tenant."""
    serial = normalize_serial(serial)
    multiplier, initial_value = to_scale(multiplier, 3), to_scale(initial_value, 3)
    latitude = None if latitude is None else to_scale(latitude, 6)
    longitude = None if longitude is None else to_scale(longitude, 6)
    _check_initial_value(initial_value, register_digits)
    await _ensure_contract(session, tenant, contract_id)
    await _ensure_serial_free(session, tenant, serial)
    meter = Meter(
        tenant_id=tenant.id,
        contract_id=contract_id,
        serial=serial,
        register_digits=register_digits,
        multiplier=multiplier,
        initial_value=initial_value,
        installed_on=installed_on,
        status=status,
        kind=kind,
        latitude=latitude,
        longitude=longitude,
    )
    session.add(meter)
    await commit_or_conflict(session, _serial_conflict())
    return meter


async def get_meter(*, session: AsyncSession, tenant: Tenant, meter_id: int) -> Meter:
    """One meter of the tenant; 404 otherwise."""
    meter = await session.scalar(select(Meter).where(Meter.id == meter_id, Meter.tenant_id == tenant.id))
    if meter is None:
        raise NotFound("No such meter.")
    return meter


async def list_meters(
    *,
    session: AsyncSession,
    tenant: Tenant,
    contract_id: int | None = None,
    serial: str | None = None,
    status: str | None = None,
    order: str = "serial",
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Meter]:
    """Meters filtered by contract, serial and status, in an explicit order."""
    stmt = select(Meter).where(Meter.tenant_id == tenant.id)
    if contract_id is not None:
        stmt = stmt.where(Meter.contract_id == contract_id)
    if serial:
        stmt = stmt.where(Meter.serial == normalize_serial(serial))
    if status:
        stmt = stmt.where(Meter.status == status)
    keys = sort_keys(order, ORDER_COLUMNS, Meter.id)
    return await paginate_ordered(session, stmt, keys=keys, limit=limit, cursor=cursor)


async def update_meter(*, session: AsyncSession, tenant: Tenant, meter_id: int, changes: Mapping[str, Any]) -> Meter:
    """Change the given fields; the contract, register and install date are fixed once the meter has readings."""
    meter = await get_meter(session=session, tenant=tenant, meter_id=meter_id)
    values = dict(changes)
    if "serial" in values:
        values["serial"] = normalize_serial(values["serial"])
    for field, places in SCALES.items():
        if values.get(field) is not None:
            values[field] = to_scale(values[field], places)
    fixed = sorted(k for k in FIXED_ONCE_READ if k in values and values[k] != getattr(meter, k))
    if fixed:
        read = await session.scalar(select(Reading.id).where(Reading.meter_id == meter.id).limit(1))
        if read is not None:
            raise Conflict(
                f"The meter has readings, so its {', '.join(fixed)} can no longer change.",
                code="meter_has_readings",
                errors=[FieldError(k, "fixed once the meter has readings", "meter_has_readings") for k in fixed],
            )
    _check_initial_value(
        values.get("initial_value", meter.initial_value), values.get("register_digits", meter.register_digits)
    )
    if "contract_id" in fixed:
        await _ensure_contract(session, tenant, values["contract_id"])
    if "serial" in values and values["serial"] != meter.serial:
        await _ensure_serial_free(session, tenant, values["serial"], except_id=meter.id)
    for field, value in values.items():
        setattr(meter, field, value)
    await commit_or_conflict(session, _serial_conflict())
    return meter


async def delete_meter(*, session: AsyncSession, tenant: Tenant, meter_id: int) -> None:
    """Delete a meter that has no readings."""
    meter = await get_meter(session=session, tenant=tenant, meter_id=meter_id)
    await ensure_no_dependents(session, "meter", {"readings": select(Reading.id).where(Reading.meter_id == meter.id)})
    await delete_and_commit(session, meter, "meter")

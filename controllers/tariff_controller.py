"""Tariff versions: validation against the calculator's rules, admin CRUD and the tariff in force."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.pagination import Page, SortKey, paginate
from domain import billing_calculator as calc
from models.account_model import SERVICE_UNITS
from models.billing_model import Invoice, Tariff
from models.tenant_model import Tenant

TARIFF_FIELDS = (
    "service",
    "effective_from",
    "name",
    "currency",
    "fixed_charges",
    "blocks",
    "stratum_adjustments",
    "taxes",
    "late_fee_monthly_rate",
    "rounding_increment",
)


def _dec(value: Any) -> Decimal:
    # JSON documents keep decimals as strings; Decimal(str) is exact.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def calculator_tariff(fields: Mapping[str, Any]) -> calc.Tariff:
    """The calculator's tariff from API fields or a stored row's JSON documents (decimal strings)."""
    return calc.Tariff(
        currency=fields["currency"],
        fixed_charges=tuple(calc.FixedCharge(c["name"], _dec(c["amount"])) for c in fields["fixed_charges"]),
        blocks=tuple(
            calc.Block(None if b.get("up_to") is None else _dec(b["up_to"]), _dec(b["unit_price"]))
            for b in fields["blocks"]
        ),
        stratum_adjustments={
            stratum: calc.StratumAdjustment(_dec(a["percent"]), a["applies_to"])
            for stratum, a in fields["stratum_adjustments"].items()
        },
        taxes=tuple(calc.TaxRule(t["name"], _dec(t["rate"]), tuple(t["applies_to"])) for t in fields["taxes"]),
        late_fee_monthly_rate=_dec(fields["late_fee_monthly_rate"]),
        rounding_increment=None if fields.get("rounding_increment") is None else _dec(fields["rounding_increment"]),
        unit=SERVICE_UNITS.get(fields["service"], ""),
    )


def fields_from_calculator(
    tariff: calc.Tariff, *, service: str, effective_from: date, name: str = ""
) -> dict[str, Any]:
    """API-shaped fields of a calculator tariff (to store a tariff defined in code, like the demo's)."""
    return {
        "service": service,
        "effective_from": effective_from,
        "name": name,
        "currency": tariff.currency,
        "fixed_charges": [{"name": c.name, "amount": c.amount} for c in tariff.fixed_charges],
        "blocks": [{"up_to": b.up_to, "unit_price": b.unit_price} for b in tariff.blocks],
        "stratum_adjustments": {
            stratum: {"percent": a.percent, "applies_to": a.applies_to}
            for stratum, a in tariff.stratum_adjustments.items()
        },
        "taxes": [{"name": t.name, "rate": t.rate, "applies_to": list(t.applies_to)} for t in tariff.taxes],
        "late_fee_monthly_rate": tariff.late_fee_monthly_rate,
        "rounding_increment": tariff.rounding_increment,
    }


def new_tariff_row(*, tenant_id: int, fields: Mapping[str, Any]) -> Tariff:
    """An unsaved tariff row from already validated fields."""
    tariff = Tariff(tenant_id=tenant_id)
    _apply(tariff, fields)
    return tariff


def row_fields(tariff: Tariff) -> dict[str, Any]:
    """A stored tariff's fields in API shape (decimals still as strings inside the JSON parts)."""
    return {name: getattr(tariff, name) for name in TARIFF_FIELDS}


def _json_documents(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON columns of a tariff, with every decimal as a string."""
    return {
        "fixed_charges": [{"name": c["name"], "amount": str(_dec(c["amount"]))} for c in fields["fixed_charges"]],
        "blocks": [
            {
                "up_to": None if b.get("up_to") is None else str(_dec(b["up_to"])),
                "unit_price": str(_dec(b["unit_price"])),
            }
            for b in fields["blocks"]
        ],
        "stratum_adjustments": {
            stratum: {"percent": str(_dec(a["percent"])), "applies_to": a["applies_to"]}
            for stratum, a in fields["stratum_adjustments"].items()
        },
        "taxes": [
            {"name": t["name"], "rate": str(_dec(t["rate"])), "applies_to": list(t["applies_to"])}
            for t in fields["taxes"]
        ],
    }


def validate_fields(fields: Mapping[str, Any], *, tenant: Tenant) -> None:
    """Raise a 422 naming every field the calculator's rules reject."""
    problems = calc.validate_tariff(calculator_tariff(fields), tenant_currency=tenant.currency)
    if problems:
        raise DomainValidationError(
            "The tariff is not valid.",
            code="invalid_tariff",
            errors=[FieldError(path, message, "invalid_tariff") for path, message in problems],
        )


def _apply(tariff: Tariff, fields: Mapping[str, Any]) -> None:
    tariff.service = fields["service"]
    tariff.effective_from = fields["effective_from"]
    tariff.name = fields.get("name") or ""
    tariff.currency = fields["currency"]
    tariff.unit = SERVICE_UNITS[fields["service"]]
    for column, document in _json_documents(fields).items():
        setattr(tariff, column, document)
    tariff.late_fee_monthly_rate = _dec(fields["late_fee_monthly_rate"])
    increment = fields.get("rounding_increment")
    tariff.rounding_increment = None if increment is None else _dec(increment)


async def _save(session: AsyncSession, tariff: Tariff) -> Tariff:
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(
            "A tariff for this service already starts on that date.", code="tariff_exists"
        ) from exc
    await session.commit()
    return tariff


async def create_tariff(*, session: AsyncSession, tenant: Tenant, fields: Mapping[str, Any]) -> Tariff:
    """Validate and store a new tariff version."""
    validate_fields(fields, tenant=tenant)
    tariff = new_tariff_row(tenant_id=tenant.id, fields=fields)
    session.add(tariff)
    return await _save(session, tariff)


async def get_tariff(*, session: AsyncSession, tenant: Tenant, tariff_id: int) -> Tariff:
    """One tariff of the tenant; 404 otherwise."""
    tariff = await session.scalar(select(Tariff).where(Tariff.id == tariff_id, Tariff.tenant_id == tenant.id))
    if tariff is None:
        raise NotFound("No such tariff.", code="not_found")
    return tariff


async def list_tariffs(
    *, session: AsyncSession, tenant: Tenant, service: str | None = None, limit: int = 50, cursor: str | None = None
) -> Page[Tariff]:
    """Tariff versions by service, newest first."""
    stmt = select(Tariff).where(Tariff.tenant_id == tenant.id)
    if service:
        stmt = stmt.where(Tariff.service == service)
    keys = [SortKey(Tariff.service), SortKey(Tariff.effective_from, descending=True), SortKey(Tariff.id)]
    return await paginate(session, stmt, keys=keys, limit=limit, cursor=cursor)


async def _in_use(session: AsyncSession, tariff: Tariff) -> bool:
    found = await session.scalar(
        select(Invoice.id).where(Invoice.tenant_id == tariff.tenant_id, Invoice.tariff_id == tariff.id).limit(1)
    )
    return found is not None


async def update_tariff(
    *, session: AsyncSession, tenant: Tenant, tariff_id: int, changes: Mapping[str, Any]
) -> Tariff:
    """Change a tariff that has not billed anything yet; the merged result is validated as a whole."""
    tariff = await get_tariff(session=session, tenant=tenant, tariff_id=tariff_id)
    # Invoices already issued on this version must keep reproducing: add a new version instead.
    if await _in_use(session, tariff):
        raise Conflict("This tariff has billed invoices; add a new version instead.", code="tariff_in_use")
    # Only the rounding increment may be cleared; a null anywhere else means "leave as is".
    kept = {k: v for k, v in changes.items() if k in TARIFF_FIELDS and (v is not None or k == "rounding_increment")}
    merged = {**row_fields(tariff), **kept}
    validate_fields(merged, tenant=tenant)
    _apply(tariff, merged)
    return await _save(session, tariff)


async def delete_tariff(*, session: AsyncSession, tenant: Tenant, tariff_id: int) -> None:
    """Delete a tariff version that has billed nothing; 409 otherwise."""
    tariff = await get_tariff(session=session, tenant=tenant, tariff_id=tariff_id)
    if await _in_use(session, tariff):
        raise Conflict("This tariff has billed invoices and cannot be deleted.", code="tariff_in_use")
    await session.execute(delete(Tariff).where(Tariff.id == tariff.id, Tariff.tenant_id == tenant.id))
    await session.commit()


async def tariffs_in_force(*, session: AsyncSession, tenant_id: int, on: date) -> dict[str, Tariff]:
    """For each service, the version with the latest `effective_from` on or before `on`."""
    rows = await session.scalars(
        select(Tariff)
        .where(Tariff.tenant_id == tenant_id, Tariff.effective_from <= on)
        .order_by(Tariff.service, Tariff.effective_from.desc())
    )
    in_force: dict[str, Tariff] = {}
    for tariff in rows:
        in_force.setdefault(tariff.service, tariff)
    return in_force

"""Operator CRUD for meters: create, list with filters, get, partial update, delete."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import meter_controller
from models.account_model import Meter
from routes.common import ListQuery, PatchModel, db, no_content, problems, request_tenant, role_required
from routes.fields import BusinessDate, DecimalStr, Id, RegisterValue
from routes.vocabulary import MeterKind, MeterStatus

bp = Blueprint("meters", __name__, url_prefix="/api/v1/meters")

Serial = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
]
RegisterDigits = Annotated[int, Field(ge=1, le=12)]
Multiplier = Annotated[DecimalStr, Field(gt=0, max_digits=10, decimal_places=3)]
Latitude = Annotated[DecimalStr, Field(ge=-90, le=90, decimal_places=6)]
Longitude = Annotated[DecimalStr, Field(ge=-180, le=180, decimal_places=6)]


class MeterIn(BaseModel):
    """A new meter on a contract."""

    serial: Serial = Field(description="Unique per tenant; stored in upper case.")
    contract_id: Id
    register_digits: RegisterDigits = Field(5, description="Digits of the register; it rolls over at 10^digits.")
    multiplier: Multiplier = Decimal(1)
    initial_value: RegisterValue = Field(Decimal(0), description="The register at installation: the first reading's previous value.")
    installed_on: BusinessDate
    status: MeterStatus = "active"
    kind: MeterKind = Field("standard", description="What sort of meter: `standard`, `smart` or `prepaid` (informative).")
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class MeterPatch(PatchModel):
    """Fields to change; contract, register digits, multiplier, initial value and install date are fixed once read."""

    nullable_fields = frozenset({"latitude", "longitude"})

    serial: Serial | None = None
    contract_id: Id | None = None
    register_digits: RegisterDigits | None = None
    multiplier: Multiplier | None = None
    initial_value: RegisterValue | None = None
    installed_on: BusinessDate | None = None
    status: MeterStatus | None = None
    kind: MeterKind | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class MeterOut(BaseModel):
    """A meter; decimals are strings."""

    id: int
    serial: str
    contract_id: int
    register_digits: int
    multiplier: DecimalStr
    initial_value: DecimalStr
    installed_on: BusinessDate
    status: MeterStatus
    kind: MeterKind
    latitude: DecimalStr | None
    longitude: DecimalStr | None
    created_at: datetime


class MeterList(BaseModel):
    """A page of meters."""

    items: list[MeterOut]
    next_cursor: str | None


class MeterQuery(ListQuery):
    """Filters and order of the meter list."""

    contract_id: Id | None = None
    serial: str | None = Field(None, max_length=40)
    status: MeterStatus | None = None
    order: Literal["serial", "-serial", "installed_on", "-installed_on", "created_at", "-created_at", "id", "-id"] = "serial"


def meter_out(meter: Meter) -> MeterOut:
    """Serialise a meter."""
    return MeterOut.model_validate(meter, from_attributes=True)


@bp.post("")
@role_required("operator")
@validate_request(MeterIn)
@validate_response(MeterOut, 201)
@problems(409)
async def create_meter(data: MeterIn) -> tuple[MeterOut, int]:
    """Install a meter on a contract."""
    meter = await meter_controller.create_meter(session=db(), tenant=await request_tenant(), **data.model_dump())
    return meter_out(meter), 201


@bp.get("")
@role_required("operator")
@validate_querystring(MeterQuery)
@validate_response(MeterList, 200)
@problems(400)
async def list_meters(query_args: MeterQuery) -> MeterList:
    """List meters, filtered by contract, serial and status."""
    page = await meter_controller.list_meters(session=db(), tenant=await request_tenant(), **query_args.model_dump())
    return MeterList(items=[meter_out(m) for m in page.items], next_cursor=page.next_cursor)


@bp.get("/<int:meter_id>")
@role_required("operator")
@validate_response(MeterOut, 200)
@problems(404)
async def get_meter(meter_id: int) -> MeterOut:
    """One meter."""
    meter = await meter_controller.get_meter(session=db(), tenant=await request_tenant(), meter_id=meter_id)
    return meter_out(meter)


@bp.patch("/<int:meter_id>")
@role_required("operator")
@validate_request(MeterPatch)
@validate_response(MeterOut, 200)
@problems(404, 409)
async def update_meter(meter_id: int, data: MeterPatch) -> MeterOut:
    """Change some fields of a meter."""
    meter = await meter_controller.update_meter(
        session=db(), tenant=await request_tenant(), meter_id=meter_id, changes=data.changes()
    )
    return meter_out(meter)


@bp.delete("/<int:meter_id>")
@role_required("operator")
@no_content
@problems(404, 409)
async def delete_meter(meter_id: int) -> tuple[str, int]:
    """Delete a meter that has no readings (409 `has_dependents` otherwise)."""
    await meter_controller.delete_meter(session=db(), tenant=await request_tenant(), meter_id=meter_id)
    return "", 204

"""Tariff routes: admins create, list, read, change and delete tariff versions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import tariff_controller
from models.billing_model import Tariff
from routes.common import (
    ListQuery,
    MoneyStr,
    db,
    no_content,
    problems,
    request_tenant,
    role_required,
)
from routes.fields import BusinessDate, single_line
from routes.vocabulary import Service, Stratum

# The tariff's prices and bounds are checked, with their ceilings and decimals, by the billing
# calculator's validate_tariff (a 422 `invalid_tariff` naming each field); names and dates here.
ChargeName = single_line(120)
TariffName = single_line(200, min_length=0)

bp = Blueprint("tariffs", __name__, url_prefix="/api/v1/tariffs")



class FixedChargeIn(BaseModel):
    """A named charge billed every period."""

    name: ChargeName
    amount: MoneyStr


class BlockIn(BaseModel):
    """A consumption block: cumulative upper bound (null for the open last block) and unit price."""

    up_to: MoneyStr | None
    unit_price: MoneyStr


class StratumAdjustmentIn(BaseModel):
    """A stratum's subsidy (negative percent) or contribution (positive percent)."""

    percent: MoneyStr
    applies_to: Literal["subsistence", "consumption"]


class TaxIn(BaseModel):
    """A tax: a rate in percent levied on the listed line kinds."""

    name: ChargeName
    rate: MoneyStr
    applies_to: list[str] = Field(max_length=10)


class TariffIn(BaseModel):
    """A tariff version for one service, in force from `effective_from`."""

    service: Service
    effective_from: BusinessDate
    currency: str = Field(min_length=3, max_length=3)
    name: TariffName = ""
    fixed_charges: list[FixedChargeIn] = Field(default_factory=list, max_length=20)
    blocks: list[BlockIn] = Field(min_length=1, max_length=20)
    stratum_adjustments: dict[Stratum, StratumAdjustmentIn] = Field(default_factory=dict)
    taxes: list[TaxIn] = Field(default_factory=list, max_length=10)
    late_fee_monthly_rate: MoneyStr
    rounding_increment: MoneyStr | None = None


class TariffPatch(BaseModel):
    """Any tariff fields to change; the result is validated as a whole."""

    service: Service | None = None
    effective_from: BusinessDate | None = None
    currency: str | None = Field(None, min_length=3, max_length=3)
    name: TariffName | None = None
    fixed_charges: list[FixedChargeIn] | None = Field(None, max_length=20)
    blocks: list[BlockIn] | None = Field(None, min_length=1, max_length=20)
    stratum_adjustments: dict[Stratum, StratumAdjustmentIn] | None = None
    taxes: list[TaxIn] | None = Field(None, max_length=10)
    late_fee_monthly_rate: MoneyStr | None = None
    rounding_increment: MoneyStr | None = None


class TariffOut(TariffIn):
    """A stored tariff version."""

    id: int
    unit: str
    created_at: datetime
    updated_at: datetime


class TariffList(BaseModel):
    """A page of tariff versions."""

    items: list[TariffOut]
    next_cursor: str | None


class TariffQuery(ListQuery):
    """Filters for the tariff list."""

    service: Service | None = None


def tariff_out(tariff: Tariff) -> TariffOut:
    """Serialise a stored tariff (its JSON decimals are strings)."""
    return TariffOut(
        **tariff_controller.row_fields(tariff),
        id=tariff.id,
        unit=tariff.unit,
        created_at=tariff.created_at,
        updated_at=tariff.updated_at,
    )


@bp.post("")
@role_required("admin")
@validate_request(TariffIn)
@validate_response(TariffOut, 201)
@problems(409)
async def create_tariff(data: TariffIn) -> tuple[TariffOut, int]:
    """Create a tariff version."""
    tariff = await tariff_controller.create_tariff(
        session=db(), tenant=await request_tenant(), fields=data.model_dump()
    )
    return tariff_out(tariff), 201


@bp.get("")
@role_required("admin")
@validate_querystring(TariffQuery)
@validate_response(TariffList, 200)
@problems(400)
async def list_tariffs(query_args: TariffQuery) -> TariffList:
    """List tariff versions by service, newest first."""
    page = await tariff_controller.list_tariffs(
        session=db(), tenant=await request_tenant(), service=query_args.service,
        limit=query_args.limit, cursor=query_args.cursor,
    )
    return TariffList(items=[tariff_out(t) for t in page.items], next_cursor=page.next_cursor)


@bp.get("/<int:tariff_id>")
@role_required("admin")
@validate_response(TariffOut, 200)
@problems(404)
async def get_tariff(tariff_id: int) -> TariffOut:
    """Get one tariff version."""
    tariff = await tariff_controller.get_tariff(session=db(), tenant=await request_tenant(), tariff_id=tariff_id)
    return tariff_out(tariff)


@bp.patch("/<int:tariff_id>")
@role_required("admin")
@validate_request(TariffPatch)
@validate_response(TariffOut, 200)
@problems(404, 409)
async def update_tariff(tariff_id: int, data: TariffPatch) -> TariffOut:
    """Change a tariff version that has not billed any invoice yet."""
    tariff = await tariff_controller.update_tariff(
        session=db(), tenant=await request_tenant(), tariff_id=tariff_id, changes=data.model_dump(exclude_unset=True)
    )
    return tariff_out(tariff)


@bp.delete("/<int:tariff_id>")
@role_required("admin")
@no_content
@problems(404, 409)
async def delete_tariff(tariff_id: int) -> tuple[str, int]:
    """Delete a tariff version that has not billed any invoice."""
    await tariff_controller.delete_tariff(session=db(), tenant=await request_tenant(), tariff_id=tariff_id)
    return "", 204

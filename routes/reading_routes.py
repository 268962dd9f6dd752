"""Operator routes for meter readings: record and list per meter, correct one with history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import reading_controller
from domain.readings import split_flags
from models.account_model import Reading, ReadingCorrection
from routes.common import ListQuery, PeriodStr, db, problems, request_tenant, require_principal, role_required
from routes.fields import BusinessDate, DecimalStr, RegisterValue
from routes.vocabulary import ReadingFlag, ReadingKind, Service

bp = Blueprint("readings", __name__, url_prefix="/api/v1")

# Flags are stored comma-separated and leave as a list.
StoredFlags = Annotated[list[ReadingFlag], BeforeValidator(lambda v: split_flags(v) if isinstance(v, str) else v)]


class ReadingIn(BaseModel):
    """A meter's cumulative register value for a period."""

    period: PeriodStr = Field(description="`YYYY-MM`; one reading per meter and period.")
    value: RegisterValue
    read_on: BusinessDate | None = None
    kind: Literal["actual", "corrected"] = Field(
        "actual", description='`corrected` accepts a register lower than the previous one (consumption 0).'
    )


class ReadingCorrectionIn(BaseModel):
    """The right register value for a reading, and why."""

    value: RegisterValue
    read_on: BusinessDate | None = None
    reason: str = Field("", max_length=500)


class ReadingOut(BaseModel):
    """A reading with its computed consumption and validation flags."""

    id: int
    meter_id: int
    period: str
    value: DecimalStr
    read_on: date | None
    kind: ReadingKind
    consumption: DecimalStr
    flags: StoredFlags
    created_at: datetime
    updated_at: datetime


class ReadingList(BaseModel):
    """A page of readings, newest period first."""

    items: list[ReadingOut]
    next_cursor: str | None


class ReadingCorrectionOut(BaseModel):
    """One correction: the reading as it was before, and the value it got."""

    id: int
    reading_id: int
    previous_value: DecimalStr
    previous_kind: str
    previous_consumption: DecimalStr
    previous_flags: StoredFlags
    new_value: DecimalStr
    reason: str
    corrected_by: int | None
    corrected_at: datetime


class ReadingCorrectionList(BaseModel):
    """A reading's corrections, oldest first."""

    items: list[ReadingCorrectionOut]


def reading_out(reading: Reading) -> ReadingOut:
    """Serialise a reading."""
    return ReadingOut.model_validate(reading, from_attributes=True)


def correction_out(row: ReadingCorrection) -> ReadingCorrectionOut:
    """Serialise a correction."""
    return ReadingCorrectionOut.model_validate(row, from_attributes=True)


@bp.post("/meters/<int:meter_id>/readings")
@role_required("operator")
@validate_request(ReadingIn)
@validate_response(ReadingOut, 201)
@problems(404, 409)
async def record_reading(meter_id: int, data: ReadingIn) -> tuple[ReadingOut, int]:
    """Record a meter reading; the response carries its consumption and flags."""
    reading = await reading_controller.record_reading(
        session=db(), tenant=await request_tenant(), meter_id=meter_id, **data.model_dump()
    )
    return reading_out(reading), 201


@bp.get("/meters/<int:meter_id>/readings")
@role_required("operator")
@validate_querystring(ListQuery)
@validate_response(ReadingList, 200)
@problems(400, 404)
async def list_readings(meter_id: int, query_args: ListQuery) -> ReadingList:
    """A meter's readings, newest period first."""
    page = await reading_controller.list_readings(
        session=db(), tenant=await request_tenant(), meter_id=meter_id, **query_args.model_dump()
    )
    return ReadingList(items=[reading_out(r) for r in page.items], next_cursor=page.next_cursor)


@bp.patch("/readings/<int:reading_id>")
@role_required("operator")
@validate_request(ReadingCorrectionIn)
@validate_response(ReadingOut, 200)
@problems(404)
async def correct_reading(reading_id: int, data: ReadingCorrectionIn) -> ReadingOut:
    """Correct a reading; the earlier value is kept in its history and the next reading is recomputed."""
    principal = await require_principal()
    reading = await reading_controller.correct_reading(
        session=db(), tenant=principal.tenant, reading_id=reading_id, user_id=principal.user.id, **data.model_dump()
    )
    return reading_out(reading)


class ReviewQuery(ListQuery):
    """The review queue: readings with `flag` (any flag when absent), of a period and a service."""

    period: PeriodStr | None = None
    flag: ReadingFlag | None = None
    service: Service | None = None


@bp.get("/readings")
@role_required("operator")
@validate_querystring(ReviewQuery)
@validate_response(ReadingList, 200)
@problems(400, 422)
async def review_readings(query_args: ReviewQuery) -> ReadingList:
    """Flagged readings across meters (the review queue of suspicious readings), newest period first."""
    page = await reading_controller.review_queue(
        session=db(), tenant=await request_tenant(), **query_args.model_dump()
    )
    return ReadingList(items=[reading_out(r) for r in page.items], next_cursor=page.next_cursor)


@bp.get("/readings/<int:reading_id>")
@role_required("operator")
@validate_response(ReadingOut, 200)
@problems(404)
async def get_reading(reading_id: int) -> ReadingOut:
    """One reading of any meter of the tenant."""
    return reading_out(await reading_controller.get_reading(session=db(), tenant=await request_tenant(), reading_id=reading_id))


@bp.get("/readings/<int:reading_id>/corrections")
@role_required("operator")
@validate_response(ReadingCorrectionList, 200)
@problems(404)
async def list_corrections(reading_id: int) -> ReadingCorrectionList:
    """A reading's correction history, oldest first."""
    rows = await reading_controller.list_corrections(session=db(), tenant=await request_tenant(), reading_id=reading_id)
    return ReadingCorrectionList(items=[correction_out(r) for r in rows])

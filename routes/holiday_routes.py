"""The tenant's holidays: the non-business days its legal terms skip. Anyone may read them; its admins keep them."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import holiday_controller
from controllers.errors import DomainValidationError, FieldError
from controllers.holiday_controller import FIRST_YEAR, LAST_YEAR
from models.pqr_model import TenantHoliday
from routes.common import db, no_content, problems, request_tenant, require_principal, role_required
from routes.fields import single_line

bp = Blueprint("holidays", __name__, url_prefix="/api/v1/tenant/holidays")

class HolidayQuery(BaseModel):
    """Which year (default: the current one in UTC)."""

    year: int | None = Field(None, ge=FIRST_YEAR, le=LAST_YEAR)


class HolidayIn(BaseModel):
    """One day off: a local holiday the country's calendar lacks, or a decreed one."""

    day: date
    name: single_line(100)  # type: ignore[valid-type]


class HolidayOut(BaseModel):
    """A holiday of the tenant."""

    day: date
    name: str


class HolidayList(BaseModel):
    """A year's holidays, in date order."""

    year: int
    items: list[HolidayOut]


class HolidayLoadIn(BaseModel):
    """A year whose public holidays to add from the tenant country's calendar."""

    year: int = Field(ge=FIRST_YEAR, le=LAST_YEAR)


class HolidayLoadOut(BaseModel):
    """How many of that year's public holidays were new (0 when the year was loaded before)."""

    year: int
    added: int


def holiday_out(holiday: TenantHoliday) -> HolidayOut:
    """Serialise a holiday."""
    return HolidayOut(day=holiday.day, name=holiday.name)


@bp.get("")
@validate_querystring(HolidayQuery)
@validate_response(HolidayList, 200)
@problems(404)
async def list_holidays(query_args: HolidayQuery) -> HolidayList:
    """The tenant's holidays of a year (public, like the tenant's profile: a frontend counts business days with them)."""
    tenant = await request_tenant()
    year = query_args.year or date.today().year
    rows = await holiday_controller.list_holidays(session=db(), tenant_id=tenant.id, year=year)
    return HolidayList(year=year, items=[holiday_out(h) for h in rows])


@bp.post("")
@role_required("admin")
@validate_request(HolidayIn)
@validate_response(HolidayOut, 201)
@problems(401, 403, 409, 422)
async def add_holiday(data: HolidayIn) -> tuple[HolidayOut, int]:
    """Add a holiday (admin); terms computed from now on skip it, those computed before keep their dates."""
    tenant = (await require_principal()).tenant
    holiday = await holiday_controller.add_holiday(session=db(), tenant_id=tenant.id, day=data.day, name=data.name)
    return holiday_out(holiday), 201


@bp.delete("/<day>")
@role_required("admin")
@no_content
@problems(401, 403, 404, 422)
async def remove_holiday(day: str) -> tuple[str, int]:
    """Make a day a business day again (admin); `day` is YYYY-MM-DD."""
    tenant = (await require_principal()).tenant
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise DomainValidationError(
            "The day must be a date, YYYY-MM-DD.", errors=[FieldError("day", "a date, YYYY-MM-DD", "invalid_date")]
        ) from None
    await holiday_controller.remove_holiday(session=db(), tenant_id=tenant.id, day=parsed)
    return "", 204


@bp.post("/load")
@role_required("admin")
@validate_request(HolidayLoadIn)
@validate_response(HolidayLoadOut, 200)
@problems(401, 403, 422)
async def load_holidays(data: HolidayLoadIn) -> HolidayLoadOut:
    """Add a year's public holidays from the tenant country's calendar (idempotent; as `load-holidays` does)."""
    tenant = (await require_principal()).tenant
    added = await holiday_controller.load_country_holidays(session=db(), tenant_id=tenant.id, country=tenant.country, years=[data.year])
    return HolidayLoadOut(year=data.year, added=added)

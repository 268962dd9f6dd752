"""Report routes (operator, admin): receivables aging, collections per day and channel, billing summary; JSON or CSV."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response
from quart_schema import document_response, validate_querystring

from controllers import report_controller
from routes.common import (
    MoneyStr,
    PeriodStr,
    csv_response,
    db,
    problems,
    request_tenant,
    role_required,
    wants_csv,
)
from routes.vocabulary import Currency, ReportChannel, Service, Stratum

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")

# Reports make sense within the system's lifetime; the bounds keep day arithmetic far from date.min/max.
ReportDate = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2999, 12, 31))]


class AgingQuery(BaseModel):
    """The day balances are aged at; the tenant's today when left out."""

    as_of: ReportDate | None = None


class CollectionsQuery(BaseModel):
    """Local days, both inclusive, at most 366 of them."""

    model_config = ConfigDict(populate_by_name=True)

    date_from: ReportDate = Field(alias="from")
    date_to: ReportDate = Field(alias="to")


class BillingQuery(BaseModel):
    """The billing period `YYYY-MM`."""

    period: PeriodStr


class AgingRowOut(BaseModel):
    """Open balances of a service and stratum by days past due."""

    service: Service
    stratum: Stratum
    currency: Currency
    invoices: int
    current: MoneyStr
    days_1_30: MoneyStr
    days_31_60: MoneyStr
    days_61_90: MoneyStr
    days_90_plus: MoneyStr
    total: MoneyStr


class AgingOut(BaseModel):
    """The aging report; `Accept: text/csv` gives the rows as CSV."""

    as_of: date
    rows: list[AgingRowOut]


class CollectionRowOut(BaseModel):
    """Approved payments of one channel settled on one local day."""

    day: date
    channel: ReportChannel
    currency: Currency
    payments: int
    amount: MoneyStr


class CollectionsOut(BaseModel):
    """The collections report; `Accept: text/csv` gives the rows as CSV."""

    date_from: date = Field(serialization_alias="from")
    date_to: date = Field(serialization_alias="to")
    rows: list[CollectionRowOut]


class BillingRowOut(BaseModel):
    """A period's billing of one service and stratum."""

    service: Service
    stratum: Stratum
    currency: Currency
    invoices: int
    consumption: MoneyStr
    subtotal: MoneyStr
    subsidies: MoneyStr
    contributions: MoneyStr
    taxes: MoneyStr
    total: MoneyStr


class BillingOut(BaseModel):
    """The billing summary; `Accept: text/csv` gives the rows as CSV."""

    period: str
    rows: list[BillingRowOut]


def _json(report: BaseModel) -> dict[str, Any]:
    """The JSON body of a report (documented, not validated: the same route may answer CSV)."""
    return report.model_dump(mode="json", by_alias=True)


@bp.get("/aging")
@role_required("operator")
@validate_querystring(AgingQuery)
@document_response(AgingOut)
async def aging_report(query_args: AgingQuery) -> dict[str, Any] | Response:
    """Receivables by age bucket per service and stratum."""
    as_of, rows = await report_controller.aging(session=db(), tenant=await request_tenant(), as_of=query_args.as_of)
    if wants_csv():
        return csv_response(f"aging-{as_of}", rows, report_controller.AgingRow)
    return _json(AgingOut(as_of=as_of, rows=[AgingRowOut(**asdict(r)) for r in rows]))


@bp.get("/collections")
@role_required("operator")
@validate_querystring(CollectionsQuery)
@document_response(CollectionsOut)
@problems(422)
async def collections_report(query_args: CollectionsQuery) -> dict[str, Any] | Response:
    """Collected amounts per local day and channel."""
    rows = await report_controller.collections(
        session=db(), tenant=await request_tenant(), date_from=query_args.date_from, date_to=query_args.date_to
    )
    if wants_csv():
        return csv_response(f"collections-{query_args.date_from}-{query_args.date_to}", rows, report_controller.CollectionRow)
    return _json(CollectionsOut(date_from=query_args.date_from, date_to=query_args.date_to, rows=[CollectionRowOut(**asdict(r)) for r in rows]))


@bp.get("/billing")
@role_required("operator")
@validate_querystring(BillingQuery)
@document_response(BillingOut)
@problems(422)
async def billing_report(query_args: BillingQuery) -> dict[str, Any] | Response:
    """A period's billing summary per service and stratum."""
    period, rows = await report_controller.billing(session=db(), tenant=await request_tenant(), period=query_args.period)
    if wants_csv():
        return csv_response(f"billing-{period}", rows, report_controller.BillingRow)
    return _json(BillingOut(period=str(period), rows=[BillingRowOut(**asdict(r)) for r in rows]))


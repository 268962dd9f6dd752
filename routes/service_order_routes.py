"""Service orders (operator): suspensions and reconnections for field crews; list, one, execute or cancel; CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import document_response, validate_querystring, validate_request, validate_response

from controllers import service_order_controller
from controllers.service_order_controller import CSV_COLUMNS, ServiceOrderFilters, ServiceOrderRow
from routes.common import (
    ListQuery,
    MoneyStr,
    csv_response,
    db,
    problems,
    request_tenant,
    require_principal,
    role_required,
    wants_csv,
)
from routes.fields import BusinessDateTime, DecimalStr, RegisterValue, single_line
from routes.vocabulary import Currency, Service, ServiceOrderKind, ServiceOrderStatus

bp = Blueprint("service_orders", __name__, url_prefix="/api/v1/service-orders")


class ServiceOrderQuery(ListQuery):
    """List filters; `overdue=true`: pending reconnections past their legal deadline. `Accept: text/csv`
    gives every matching order (no paging), by deadline, for the field crews."""

    kind: ServiceOrderKind | None = None
    status: ServiceOrderStatus | None = None
    contract_number: str | None = Field(None, max_length=30)
    overdue: bool | None = None


class ServiceOrderOut(BaseModel):
    """A suspension or reconnection order with what a crew needs to find the place."""

    id: int
    kind: ServiceOrderKind
    status: ServiceOrderStatus
    contract_id: int
    contract_number: str
    service: Service
    supply_address: str
    customer_name: str
    meter_serial: str | None
    reason: str
    amount: MoneyStr = Field(description="Suspension: the past-due debt that caused it; reconnection: the fee to charge.")
    currency: Currency
    created_at: datetime
    due_at: datetime = Field(description="Suspension: the end of the customer's notice; reconnection: the legal deadline.")
    executed_at: datetime | None
    reading: DecimalStr | None
    cancelled_at: datetime | None
    note: str | None
    overdue: bool = Field(description="A pending reconnection past its deadline.")


class ServiceOrderPage(BaseModel):
    """A page of service orders, oldest first."""

    items: list[ServiceOrderOut]
    next_cursor: str | None


class ServiceOrderPatch(BaseModel):
    """Execute (the crew's date and meter reading; the contract is suspended or reactivated) or cancel."""

    status: Literal["executed", "cancelled"]
    executed_at: BusinessDateTime | None = Field(None, description="When the crew did it (with its offset); not in the future.")
    reading: RegisterValue | None = None  # type: ignore[valid-type]
    note: single_line(500, min_length=0) | None = None  # type: ignore[valid-type]


def order_out(row: ServiceOrderRow) -> ServiceOrderOut:
    """Serialise an order row."""
    return ServiceOrderOut.model_validate(row, from_attributes=True)


@bp.get("")
@role_required("operator")
@validate_querystring(ServiceOrderQuery)
@document_response(ServiceOrderPage)
@problems(400, 403)
async def list_service_orders(query_args: ServiceOrderQuery) -> dict[str, Any] | Response:
    """List suspension and reconnection orders, filtered; `Accept: text/csv` exports them for field crews."""
    tenant = await request_tenant()
    filters = ServiceOrderFilters(**query_args.model_dump(exclude={"limit", "cursor"}))
    if wants_csv():
        rows = await service_order_controller.export_orders(session=db(), tenant=tenant, filters=filters)
        return csv_response("service-orders", rows, ServiceOrderRow, CSV_COLUMNS)
    page = await service_order_controller.list_orders(
        session=db(), tenant=tenant, filters=filters, limit=query_args.limit, cursor=query_args.cursor
    )
    # Documented, not validated: the same route may answer CSV.
    return ServiceOrderPage(items=[order_out(r) for r in page.items], next_cursor=page.next_cursor).model_dump(mode="json")


@bp.get("/<int:order_id>")
@role_required("operator")
@validate_response(ServiceOrderOut, 200)
@problems(403, 404)
async def get_service_order(order_id: int) -> ServiceOrderOut:
    """One service order."""
    row = await service_order_controller.get_order(session=db(), tenant=await request_tenant(), order_id=order_id)
    return order_out(row)


@bp.patch("/<int:order_id>")
@role_required("operator")
@validate_request(ServiceOrderPatch)
@validate_response(ServiceOrderOut, 200)
@problems(403, 404, 409, 422)
async def change_service_order(order_id: int, data: ServiceOrderPatch) -> ServiceOrderOut:
    """Execute a pending order (a suspension suspends the contract, a reconnection reactivates it) or cancel it."""
    principal = await require_principal()
    row = await service_order_controller.change_order(
        session=db(), tenant=principal.tenant, order_id=order_id, user_id=principal.user.id, status=data.status,
        executed_at=data.executed_at, reading=data.reading, note=data.note,
    )
    return order_out(row)

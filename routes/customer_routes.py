"""Operator CRUD for customers: create, list with filters, get, partial update, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import customer_controller
from models.account_model import Customer
from routes.common import ListQuery, PatchModel, db, no_content, problems, request_tenant, role_required
from routes.fields import Address, Email, Name, NationalIdText, Phone
from routes.vocabulary import CustomerStatus, Locale, NationalIdType

bp = Blueprint("customers", __name__, url_prefix="/api/v1/customers")

RawNationalId = NationalIdText


class CustomerIn(BaseModel):
    """A new customer; the national ID is validated by its type."""

    name: Name
    national_id_type: NationalIdType
    national_id: RawNationalId
    email: Email | None = None
    phone: Phone | None = None
    billing_address: Address = ""
    locale: Locale | None = Field(None, description="Language of the customer's notifications; the tenant's by default.")
    status: CustomerStatus = "active"


class CustomerPatch(PatchModel):
    """Fields to change; the rest stay as they are."""

    nullable_fields = frozenset({"email", "phone"})

    name: Name | None = None
    national_id_type: NationalIdType | None = None
    national_id: RawNationalId | None = None
    email: Email | None = None
    phone: Phone | None = None
    billing_address: Address | None = None
    locale: Locale | None = None
    status: CustomerStatus | None = None


class CustomerOut(BaseModel):
    """A customer; `national_id` is normalised (digits and check digit) and `national_id_display` formatted."""

    id: int
    name: str
    national_id_type: str
    national_id: str
    national_id_display: str
    email: str | None
    phone: str | None
    billing_address: str
    locale: Locale
    status: CustomerStatus
    created_at: datetime
    updated_at: datetime


class CustomerList(BaseModel):
    """A page of customers."""

    items: list[CustomerOut]
    next_cursor: str | None


class CustomerQuery(ListQuery):
    """Filters and order of the customer list."""

    national_id: str | None = Field(None, max_length=40, description="Exact match; normalised when the type is given.")
    national_id_type: NationalIdType | None = None
    name: str | None = Field(None, max_length=200, description="Case-insensitive fragment of the name.")
    status: CustomerStatus | None = None
    order: Literal["name", "-name", "created_at", "-created_at", "id", "-id"] = "name"


def customer_out(customer: Customer) -> CustomerOut:
    """Serialise a customer."""
    return CustomerOut.model_validate(customer, from_attributes=True)


@bp.post("")
@role_required("operator")
@validate_request(CustomerIn)
@validate_response(CustomerOut, 201)
@problems(409)
async def create_customer(data: CustomerIn) -> tuple[CustomerOut, int]:
    """Create a customer."""
    customer = await customer_controller.create_customer(
        session=db(), tenant=await request_tenant(), **data.model_dump()
    )
    return customer_out(customer), 201


@bp.get("")
@role_required("operator")
@validate_querystring(CustomerQuery)
@validate_response(CustomerList, 200)
@problems(400)
async def list_customers(query_args: CustomerQuery) -> CustomerList:
    """List customers, filtered by national ID, name fragment and status."""
    page = await customer_controller.list_customers(
        session=db(), tenant=await request_tenant(), **query_args.model_dump()
    )
    return CustomerList(items=[customer_out(c) for c in page.items], next_cursor=page.next_cursor)


@bp.get("/<int:customer_id>")
@role_required("operator")
@validate_response(CustomerOut, 200)
@problems(404)
async def get_customer(customer_id: int) -> CustomerOut:
    """One customer."""
    customer = await customer_controller.get_customer(session=db(), tenant=await request_tenant(), customer_id=customer_id)
    return customer_out(customer)


@bp.patch("/<int:customer_id>")
@role_required("operator")
@validate_request(CustomerPatch)
@validate_response(CustomerOut, 200)
@problems(404, 409)
async def update_customer(customer_id: int, data: CustomerPatch) -> CustomerOut:
    """Change some fields of a customer."""
    customer = await customer_controller.update_customer(
        session=db(), tenant=await request_tenant(), customer_id=customer_id, changes=data.changes()
    )
    return customer_out(customer)


@bp.delete("/<int:customer_id>")
@role_required("operator")
@no_content
@problems(404, 409)
async def delete_customer(customer_id: int) -> tuple[str, int]:
    """Delete a customer that has no contracts and no login (409 `has_dependents` otherwise)."""
    await customer_controller.delete_customer(session=db(), tenant=await request_tenant(), customer_id=customer_id)
    return "", 204

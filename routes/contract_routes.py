"""Operator CRUD for contracts: create, list with filters, get, partial update, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import contract_controller
from models.account_model import Contract
from routes.common import ListQuery, PatchModel, db, no_content, problems, request_tenant, role_required
from routes.fields import Id, single_line
from routes.vocabulary import ContractStatus, Service, Stratum

bp = Blueprint("contracts", __name__, url_prefix="/api/v1/contracts")

ContractNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
]
Address = single_line(300)
TariffClass = single_line(30)


class ContractIn(BaseModel):
    """A new contract for an existing customer."""

    contract_number: ContractNumber = Field(description="Unique per tenant; stored in upper case.")
    customer_id: Id
    service: Service
    supply_address: Address
    stratum: Stratum
    tariff_class: TariffClass | None = Field(None, description="`residential` for strata 1-6, else the stratum.")
    status: ContractStatus = "active"


class ContractPatch(PatchModel):
    """Fields to change; the number and the holder are fixed once the contract has invoices."""

    contract_number: ContractNumber | None = None
    customer_id: Id | None = None
    service: Service | None = None
    supply_address: Address | None = None
    stratum: Stratum | None = None
    tariff_class: TariffClass | None = None
    status: ContractStatus | None = None


class ContractOut(BaseModel):
    """A contract."""

    id: int
    contract_number: str
    customer_id: int
    service: Service
    supply_address: str
    stratum: Stratum
    tariff_class: str
    status: ContractStatus
    created_at: datetime
    updated_at: datetime


class ContractList(BaseModel):
    """A page of contracts."""

    items: list[ContractOut]
    next_cursor: str | None


class ContractQuery(ListQuery):
    """Filters and order of the contract list."""

    customer_id: Id | None = None
    contract_number: str | None = Field(None, max_length=30)
    status: ContractStatus | None = None
    service: Service | None = None
    order: Literal["contract_number", "-contract_number", "created_at", "-created_at", "id", "-id"] = "contract_number"


def contract_out(contract: Contract) -> ContractOut:
    """Serialise a contract."""
    return ContractOut.model_validate(contract, from_attributes=True)


@bp.post("")
@role_required("operator")
@validate_request(ContractIn)
@validate_response(ContractOut, 201)
@problems(409)
async def create_contract(data: ContractIn) -> tuple[ContractOut, int]:
    """Create a contract."""
    contract = await contract_controller.create_contract(
        session=db(), tenant=await request_tenant(), **data.model_dump()
    )
    return contract_out(contract), 201


@bp.get("")
@role_required("operator")
@validate_querystring(ContractQuery)
@validate_response(ContractList, 200)
@problems(400)
async def list_contracts(query_args: ContractQuery) -> ContractList:
    """List contracts, filtered by customer, number, status and service."""
    page = await contract_controller.list_contracts(
        session=db(), tenant=await request_tenant(), **query_args.model_dump()
    )
    return ContractList(items=[contract_out(c) for c in page.items], next_cursor=page.next_cursor)


@bp.get("/<int:contract_id>")
@role_required("operator")
@validate_response(ContractOut, 200)
@problems(404)
async def get_contract(contract_id: int) -> ContractOut:
    """One contract."""
    contract = await contract_controller.get_contract(session=db(), tenant=await request_tenant(), contract_id=contract_id)
    return contract_out(contract)


@bp.patch("/<int:contract_id>")
@role_required("operator")
@validate_request(ContractPatch)
@validate_response(ContractOut, 200)
@problems(404, 409)
async def update_contract(contract_id: int, data: ContractPatch) -> ContractOut:
    """Change some fields of a contract."""
    contract = await contract_controller.update_contract(
        session=db(), tenant=await request_tenant(), contract_id=contract_id, changes=data.changes()
    )
    return contract_out(contract)


@bp.delete("/<int:contract_id>")
@role_required("operator")
@no_content
@problems(404, 409)
async def delete_contract(contract_id: int) -> tuple[str, int]:
    """Delete a contract that has no meters and no invoices (409 `has_dependents` otherwise)."""
    await contract_controller.delete_contract(session=db(), tenant=await request_tenant(), contract_id=contract_id)
    return "", 204

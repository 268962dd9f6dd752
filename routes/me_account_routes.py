"""Self-service account routes: a customer's own contracts and their readings."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from controllers import contract_controller, reading_controller
from routes.common import ListQuery, customer_required, db, problems, require_principal
from routes.contract_routes import ContractList, ContractOut, contract_out
from routes.reading_routes import ReadingList, reading_out

bp = Blueprint("me_accounts", __name__, url_prefix="/api/v1/me")


@bp.get("/contracts")
@customer_required
@validate_querystring(ListQuery)
@validate_response(ContractList, 200)
@problems(400)
async def my_contracts(query_args: ListQuery) -> ContractList:
    """The logged-in customer's own contracts, by contract number."""
    principal = await require_principal()
    page = await contract_controller.list_customer_contracts(
        session=db(), tenant=principal.tenant, customer_id=principal.user.customer_id, **query_args.model_dump()
    )
    return ContractList(items=[contract_out(c) for c in page.items], next_cursor=page.next_cursor)


@bp.get("/contracts/<int:contract_id>")
@customer_required
@validate_response(ContractOut, 200)
@problems(404)
async def my_contract(contract_id: int) -> ContractOut:
    """One of the customer's own contracts."""
    principal = await require_principal()
    contract = await contract_controller.get_customer_contract(
        session=db(), tenant=principal.tenant, customer_id=principal.user.customer_id, contract_id=contract_id
    )
    return contract_out(contract)


@bp.get("/contracts/<int:contract_id>/readings")
@customer_required
@validate_querystring(ListQuery)
@validate_response(ReadingList, 200)
@problems(400, 404)
async def my_contract_readings(contract_id: int, query_args: ListQuery) -> ReadingList:
    """The readings of one of the customer's own contracts, newest period first."""
    principal = await require_principal()
    page = await reading_controller.list_customer_contract_readings(
        session=db(),
        tenant=principal.tenant,
        customer_id=principal.user.customer_id,
        contract_id=contract_id,
        **query_args.model_dump(),
    )
    return ReadingList(items=[reading_out(r) for r in page.items], next_cursor=page.next_cursor)

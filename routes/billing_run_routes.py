"""Bill run routes: operators queue a period's bill run for the workers, follow its progress and read the
contracts it could not bill."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import billing_run_controller
from routes.common import (
    ListQuery,
    PeriodStr,
    db,
    problems,
    request_tenant,
    require_principal,
    role_required,
)
from routes.vocabulary import BillingRunStatus

bp = Blueprint("billing_runs", __name__, url_prefix="/api/v1/billing-runs")


class BillingRunIn(BaseModel):
    """The period to bill."""

    period: PeriodStr = Field(examples=["2026-10"])


class BillingRunOut(BaseModel):
    """A bill run, its progress and counts; billed + skipped + failed is the number of active contracts it saw.

    `status` is `queued` (waiting for a worker), `running`, `completed` or `failed`. `contracts_total`
    is counted when a worker starts it (null until then); `contracts_done` grows with each committed batch.
    """

    id: int
    period: str
    status: BillingRunStatus
    contracts_done: int
    contracts_total: int | None
    billed: int
    skipped: int
    estimated: int
    flagged: int
    failed: int
    started_at: datetime
    heartbeat_at: datetime | None
    finished_at: datetime | None
    error: str | None


class RunLocation(BaseModel):
    """Where to follow the run."""

    location: str = Field(examples=["/api/v1/billing-runs/42"])


class BillingRunItemOut(BaseModel):
    """A contract the run skipped or failed to bill, and why."""

    contract_id: int
    outcome: str
    reason: str


class BillingRunItemList(BaseModel):
    """A page of a run's skipped and failed contracts."""

    items: list[BillingRunItemOut]
    next_cursor: str | None


def run_out(run: object) -> BillingRunOut:
    """Serialise a bill run."""
    return BillingRunOut.model_validate(run, from_attributes=True)


@bp.post("")
@role_required("operator")
@validate_request(BillingRunIn)
@validate_response(BillingRunOut, 202, RunLocation)
@problems(409)
async def create_billing_run(data: BillingRunIn) -> tuple[BillingRunOut, int, RunLocation]:
    """Queue a bill run of every active contract for a period; a worker runs it. Follow it at `Location`.

    Answers 202 with the run (`queued`, or the run of that period already queued or running, which
    this request joins). Billing a period again later bills only what the earlier runs did not.
    """
    principal = await require_principal()
    run = await billing_run_controller.queue_run(
        session=db(), tenant=await request_tenant(), period=data.period, started_by=principal.user.id
    )
    return run_out(run), 202, RunLocation(location=f"{bp.url_prefix}/{run.id}")


@bp.get("/<int:run_id>")
@role_required("operator")
@validate_response(BillingRunOut, 200)
@problems(404)
async def get_billing_run(run_id: int) -> BillingRunOut:
    """Read a bill run: its status, progress (contracts done of total) and counts."""
    return run_out(await billing_run_controller.get_run(session=db(), tenant=await request_tenant(), run_id=run_id))


@bp.get("/<int:run_id>/items")
@role_required("operator")
@validate_querystring(ListQuery)
@validate_response(BillingRunItemList, 200)
@problems(400, 404)
async def list_billing_run_items(run_id: int, query_args: ListQuery) -> BillingRunItemList:
    """The contracts a run skipped or failed to bill, with the reason, in contract order."""
    page = await billing_run_controller.list_run_items(
        session=db(), tenant=await request_tenant(), run_id=run_id, limit=query_args.limit, cursor=query_args.cursor
    )
    return BillingRunItemList(
        items=[BillingRunItemOut.model_validate(i, from_attributes=True) for i in page.items],
        next_cursor=page.next_cursor,
    )

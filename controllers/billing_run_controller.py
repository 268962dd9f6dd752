"""The monthly bill run: set-based, batched, idempotent and resumable billing of a tenant's active contracts.

How one run works (the README's "Billing" section states the rules):
- Contracts are taken in batches ordered by id. A batch costs a fixed number of statements whatever
  its size: the batch's upper id, one SELECT of contracts with customer, active meter, this period's
  reading and any invoice already issued for the period, the readings history of the meters that need
  an estimate (in chunks of IN_CHUNK), the open past-due invoices to carry as arrears, the pending
  one-off charges and credits, the gap-free number block, then executemany INSERTs of estimated
  readings, invoices, lines, outbox rows and run items, and one commit. Batches that apply charges
  also mark them billed (one executemany UPDATE and a check; see `_bill_charges`).
- Carrying a balance makes the old invoice payable only through the new one: in the same batch, the
  active coupons holding a carried invoice are cancelled (`invoice_carried`), an invoice whose coupon
  is being paid right now (`processing`) is not carried, and a last check that none of the carried
  invoices was claimed or paid meanwhile (a payment racing the batch) redoes the batch if one was.
  So a carried invoice is never paid on its own, and a payment never covers a balance twice. These
  statements run only for batches that carry something.
- Idempotent: a contract that already has an invoice for the period is skipped (and the unique
  (contract_id, period) constraint backs that up), so a period can always be billed again.
- Run by workers: `queue_run` queues it (one active run per tenant and period), `claim_run` takes it
  with a conditional UPDATE on its claim counter, `execute_run` bills from its cursor. Each batch's
  transaction also writes the run's counts, cursor and heartbeat, guarded by the claim, so a run whose
  worker died is claimed again after its heartbeat goes stale and resumed from its last committed
  batch, and a worker that lost its claim cannot commit. The CLI (`run_period`) does all three itself.
- Invoice numbers are reserved per batch inside the batch's transaction, so a batch that rolls back
  gives its numbers back: no duplicates and no gaps.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, exists, false, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from clients.bulk_insert import (
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    OUTBOX_COLUMNS,
    READING_COLUMNS,
    FastInsert,
    fewer_collections,
    first_unexpected,
)
from clients.sql_client import is_busy_error, is_transient_error, retry_unit_of_work
from controllers import credit_balance_controller, invoice_controller, sequence_controller, tariff_controller
from controllers.account_common import tenant_today
from controllers.credit_balance_controller import CreditTaken, HeldCredit
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from controllers.outbox_controller import customer_login_id
from controllers.pagination import Page, SortKey, paginate
from domain import billing_calculator as calc
from domain.charges import PendingCharge, bill_with_charges
from domain.coupon_codes import invoice_reference
from domain.period import Period
from domain.readings import estimate_reading, join_flags, vee_flags
from models.account_model import Contract, Customer, Meter, Reading
from models.base_model import utcnow
from models.billing_model import (
    ACTIVE_RUN_STATUSES,
    BillingRun,
    BillingRunItem,
    ContractCharge,
    Invoice,
    InvoiceLine,
)
from models.notification_model import Notification
from models.payment_model import Coupon, CouponInvoice
from models.tenant_model import Tenant

DEFAULT_BATCH_SIZE = 5_000
# SQL Server accepts at most 2100 parameters in one statement.
IN_CHUNK = 1_000
INVOICE_SEQUENCE = "invoice"
OPEN_STATUSES = ("issued", "overdue")

ProgressCallback = Callable[[int, int], None]


class SimulatedCrash(RuntimeError):
    """Raised by the `stop_after_batches` test hook, like a process killed between batches."""


class _CarriedInvoiceTaken(RuntimeError):
    """A payment claimed or paid an invoice the batch carried, while the batch ran: the batch starts again."""


class _ChargeTaken(_CarriedInvoiceTaken):
    """Another bill (of another period) billed a charge this batch applied, while it ran: the batch starts again."""


def invoice_number(year: int, sequence: int) -> str:
    """The printed invoice number, e.g. FAC-2026-000123 (the counter is per tenant, not per year)."""
    return f"FAC-{year}-{sequence:06d}"


def whole_months_between(start: date, end: date) -> int:
    """Whole calendar months from `start` to `end`, at least 1 (the late-fee months of an overdue balance)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return max(months, 1)


INVOICE_ISSUED = "invoice_issued"


@dataclass
class RunCounts:
    """What a run did: invoices billed, contracts skipped or failed, readings estimated, invoices flagged."""

    billed: int = 0
    skipped: int = 0
    estimated: int = 0
    flagged: int = 0
    failed: int = 0

    def add(self, other: RunCounts) -> None:
        """Accumulate another batch's counts."""
        self.billed += other.billed
        self.skipped += other.skipped
        self.estimated += other.estimated
        self.flagged += other.flagged
        self.failed += other.failed


@dataclass(frozen=True)
class _Tenant:
    """What the run reads of its tenant, copied once: a rollback expires ORM objects mid-run."""

    id: int
    name: str
    locale: str


@dataclass(frozen=True)
class _ServiceTariff:
    tariff_id: int
    prepared: calc.PreparedTariff


@dataclass
class _Run:
    """Everything a batch needs that stays the same for the whole run."""

    tenant: _Tenant
    # As stored in the period columns; `last_day` is worked out once from the parsed Period.
    period: str
    last_day: date
    run_id: int
    claims: int
    issued_on: date
    due_on: date
    tariffs: dict[str, _ServiceTariff]
    tariff_problems: dict[str, str]
    batch_size: int
    invoices: FastInsert
    lines: FastInsert
    readings: FastInsert
    outbox: FastInsert


def _validate_period(period: str, today: date) -> Period:
    try:
        parsed = Period.parse(period)
    except ValueError as exc:
        raise DomainValidationError(
            "The period must be YYYY-MM.", code="invalid_period",
            errors=[FieldError("period", "must be YYYY-MM", "invalid_period")],
        ) from exc
    if not parsed.has_started(today):
        raise DomainValidationError(
            "A period that has not started cannot be billed.", code="period_in_future",
            errors=[FieldError("period", "is in the future", "period_in_future")],
        )
    return parsed


async def _load_tariffs(
    session: AsyncSession, tenant_id: int, last_day: date
) -> tuple[dict[str, _ServiceTariff], dict[str, str]]:
    """The prepared tariff in force on the period's last day for each service, and why any is unusable."""
    in_force = await tariff_controller.tariffs_in_force(session=session, tenant_id=tenant_id, on=last_day)
    tariffs: dict[str, _ServiceTariff] = {}
    problems: dict[str, str] = {}
    for service, row in in_force.items():
        try:
            prepared = calc.prepare_tariff(tariff_controller.calculator_tariff(tariff_controller.row_fields(row)))
        except calc.InvalidTariff as exc:
            problems[service] = f"tariff {row.id} is not valid: {exc}"
            continue
        tariffs[service] = _ServiceTariff(row.id, prepared)
    return tariffs, problems


# A `running` run whose heartbeat (one per committed batch) is older than this lost its worker: another
# worker claims it and resumes it. Keep it well above the longest batch (5 000 contracts take ~0.3 s).
DEFAULT_STALE_AFTER = timedelta(minutes=5)
# A run whose workers died this many times (say, it runs them out of memory) is not claimed again: failed.
MAX_CLAIMS = 5


class RunTakenOver(Conflict):
    """Another worker claimed the run (this one was presumed dead): this one stops, its open batch rolled back."""

    code = "billing_run_taken_over"


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a run: only the holder of the latest claim may commit batches."""

    run_id: int
    tenant_id: int
    claims: int


@dataclass
class _Progress:
    """What the committed batches did so far: the counts, contracts done and the cursor."""

    counts: RunCounts
    done: int
    after: int


async def queue_run(
    *,
    session: AsyncSession,
    tenant: Tenant,
    period: str,
    started_by: int | None = None,
    today: date | None = None,
) -> BillingRun:
    """Queue a bill run of `period` for a worker; the run of that period already queued or running is joined.

    `today` is the issue date (default: today in the tenant's time zone), fixed now for every batch.
    """
    issued_on = today or tenant_today(tenant)
    _validate_period(period, issued_on)
    tenant_id = tenant.id  # a rollback below expires the tenant object
    for _attempt in (1, 2):
        active = await session.scalar(
            select(BillingRun).where(
                BillingRun.tenant_id == tenant_id, BillingRun.period == period,
                BillingRun.status.in_(ACTIVE_RUN_STATUSES),
            ).execution_options(populate_existing=True)
        )
        if active is not None:
            return active
        run = BillingRun(
            tenant_id=tenant_id, period=period, status="queued", started_by=started_by, issued_on=issued_on
        )
        session.add(run)
        try:
            await session.commit()
        except IntegrityError:
            # Queued by another request meanwhile (the active-run index): join that one.
            await session.rollback()
            continue
        return await _get_run(session, tenant_id, run.id)
    raise Conflict("A bill run of this period is starting; read it in a moment.", code="billing_run_in_progress")


def _claimable(now: datetime, stale_after: timedelta) -> Any:
    """Queued, or running with a heartbeat older than `stale_after` (its worker died)."""
    return or_(
        BillingRun.status == "queued",
        and_(
            BillingRun.status == "running",
            or_(BillingRun.heartbeat_at.is_(None), BillingRun.heartbeat_at < now - stale_after),
        ),
    )


async def claim_run(
    *,
    session: AsyncSession,
    run_id: int | None = None,
    now: datetime | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> Claim | None:
    """Claim the oldest claimable run (or `run_id` only) with a conditional UPDATE; None if there is none.

    Two workers may pick the same candidate; the UPDATE guarded by the claim counter lets one win.
    """
    now = now or utcnow()
    await session.execute(
        update(BillingRun)
        .where(_claimable(now, stale_after), BillingRun.status == "running", BillingRun.claims >= MAX_CLAIMS)
        .values(status="failed", finished_at=now, error=f"abandoned: its worker stopped {MAX_CLAIMS} times")
        .execution_options(synchronize_session=False)
    )
    query = (
        select(BillingRun.id, BillingRun.tenant_id, BillingRun.claims)
        .where(_claimable(now, stale_after))
        .order_by(BillingRun.id)
        .limit(10)
    )
    if run_id is not None:
        query = query.where(BillingRun.id == run_id)
    for candidate_id, tenant_id, claims in (await session.execute(query)).all():
        taken = await session.execute(
            update(BillingRun)
            .where(BillingRun.id == candidate_id, BillingRun.claims == claims, _claimable(now, stale_after))
            .values(status="running", claims=claims + 1, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            await session.commit()
            return Claim(candidate_id, tenant_id, claims + 1)
    await session.commit()
    return None


async def run_period(
    *,
    session: AsyncSession,
    tenant: Tenant,
    period: str,
    started_by: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    today: date | None = None,
    on_progress: ProgressCallback | None = None,
    stop_after_batches: int | None = None,
) -> BillingRun:
    """Bill every active contract of the tenant for `period` in this process (the CLI); returns the finished run.

    Queues the run (or joins the one queued) and claims it; a run another worker is running is a 409.
    """
    run = await queue_run(session=session, tenant=tenant, period=period, started_by=started_by, today=today)
    claim = await claim_run(session=session, run_id=run.id)
    if claim is None:
        raise Conflict("A worker is running this period's bill run.", code="billing_run_in_progress")
    return await execute_run(
        session=session, claim=claim, batch_size=batch_size, on_progress=on_progress,
        stop_after_batches=stop_after_batches,
    )


async def execute_run(
    *,
    session: AsyncSession,
    claim: Claim,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
    stop_after_batches: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BillingRun:
    """Run a claimed run batch by batch from its cursor; returns it completed (or queued again if told to stop).

    `stop_after_batches` is a test hook that raises SimulatedCrash after that many committed batches,
    leaving the run `running` like a killed process. `should_stop` is asked between batches (SIGTERM):
    the run goes back to `queued` for the next worker.
    """
    run_id = claim.run_id
    row = await _get_run(session, claim.tenant_id, run_id)
    tenant = await session.get(Tenant, claim.tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.", code="not_found")
    issued_on = row.issued_on or tenant_today(tenant)
    parsed = Period.parse(row.period)
    progress = _Progress(
        RunCounts(row.billed, row.skipped, row.estimated, row.flagged, row.failed),
        row.contracts_done, row.last_contract_id,
    )
    try:
        tariffs, tariff_problems = await _load_tariffs(session, tenant.id, parsed.last_day)
        conn = await session.connection()
        dialect = conn.dialect
        context = _Run(
            tenant=_Tenant(tenant.id, tenant.name, tenant.locale),
            period=row.period,
            last_day=parsed.last_day,
            run_id=run_id,
            claims=claim.claims,
            issued_on=issued_on,
            due_on=issued_on + timedelta(days=tenant.payment_terms_days),
            tariffs=tariffs,
            tariff_problems=tariff_problems,
            batch_size=max(1, batch_size),
            invoices=FastInsert(dialect, Invoice.__table__, INVOICE_COLUMNS),  # type: ignore[arg-type]
            lines=FastInsert(dialect, InvoiceLine.__table__, LINE_COLUMNS),  # type: ignore[arg-type]
            readings=FastInsert(dialect, Reading.__table__, READING_COLUMNS),  # type: ignore[arg-type]
            outbox=FastInsert(dialect, Notification.__table__, OUTBOX_COLUMNS),  # type: ignore[arg-type]
        )
        with fewer_collections():
            finished = await _bill_all(session, context, progress, on_progress, stop_after_batches, should_stop)
        if not finished:
            await _finish(session, run_id, claim.claims, status="queued")
    except (SimulatedCrash, RunTakenOver):
        await session.rollback()
        raise
    except Exception as exc:
        await session.rollback()
        if is_transient_error(exc) or is_busy_error(exc):
            # The database was busy or failing over: hand the run back, the next poll resumes it.
            await _finish(session, run_id, claim.claims, status="queued")
        else:
            await _finish(session, run_id, claim.claims, status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    except BaseException:
        # Cancelled or interrupted (Ctrl-C): hand the run back for the next worker, if the database still answers.
        with contextlib.suppress(Exception):
            await session.rollback()
            await _finish(session, run_id, claim.claims, status="queued")
        raise
    return await _get_run(session, claim.tenant_id, run_id)


async def bill_contract(
    *,
    session: AsyncSession,
    tenant: Tenant,
    contract_id: int,
    period: str,
    final: bool = False,
    started_by: int | None = None,
    today: date | None = None,
) -> invoice_controller.InvoiceView:
    """Bill one contract for `period` now (a move-out's final bill); returns the new invoice.

    The same batch code as the run bills it (a batch of this one contract), recorded as a completed
    run of one contract. A contract that already has the period's invoice is a 409 `already_billed`,
    one the run could not bill a 409 `cannot_bill` with the run's reason. With `final`, the contract
    becomes `terminated` in the bill's own transaction.
    """
    issued_on = today or tenant_today(tenant)
    parsed = _validate_period(period, issued_on)
    tenant_id, due_on = tenant.id, issued_on + timedelta(days=tenant.payment_terms_days)
    run_tenant = _Tenant(tenant.id, tenant.name, tenant.locale)

    async def once() -> int:
        status = await session.scalar(
            select(Contract.status).where(Contract.id == contract_id, Contract.tenant_id == tenant_id)
        )
        if status is None:
            raise NotFound("No such contract.", code="not_found")
        if await session.scalar(
            select(Invoice.id).where(Invoice.contract_id == contract_id, Invoice.period == period)
        ) is not None:
            raise Conflict("The contract already has an invoice for this period.", code="already_billed")
        if status != "active":
            raise Conflict(f"The contract is {status}: only active contracts are billed.", code="contract_not_active")
        tariffs, problems = await _load_tariffs(session, tenant_id, parsed.last_day)
        now = utcnow()
        row = BillingRun(
            tenant_id=tenant_id, period=period, status="completed", started_by=started_by, issued_on=issued_on,
            contracts_total=1, contracts_done=1, last_contract_id=contract_id, finished_at=now, heartbeat_at=now,
        )
        session.add(row)
        await session.flush()
        dialect = (await session.connection()).dialect
        run = _Run(
            tenant=run_tenant, period=period, last_day=parsed.last_day, run_id=row.id, claims=row.claims,
            issued_on=issued_on, due_on=due_on, tariffs=tariffs, tariff_problems=problems, batch_size=1,
            invoices=FastInsert(dialect, Invoice.__table__, INVOICE_COLUMNS),  # type: ignore[arg-type]
            lines=FastInsert(dialect, InvoiceLine.__table__, LINE_COLUMNS),  # type: ignore[arg-type]
            readings=FastInsert(dialect, Reading.__table__, READING_COLUMNS),  # type: ignore[arg-type]
            outbox=FastInsert(dialect, Notification.__table__, OUTBOX_COLUMNS),  # type: ignore[arg-type]
        )
        # A batch of exactly this contract: ids after contract_id - 1 up to contract_id.
        counts, _seen = await _bill_batch(session, run, contract_id - 1, contract_id)
        if counts.billed != 1:
            reason = await session.scalar(
                select(BillingRunItem.reason).where(BillingRunItem.billing_run_id == row.id)
            )
            raise Conflict(f"The contract cannot be billed: {reason}.", code="cannot_bill")
        await session.execute(
            update(BillingRun).where(BillingRun.id == row.id)
            .values(billed=1, estimated=counts.estimated, flagged=counts.flagged)
            .execution_options(synchronize_session=False)
        )
        if final:
            await session.execute(
                update(Contract).where(Contract.id == contract_id, Contract.status == "active")
                .values(status="terminated", updated_at=now)
                .execution_options(synchronize_session=False)
            )
        invoice_id = await session.scalar(
            select(Invoice.id).where(Invoice.contract_id == contract_id, Invoice.period == period)
        )
        await session.commit()
        assert invoice_id is not None
        return invoice_id

    async def attempt() -> int:
        for tries in (1, 2):
            try:
                return await once()
            except (Conflict, NotFound):
                await session.rollback()
                raise
            except (IntegrityError, _CarriedInvoiceTaken):
                # A run billed this contract meanwhile (then it is a 409 next time), or a payment or
                # another bill took an invoice or charge this bill used: once more.
                await session.rollback()
                if tries == 2:
                    raise
        raise AssertionError("unreachable")

    invoice_id = await retry_unit_of_work(attempt, rollback=session.rollback)
    if tenant in session:
        # A rollback on the way expired it.
        await session.refresh(tenant)
    return await invoice_controller.get_invoice(session=session, tenant=tenant, invoice_id=invoice_id)


async def _finish(
    session: AsyncSession, run_id: int, claims: int, *, status: str, error: str | None = None
) -> None:
    """End (or hand back) a run this worker still holds; a run another worker took over is left to it."""
    values: dict[str, Any] = {"status": status, "error": error}
    if status != "queued":
        values["finished_at"] = utcnow()
    await session.execute(
        update(BillingRun)
        .where(BillingRun.id == run_id, BillingRun.claims == claims, BillingRun.status == "running")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def get_run(*, session: AsyncSession, tenant: Tenant, run_id: int) -> BillingRun:
    """One bill run of the tenant, freshly read; 404 otherwise."""
    return await _get_run(session, tenant.id, run_id)


async def _get_run(session: AsyncSession, tenant_id: int, run_id: int) -> BillingRun:
    run = await session.scalar(
        select(BillingRun)
        .where(BillingRun.id == run_id, BillingRun.tenant_id == tenant_id)
        .execution_options(populate_existing=True)
    )
    if run is None:
        raise NotFound("No such bill run.", code="not_found")
    return run


async def list_run_items(
    *, session: AsyncSession, tenant: Tenant, run_id: int, limit: int = 50, cursor: str | None = None
) -> Page[BillingRunItem]:
    """The contracts a run skipped or failed, with the reason, in contract order."""
    await get_run(session=session, tenant=tenant, run_id=run_id)
    return await paginate(
        session,
        select(BillingRunItem).where(BillingRunItem.billing_run_id == run_id),
        keys=[SortKey(BillingRunItem.contract_id), SortKey(BillingRunItem.id)],
        limit=limit,
        cursor=cursor,
    )


async def _bill_all(
    session: AsyncSession,
    run: _Run,
    progress: _Progress,
    on_progress: ProgressCallback | None,
    stop_after_batches: int | None,
    should_stop: Callable[[], bool] | None,
) -> bool:
    """Bill the batches after the cursor; True when the run completed, False when told to stop."""
    tenant_id = run.tenant.id
    total = await session.scalar(
        select(func.count()).select_from(Contract).where(Contract.tenant_id == tenant_id, Contract.status == "active")
    ) or 0
    await _beat(session, run, contracts_total=total)
    await session.commit()
    if on_progress is not None:
        on_progress(min(progress.done, total), total)
    batches = 0
    while True:
        if should_stop is not None and should_stop():
            return False
        upper = await session.scalar(
            select(Contract.id)
            .where(Contract.tenant_id == tenant_id, Contract.status == "active", Contract.id > progress.after)
            .order_by(Contract.id)
            .offset(run.batch_size - 1)
            .limit(1)
        )
        after = progress.after
        # A batch is one unit of work: a deadlock victim or a transient Azure SQL error rolls it
        # back and runs it again (bounded, with backoff), as does the race handled in _bill_batch_once.
        await retry_unit_of_work(
            functools.partial(_bill_batch_once, session, run, after, upper, progress), rollback=session.rollback
        )
        batches += 1
        if on_progress is not None:
            on_progress(min(progress.done, total), total)
        if upper is None:
            return True
        if stop_after_batches is not None and batches >= stop_after_batches:
            raise SimulatedCrash(f"stopped after {batches} batches")


async def _beat(session: AsyncSession, run: _Run, **values: Any) -> None:
    """Write the run's progress and heartbeat, if this worker still holds the run; RunTakenOver otherwise."""
    written = await session.execute(
        update(BillingRun)
        .where(BillingRun.id == run.run_id, BillingRun.claims == run.claims, BillingRun.status == "running")
        .values(heartbeat_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:
        raise RunTakenOver(f"bill run {run.run_id} was claimed by another worker", code="billing_run_taken_over")


async def _bill_batch_once(
    session: AsyncSession, run: _Run, after: int, upper: int | None, progress: _Progress
) -> None:
    """Bill one batch and commit it with the run's counts, cursor and heartbeat; redone once when another
    run or a payment raced it. `progress` moves only once the batch is committed."""
    for attempt in (1, 2):
        try:
            counts, seen = await _bill_batch(session, run, after, upper)
            total = RunCounts(**vars(progress.counts))
            total.add(counts)
            done = progress.done + seen
            values: dict[str, Any] = {**vars(total), "contracts_done": done}
            if upper is not None:
                values["last_contract_id"] = upper
            else:
                # The last batch completes the run in its own transaction: nothing is ever counted twice.
                values.update(status="completed", finished_at=utcnow(), error=None)
            await _beat(session, run, **values)
            await session.commit()
        except (IntegrityError, _CarriedInvoiceTaken):
            # Another run billed some of these contracts meanwhile, or a payment took an invoice
            # the batch carried: start the batch again, and this time they show up as already
            # billed, or the invoice as being paid (so it is not carried).
            await session.rollback()
            if attempt == 2:
                raise
            continue
        progress.counts, progress.done = total, done
        if upper is not None:
            progress.after = upper
        return
    raise AssertionError("unreachable")


@dataclass(slots=True)
class _Contract:
    """One contract of the batch as the main SELECT found it."""

    contract_id: int
    contract_number: str
    customer_id: int
    service: str
    stratum: str
    customer_name: str
    email: str | None
    locale: str
    user_id: int | None
    meter_id: int
    reading_id: int | None
    consumption: Decimal | None
    flags: str


def _batch_select(run: _Run, after: int, upper: int | None) -> Any:
    """Contracts of the batch with customer, login, active meter, this period's reading and invoice."""
    period = run.period
    login = customer_login_id()
    stmt = (
        select(
            Contract.id, Contract.contract_number, Contract.customer_id, Contract.service, Contract.stratum,
            Customer.name, Customer.email, Customer.locale, login,
            Meter.id, Reading.id, Reading.consumption, Reading.flags, Invoice.id,
        )
        .select_from(Contract)
        .join(Customer, Customer.id == Contract.customer_id)
        .outerjoin(Meter, and_(Meter.contract_id == Contract.id, Meter.status == "active"))
        .outerjoin(Reading, and_(Reading.meter_id == Meter.id, Reading.period == period))
        .outerjoin(Invoice, and_(Invoice.contract_id == Contract.id, Invoice.period == period))
        .where(Contract.tenant_id == run.tenant.id, Contract.status == "active", Contract.id > after)
        .order_by(Contract.id, Meter.id)
    )
    if upper is not None:
        stmt = stmt.where(Contract.id <= upper)
    return stmt


def _batch_contracts(run: _Run, after: int, upper: int | None) -> Any:
    """The WHERE clause of the batch's active contracts.

    Per-batch queries on invoices join from contracts and are scoped here rather than by their own
    tenant_id: SQLite (without ANALYZE statistics) would otherwise pick their (tenant_id, ...) indexes
    and scan every row of the tenant for each batch, a cost that grows with the run.
    """
    bounds = [Contract.tenant_id == run.tenant.id, Contract.status == "active", Contract.id > after]
    if upper is not None:
        bounds.append(Contract.id <= upper)
    return and_(*bounds)


async def _bill_batch(session: AsyncSession, run: _Run, after: int, upper: int | None) -> tuple[RunCounts, int]:
    """Bill one batch of contracts inside the current transaction; returns its counts and size."""
    counts = RunCounts()
    conn = await session.connection()
    rows = (await conn.execute(_batch_select(run, after, upper))).all()

    items: list[dict[str, Any]] = []
    ready: list[_Contract] = []
    to_estimate: list[_Contract] = []
    tariffs = run.tariffs
    seen = 0
    previous_id = None
    several: set[int] = set()
    # Unpacked in `_batch_select`'s column order: names without a per-row attribute lookup.
    for (
        contract_id, contract_number, customer_id, service, stratum, customer_name, email, locale, user_id,
        meter_id, reading_id, consumption, flags, invoice_id,
    ) in rows:
        if contract_id == previous_id:
            several.add(contract_id)
            continue
        previous_id = contract_id
        seen += 1
        if invoice_id is not None:
            counts.skipped += 1  # already billed for this period
            continue
        if meter_id is None:
            items.append(_item(run, contract_id, "failed", "no active meter"))
            continue
        if service not in tariffs:
            reason = run.tariff_problems.get(service) or f"no {service} tariff in force on {run.last_day}"
            items.append(_item(run, contract_id, "failed", reason))
            continue
        contract = _Contract(
            contract_id, contract_number, customer_id, service, stratum, customer_name, email, locale, user_id,
            meter_id, reading_id, consumption, flags or "",
        )
        (ready if contract.reading_id is not None else to_estimate).append(contract)
    if several:
        # A contract billed on one meter while another active meter runs would under-bill it.
        items += [_item(run, cid, "failed", "more than one active meter") for cid in sorted(several)]
        ready = [c for c in ready if c.contract_id not in several]
        to_estimate = [c for c in to_estimate if c.contract_id not in several]

    if to_estimate:
        estimated, skipped_items = await _estimate(conn, run, to_estimate)
        items += skipped_items
        counts.estimated += len(estimated)
        ready += estimated
        ready.sort(key=lambda c: c.contract_id)

    arrears = await _arrears(conn, run, after, upper) if ready else {}
    charges = await _pending_charges(conn, run, after, upper) if ready else {}
    # Open credit balances go on the bill after the contract's own credits (credit_balance_controller).
    credits = await credit_balance_controller.open_credits(conn, _batch_contracts(run, after, upper)) if ready else {}
    bills: list[_Bill] = []
    zero = Decimal(0)
    for contract in ready:
        tariff = tariffs[contract.service]
        owed = arrears.get(contract.contract_id)
        pending = charges.get(contract.contract_id)
        held = credits.get(contract.contract_id)
        if held:
            pending = [*(pending or ()), *held]
        try:
            # The one computation of a contract's bill for a period (a re-bill reproduces it: rebill_controller).
            charged = bill_with_charges(
                tariff=tariff.prepared, stratum=contract.stratum, consumption=contract.consumption,
                arrears=owed.amount if owed else zero, arrears_months=owed.months if owed else 1,
                charges=pending or (),
            )
            bill = charged.bill
            entry = _Bill(
                contract, bill, calc.round_money(owed.amount, bill.currency) if owed else zero,
                owed.invoice_ids if owed else (), charged.applied,
            )
        except (ValueError, TypeError) as exc:
            items.append(_item(run, contract.contract_id, "failed", f"cannot compute the bill: {exc}"[:500]))
            continue
        if bill.total < 0:
            items.append(_item(run, contract.contract_id, "failed", f"the bill total is negative ({bill.total})"))
            continue
        bills.append(entry)

    if bills:
        await _write_invoices(session, conn, run, bills, counts)
    if items:
        await conn.execute(insert(BillingRunItem), items)
        for item in items:
            if item["outcome"] == "failed":
                counts.failed += 1
            else:
                counts.skipped += 1
    return counts, seen


@dataclass(frozen=True, slots=True)
class _Owed:
    """A contract's carried balance: the amount, the late-fee months and the invoices it comes from."""

    amount: Decimal
    months: int
    invoice_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Bill:
    contract: _Contract
    bill: calc.Bill
    arrears: Decimal
    carried: tuple[int, ...]
    # The one-off charges and credits the bill applied, with the amount of each it took.
    charges: tuple[tuple[PendingCharge, Decimal], ...] = ()


def _item(run: _Run, contract_id: int, outcome: str, reason: str) -> dict[str, Any]:
    return {"billing_run_id": run.run_id, "contract_id": contract_id, "outcome": outcome, "reason": reason}


async def _estimate(
    conn: AsyncConnection, run: _Run, contracts: list[_Contract]
) -> tuple[list[_Contract], list[dict[str, Any]]]:
    """Write estimated readings for meters without one this period; contracts with no history are skipped."""
    period = run.period
    by_meter = {c.meter_id: c for c in contracts}
    meter_ids = sorted(by_meter)
    history: dict[int, list[Any]] = {}
    meters: dict[int, Any] = {}
    for start in range(0, len(meter_ids), IN_CHUNK):
        chunk = meter_ids[start:start + IN_CHUNK]
        result = await conn.execute(
            select(
                Meter.id, Meter.register_digits, Meter.multiplier, Meter.initial_value,
                Reading.period, Reading.value, Reading.consumption, Reading.kind,
            )
            .select_from(Meter)
            .outerjoin(Reading, and_(Reading.meter_id == Meter.id, Reading.period < period))
            .where(Meter.id.in_(chunk))
            .order_by(Meter.id, Reading.period.desc())
        )
        for row in result:
            meters.setdefault(row.id, row)
            if row.period is not None:
                history.setdefault(row.id, []).append(row)

    now = run.readings.converter("created_at")(utcnow())
    num = run.readings.converter("value")
    reading_rows = []
    estimated: dict[int, tuple[Decimal, str]] = {}
    skipped: list[dict[str, Any]] = []
    for meter_id in meter_ids:
        meter = meters[meter_id]
        past = history.get(meter_id, [])
        previous_value = past[0].value if past else meter.initial_value
        # "Actual" history is every real read, corrected ones included; earlier estimates are not.
        actual = [(r.period, r.consumption) for r in past if r.kind != "estimated"]
        estimate = estimate_reading(
            period=period, previous_value=previous_value, history=actual,
            register_digits=meter.register_digits, multiplier=meter.multiplier,
        )
        if estimate is None:
            skipped.append(_item(run, by_meter[meter_id].contract_id, "skipped", "no actual readings to estimate from"))
            continue
        flags = join_flags(
            vee_flags(
                consumption=estimate.consumption,
                history=[c for _, c in actual],
                rolled_over=estimate.value < previous_value,
            )
        )
        estimated[meter_id] = (estimate.consumption, flags)
        reading_rows.append(
            (
                run.tenant.id, meter_id, period, num(estimate.value), "estimated", num(estimate.consumption),
                flags, now, now,
            )
        )
    if not reading_rows:
        return [], skipped
    await run.readings.run(conn, reading_rows)
    reading_ids: dict[int, int] = {}
    written = sorted(estimated)
    for start in range(0, len(written), IN_CHUNK):
        # By the unique (meter_id, period) key; the tenant is checked on the rows, since a tenant_id
        # condition would make SQLite scan the tenant's whole period through ix_readings_tenant_id_period.
        found = await conn.execute(
            select(Reading.meter_id, Reading.id, Reading.tenant_id).where(
                Reading.meter_id.in_(written[start:start + IN_CHUNK]), Reading.period == period
            )
        )
        reading_ids.update(
            (meter_id, reading_id) for meter_id, reading_id, tenant_id in found if tenant_id == run.tenant.id
        )
    ready = []
    for meter_id, (consumption, flags) in estimated.items():
        contract = by_meter[meter_id]
        contract.reading_id = reading_ids[meter_id]
        contract.consumption = consumption
        contract.flags = flags
        ready.append(contract)
    return ready, skipped


def _being_paid() -> Any:
    """The invoice is on a coupon that a payment attempt holds right now (a card charge or a pending webhook)."""
    return exists(
        select(CouponInvoice.invoice_id)
        .join(Coupon, Coupon.id == CouponInvoice.coupon_id)
        .where(CouponInvoice.invoice_id == Invoice.id, Coupon.status == "processing")
    )


async def _arrears(conn: AsyncConnection, run: _Run, after: int, upper: int | None) -> dict[int, _Owed]:
    """Per contract: the unpaid balance of its past-due, undisputed, not yet carried invoices that no payment
    holds right now, the late-fee months (of the oldest one) and their ids."""
    result = await conn.execute(
        select(Invoice.contract_id, Invoice.id, Invoice.amount_due, Invoice.due_on)
        .select_from(Contract)
        .join(Invoice, Invoice.contract_id == Contract.id)
        .where(
            _batch_contracts(run, after, upper),
            Invoice.status.in_(OPEN_STATUSES),
            Invoice.due_on < run.issued_on,
            Invoice.disputed == false(),
            Invoice.carried_into_invoice_id.is_(None),
            # Frozen by a current payment agreement: no arrears, no late fee (its instalments have their own coupons).
            Invoice.agreement_id.is_(None),
            Invoice.period < run.period,
            Invoice.amount_due > 0,
            ~_being_paid(),
        )
        .order_by(Invoice.contract_id, Invoice.due_on)
    )
    owed: dict[int, _Owed] = {}
    for contract_id, invoice_id, amount_due, due_on in result:
        months = whole_months_between(due_on, run.issued_on)
        known = owed.get(contract_id)
        if known is not None:
            months = max(known.months, months)
            owed[contract_id] = _Owed(known.amount + amount_due, months, (*known.invoice_ids, invoice_id))
        else:
            owed[contract_id] = _Owed(amount_due, months, (invoice_id,))
    return owed


async def _pending_charges(
    conn: AsyncConnection, run: _Run, after: int, upper: int | None
) -> dict[int, list[PendingCharge]]:
    """Per contract of the batch: its pending one-off charges and credits, oldest first (one query)."""
    result = await conn.execute(
        select(
            ContractCharge.contract_id, ContractCharge.id, ContractCharge.description,
            ContractCharge.amount, ContractCharge.taxable,
        )
        .select_from(Contract)
        .join(ContractCharge, ContractCharge.contract_id == Contract.id)
        .where(_batch_contracts(run, after, upper), ContractCharge.status == "pending")
        .order_by(ContractCharge.contract_id, ContractCharge.id)
    )
    pending: dict[int, list[PendingCharge]] = {}
    for contract_id, charge_id, description, amount, taxable in result:
        pending.setdefault(contract_id, []).append(PendingCharge(charge_id, description, amount, bool(taxable)))
    return pending


async def _bill_charges(conn: AsyncConnection, run: _Run, billed: list[tuple[int, int, PendingCharge, Decimal]]) -> None:
    """Mark the charges the batch's invoices applied as billed by them, exactly once, and carry forward
    the part of a credit an invoice could not take as a new pending credit.

    Each UPDATE only takes a charge still pending; the check after it finds a charge another bill took
    meanwhile (its invoice is not ours), and the batch is redone without it.
    """
    now = utcnow()
    table = ContractCharge.__table__
    await conn.execute(
        update(table)
        .where(table.c.id == bindparam("charge_id"), table.c.status == "pending")
        .values(status="billed", invoice_id=bindparam("by"), billed_amount=bindparam("applied"), billed_at=now),
        [{"charge_id": c.key, "by": invoice_id, "applied": applied} for _, invoice_id, c, applied in billed],
    )
    expected = {c.key: invoice_id for _, invoice_id, c, _ in billed}
    taken = await first_unexpected(conn, ContractCharge.id, ContractCharge.invoice_id, expected)
    if taken is not None:
        raise _ChargeTaken(f"charge {taken[0]} was billed by invoice {taken[1]} while the batch ran")
    rest = [
        {
            "tenant_id": run.tenant.id, "contract_id": contract_id, "description": c.description,
            "amount": c.amount - applied, "taxable": c.taxable, "status": "pending", "carried_from_id": c.key,
            "created_at": now,
        }
        for contract_id, _, c, applied in billed
        if applied != c.amount
    ]
    if rest:
        await conn.execute(insert(ContractCharge), rest)


async def _close_carried(conn: AsyncConnection, tenant_id: int, carried: list[int]) -> None:
    """Cancel the active coupons of the invoices just carried, and check that no payment took one meanwhile.

    A carried invoice's balance is now on the new invoice, so an older coupon for it would charge it
    twice. The check closes the race with a payment claiming a coupon between the arrears SELECT and
    the cancel (only possible outside SQLite, whose writers are serialised): the batch is redone.
    """
    now = utcnow()
    for start in range(0, len(carried), IN_CHUNK):
        chunk = carried[start:start + IN_CHUNK]
        # Coupon ids first, by the coupon_invoices invoice index: one UPDATE with a subquery lets SQLite
        # walk every active coupon of every tenant through the status index instead.
        coupon_ids = sorted(set(
            (await conn.scalars(select(CouponInvoice.coupon_id).where(CouponInvoice.invoice_id.in_(chunk)))).all()
        ))
        for first in range(0, len(coupon_ids), IN_CHUNK):
            await conn.execute(
                update(Coupon)
                .where(
                    Coupon.id.in_(coupon_ids[first:first + IN_CHUNK]),
                    Coupon.tenant_id == tenant_id,
                    Coupon.status == "active",
                )
                .values(status="cancelled", cancelled_at=now, cancel_reason="invoice_carried")
            )
        taken = await conn.scalar(
            select(Invoice.id)
            .where(Invoice.id.in_(chunk), or_(Invoice.status.not_in(OPEN_STATUSES), _being_paid()))
            .limit(1)
        )
        if taken is not None:
            raise _CarriedInvoiceTaken(f"invoice {taken} was claimed by a payment while the batch carried it")


async def _write_invoices(
    session: AsyncSession,
    conn: AsyncConnection,
    run: _Run,
    bills: list[_Bill],
    counts: RunCounts,
) -> None:
    """Number, insert and announce the batch's invoices with their lines."""
    tenant = run.tenant
    first = await sequence_controller.reserve(
        session=session, tenant_id=tenant.id, name=INVOICE_SEQUENCE, count=len(bills)
    )
    invoices = run.invoices
    num = invoices.converter("total")
    quantity = invoices.converter("consumption")
    issued_on = invoices.converter("issued_on")(run.issued_on)
    due_on = invoices.converter("due_on")(run.due_on)
    created_at = invoices.converter("created_at")(utcnow())
    not_disputed = invoices.converter("disputed")(False)
    year = run.issued_on.year
    period = run.period
    tenant_id = tenant.id
    run_id = run.run_id
    invoice_rows = []
    numbers = [invoice_number(year, first + offset) for offset in range(len(bills))]
    for number, entry in zip(numbers, bills):
        contract, bill = entry.contract, entry.bill
        total = num(bill.total)
        invoice_rows.append((
            tenant_id, number, contract.contract_id, contract.customer_id, run_id,
            run.tariffs[contract.service].tariff_id, contract.reading_id, period, issued_on, due_on, "issued",
            not_disputed, bill.currency, quantity(contract.consumption), num(entry.arrears),
            num(bill.subtotal), num(bill.tax), total, total, created_at,
            invoice_reference(number),
        ))
    await invoices.run(conn, invoice_rows)

    ids: dict[str, int] = {}
    for start in range(0, len(numbers), IN_CHUNK):
        found = await conn.execute(
            select(Invoice.number, Invoice.id).where(
                Invoice.tenant_id == tenant_id, Invoice.number.in_(numbers[start:start + IN_CHUNK])
            )
        )
        ids.update(found.all())
    lines = run.lines
    quantity = lines.converter("quantity")
    price = lines.converter("unit_price")
    amount = lines.converter("amount")
    line_rows = []
    append = line_rows.append
    carried_rows = []
    charge_rows: list[tuple[int, int, PendingCharge, Decimal]] = []
    credit_rows: list[tuple[str, int, str, HeldCredit, Decimal]] = []
    outbox = run.outbox
    payload = outbox.converter("payload")
    now = outbox.converter("created_at")(utcnow())
    tenant_name = run.tenant.name
    tenant_locale = run.tenant.locale
    due_date = run.due_on.isoformat()
    messages = []
    flagged = 0
    for number, entry in zip(numbers, bills):
        contract, bill, carried = entry.contract, entry.bill, entry.carried
        invoice_id = ids[number]
        for position, line in enumerate(bill.lines, start=1):
            append((
                invoice_id, position, line.kind, line.description,
                quantity(line.quantity), price(line.unit_price), amount(line.amount),
            ))
        if carried:
            carried_rows += [{"old_id": old, "new_id": invoice_id} for old in carried]
        if entry.charges:
            charge_rows += [
                (contract.contract_id, invoice_id, c, applied) for c, applied in entry.charges if not isinstance(c, HeldCredit)
            ]
            credit_rows += [
                (contract.contract_number, invoice_id, number, c, applied)
                for c, applied in entry.charges if isinstance(c, HeldCredit)
            ]
        if contract.flags:
            flagged += 1
        if contract.email:
            messages.append((
                tenant_id, f"{INVOICE_ISSUED}:{invoice_id}", INVOICE_ISSUED, "email", contract.user_id,
                contract.customer_id, contract.email, contract.locale or tenant_locale,
                payload({
                    "customer_name": contract.customer_name,
                    "tenant_name": tenant_name,
                    "invoice_id": invoice_id,
                    "invoice_number": number,
                    "contract_number": contract.contract_number,
                    "period": period,
                    "amount_due": str(bill.total),
                    "due_date": due_date,
                }),
                "pending", 0, now, now,
            ))
    await lines.run(conn, line_rows)
    if carried_rows:
        # Lock order: coupons before invoices, as a payment's settlement takes them (README, "Lock order").
        await _close_carried(conn, tenant_id, [row["old_id"] for row in carried_rows])
        table = Invoice.__table__
        await conn.execute(
            update(table)
            .where(table.c.id == bindparam("old_id"), table.c.tenant_id == tenant_id)
            .values(carried_into_invoice_id=bindparam("new_id")),
            carried_rows,
        )
    if charge_rows:
        await _bill_charges(conn, run, charge_rows)
    if credit_rows:
        try:
            await credit_balance_controller.apply_credits(session, conn, tenant_id=tenant_id, applied=credit_rows, now=utcnow())
        except CreditTaken as exc:
            raise _ChargeTaken(str(exc)) from exc  # a refund took from a credit meanwhile: the batch is redone
    await outbox.run(conn, messages)
    counts.billed += len(bills)
    counts.flagged += flagged

"""The background worker: dispatches the outbox every poll interval and runs the periodic jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as random_module
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from controllers import (
    agreement_controller,
    billing_run_controller,
    coupon_controller,
    invoice_controller,
    notification_controller,
    service_order_controller,
)
from controllers.notification_controller import DeliveryPolicy, DispatchReport
from models.base_model import utcnow

log = logging.getLogger("cuponera.worker")

STOP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class PeriodicJob:
    """A periodic job: its name and a coroutine function called as `run(session=..., now=...)`."""

    name: str
    run: Callable[..., Awaitable[Any]]


DEFAULT_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("expire-coupons", coupon_controller.expire_coupons),
    # Each tenant's own date at `now` decides what is past due.
    PeriodicJob("mark-overdue", invoice_controller.mark_overdue),
    PeriodicJob("coupon-reminders", coupon_controller.queue_expiry_reminders),
    # Payment agreements: due-soon reminders, overdue instalments, broken agreements (whose invoices are
    # arrears again, so before the suspensions).
    PeriodicJob("agreements", agreement_controller.run_agreements),
    # After mark-overdue; each tenant's own date at `now` decides how long an invoice has been unpaid.
    PeriodicJob("suspensions", service_order_controller.order_suspensions),
)


@dataclass(frozen=True)
class BillRunPolicy:
    """How the worker runs queued bill runs: batch size, and when a silent run counts as dead."""

    batch_size: int = billing_run_controller.DEFAULT_BATCH_SIZE
    stale_after: timedelta = billing_run_controller.DEFAULT_STALE_AFTER


@dataclass(frozen=True)
class WorkerConfig:
    """How often the worker dispatches and runs jobs, the delivery policy and the bill-run policy."""

    poll_seconds: float = 5.0
    jobs_seconds: float = 60.0
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    bill_runs: BillRunPolicy = field(default_factory=BillRunPolicy)


@dataclass
class CycleReport:
    """What one worker cycle did: the jobs that ran or were skipped, and the dispatch counts."""

    jobs_run: list[str] = field(default_factory=list)
    jobs_failed: list[str] = field(default_factory=list)
    dispatch: DispatchReport | None = None


async def run_jobs(
    *, sql: SqlClient, jobs: Sequence[PeriodicJob] = DEFAULT_JOBS, now: datetime | None = None
) -> CycleReport:
    """Run each job in its own transaction; one failing job does not stop the others."""
    now = now or utcnow()
    report = CycleReport()
    for job in jobs:
        try:
            async with sql.session(write=True) as session:
                await job.run(session=session, now=now)
                await session.commit()
        except Exception:
            log.exception("job %s failed", job.name)
            report.jobs_failed.append(job.name)
        else:
            report.jobs_run.append(job.name)
    return report


async def run_cycle(
    *,
    sql: SqlClient,
    smtp: SmtpClient,
    config: WorkerConfig,
    jobs: Sequence[PeriodicJob] = DEFAULT_JOBS,
    with_jobs: bool = True,
    now: datetime | None = None,
    random: Callable[[], float] = random_module.random,
    stop: asyncio.Event | None = None,
) -> CycleReport:
    """One cycle: the periodic jobs (which may queue messages), then a dispatch of everything due (until `stop`)."""
    report = await run_jobs(sql=sql, jobs=jobs, now=now) if with_jobs else CycleReport()
    report.dispatch = await notification_controller.dispatch_due(
        sql=sql, smtp=smtp, policy=config.policy, now=now, random=random, stop=stop
    )
    return report


async def run_bill_runs(*, sql: SqlClient, policy: BillRunPolicy, stop: asyncio.Event | None = None) -> list[int]:
    """Claim and run queued (or abandoned) bill runs one after the other until none is left or `stop` is set.

    Each run is executed from its cursor, one committed batch at a time, so the database is never held
    longer than a batch. Returns the ids of the runs this call completed. A run that stops on an error
    (`failed`, or handed back as `queued` when the database was busy) is logged and ends the call; a
    run another worker took over is left to it.
    """
    finished: list[int] = []
    while stop is None or not stop.is_set():
        async with sql.session_scope(write=True) as session:
            claim = await billing_run_controller.claim_run(session=session, stale_after=policy.stale_after)
            if claim is None:
                return finished
            log.info("bill run %d claimed (claim %d)", claim.run_id, claim.claims)
            try:
                run = await billing_run_controller.execute_run(
                    session=session, claim=claim, batch_size=policy.batch_size,
                    should_stop=stop.is_set if stop is not None else None,
                )
            except billing_run_controller.RunTakenOver:
                log.warning("bill run %d was taken over by another worker", claim.run_id)
                continue
            except Exception:
                # Failed, or handed back when the database was busy: look again at the next poll, not at once.
                log.exception("bill run %d stopped on an error", claim.run_id)
                return finished
            log.info("bill run %d %s: billed %d of %s contracts", run.id, run.status, run.billed, run.contracts_total)
            if run.status == "completed":
                finished.append(run.id)
    return finished


async def run_bill_run_loop(*, sql: SqlClient, config: WorkerConfig, stop: asyncio.Event) -> None:
    """Until `stop`: run whatever bill runs are claimable, then look again after a poll interval."""
    while not stop.is_set():
        try:
            await run_bill_runs(sql=sql, policy=config.bill_runs, stop=stop)
        except Exception:  # the database is down; try again next round
            log.exception("bill run loop failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=config.poll_seconds)


async def run_worker(
    *,
    sql: SqlClient,
    smtp: SmtpClient,
    config: WorkerConfig,
    stop: asyncio.Event,
    jobs: Sequence[PeriodicJob] = DEFAULT_JOBS,
) -> None:
    """Until `stop` is set: bill runs as they are queued, alongside the outbox loop (see `_dispatch_loop`)."""
    bill_runs = asyncio.create_task(run_bill_run_loop(sql=sql, config=config, stop=stop), name="cuponera-bill-runs")
    try:
        await _dispatch_loop(sql=sql, smtp=smtp, config=config, stop=stop, jobs=jobs)
    finally:
        stop.set()
        await bill_runs


async def _dispatch_loop(
    *,
    sql: SqlClient,
    smtp: SmtpClient,
    config: WorkerConfig,
    stop: asyncio.Event,
    jobs: Sequence[PeriodicJob],
) -> None:
    """Loop until `stop` is set: dispatch every poll interval, jobs every jobs interval; errors never end it."""
    log.info("worker started: dispatch every %gs, jobs every %gs", config.poll_seconds, config.jobs_seconds)
    next_jobs_at = time.monotonic()
    while not stop.is_set():
        with_jobs = time.monotonic() >= next_jobs_at
        if with_jobs:
            next_jobs_at = time.monotonic() + config.jobs_seconds
        try:
            report = await run_cycle(sql=sql, smtp=smtp, config=config, jobs=jobs, with_jobs=with_jobs, stop=stop)
            if report.dispatch and report.dispatch.claimed:
                log.info("dispatch: %s", report.dispatch)
        except Exception:  # the database or a job is down; try again next round
            log.exception("worker cycle failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=config.poll_seconds)
    log.info("worker stopped")


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set `stop`: the message being sent finishes, the rest of its batch is handed back."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        log.info("%s received: finishing the current message, then exiting", signum.name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)


class BackgroundWorker:
    """The worker as a task inside the web server (`make run`), stopped cleanly at shutdown."""

    def __init__(self, task: asyncio.Task[None], stop: asyncio.Event) -> None:
        self.task = task
        self._stop = stop

    @classmethod
    def start(cls, *, sql: SqlClient, smtp: SmtpClient, config: WorkerConfig) -> BackgroundWorker:
        """Start the loop on the running event loop."""
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker(sql=sql, smtp=smtp, config=config, stop=stop), name="cuponera-worker")
        return cls(task, stop)

    async def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Let the current cycle finish (a half-sent message is retried later anyway), then cancel."""
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=timeout)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

"""The background worker: dispatches the outbox every poll interval and runs the periodic jobs."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random as random_module
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from controllers import notification_controller
from controllers.notification_controller import DeliveryPolicy, DispatchReport
from models.base_model import utcnow
from models.tenant_model import Tenant

log = logging.getLogger("cuponera.worker")

STOP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class PeriodicJob:
    """A job found by name at run time, called as `function(session=..., now=...)` or `(..., today=...)`."""

    name: str
    module: str
    function: str
    clock_argument: str = "now"  # "now" (aware UTC datetime) or "today" (a date)


# Other areas own these functions; a job whose module or function is missing is skipped.
DEFAULT_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("expire-coupons", "controllers.coupon_controller", "expire_coupons"),
    PeriodicJob("mark-overdue", "controllers.invoice_controller", "mark_overdue", clock_argument="today"),
    PeriodicJob("coupon-reminders", "controllers.coupon_controller", "queue_expiry_reminders"),
)


@dataclass(frozen=True)
class WorkerConfig:
    """How often the worker dispatches and runs jobs, and the delivery policy."""

    poll_seconds: float = 5.0
    jobs_seconds: float = 60.0
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)


@dataclass
class CycleReport:
    """What one worker cycle did: the jobs that ran or were skipped, and the dispatch counts."""

    jobs_run: list[str] = field(default_factory=list)
    jobs_skipped: list[str] = field(default_factory=list)
    jobs_failed: list[str] = field(default_factory=list)
    dispatch: DispatchReport | None = None


def _resolve(job: PeriodicJob) -> Callable[..., Awaitable[Any]] | None:
    """The job's function, or None while its module or function does not exist yet."""
    try:
        module = importlib.import_module(job.module)
    except ModuleNotFoundError as exc:
        if exc.name != job.module:
            raise  # the module exists but one of its own imports is broken: that is a bug to see
        log.debug("job %s skipped: %s is not installed", job.name, job.module)
        return None
    function = getattr(module, job.function, None)
    if function is None:
        log.debug("job %s skipped: %s.%s does not exist", job.name, job.module, job.function)
    return function


async def earliest_local_date(*, sql: SqlClient, now: datetime) -> date:
    """Today's date in the tenant time zone that is furthest behind, so no tenant's 'today' comes early."""
    async with sql.session() as session:
        zones = (await session.scalars(select(Tenant.timezone).distinct())).all()
    dates = [now.astimezone(ZoneInfo(zone)).date() for zone in zones]
    return min(dates) if dates else now.date()


async def run_jobs(
    *, sql: SqlClient, jobs: Sequence[PeriodicJob] = DEFAULT_JOBS, now: datetime | None = None
) -> CycleReport:
    """Run each available job in its own transaction; one failing job does not stop the others."""
    now = now or utcnow()
    report = CycleReport()
    today: date | None = None
    for job in jobs:
        function = _resolve(job)
        if function is None:
            report.jobs_skipped.append(job.name)
            continue
        if job.clock_argument == "today":
            today = today or await earliest_local_date(sql=sql, now=now)
            clock: dict[str, Any] = {"today": today}
        else:
            clock = {"now": now}
        try:
            async with sql.session(write=True) as session:
                await function(session=session, **clock)
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
) -> CycleReport:
    """One cycle: the periodic jobs (which may queue messages), then a dispatch of everything due."""
    report = await run_jobs(sql=sql, jobs=jobs, now=now) if with_jobs else CycleReport()
    report.dispatch = await notification_controller.dispatch_due(
        sql=sql, smtp=smtp, policy=config.policy, now=now, random=random
    )
    return report


async def run_worker(
    *,
    sql: SqlClient,
    smtp: SmtpClient,
    config: WorkerConfig,
    stop: asyncio.Event,
    jobs: Sequence[PeriodicJob] = DEFAULT_JOBS,
) -> None:
    """Loop until `stop` is set: dispatch every poll interval, jobs every jobs interval; errors never end it."""
    log.info("worker started: dispatch every %gs, jobs every %gs", config.poll_seconds, config.jobs_seconds)
    next_jobs_at = time.monotonic()
    while not stop.is_set():
        with_jobs = time.monotonic() >= next_jobs_at
        if with_jobs:
            next_jobs_at = time.monotonic() + config.jobs_seconds
        try:
            report = await run_cycle(sql=sql, smtp=smtp, config=config, jobs=jobs, with_jobs=with_jobs)
            if report.dispatch and report.dispatch.claimed:
                log.info("dispatch: %s", report.dispatch)
        except Exception:  # the database or a job is down; try again next round
            log.exception("worker cycle failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=config.poll_seconds)
    log.info("worker stopped")


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

"""Prometheus metrics: per-process request series and database-wide gauges read at scrape time."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool

from clients.sql_client import SqlClient
from models.billing_model import BillingRun
from models.notification_model import Notification
from models.payment_model import Payment

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request latency buckets (seconds): a bcrypt login sits near 0.25, a bill run page near 1.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR: set (and emptied at deploy) when hypercorn runs several workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Fixed:
    """A collector that yields metric families computed before the scrape (from async database reads)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        """The families, as they were read."""
        return iter(self.families)


class Metrics:
    """The app's request counter and latency histogram, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cuponera_http_requests", "HTTP requests by route rule, method and status.",
            ("route", "method", "status"), registry=self.registry,
        )
        self.latency = Histogram(
            "cuponera_http_request_duration_seconds", "HTTP request latency by route rule and method.",
            ("route", "method"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )

    def observe(self, *, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    async def render(self, sql: SqlClient, *, now: datetime) -> bytes:
        """The text exposition: request series (this process, or every worker in multiprocess mode) and gauges."""
        registry = CollectorRegistry()
        directory = multiprocess_dir()
        if directory:
            MultiProcessCollector(registry, path=directory)
            families: list[Metric] = []
        else:
            families = list(self.registry.collect())
        async with sql.session_scope() as session:
            families += await database_families(session, now=now)
        families += pool_families(sql)
        registry.register(_Fixed(families))
        return generate_latest(registry)


async def database_families(session: AsyncSession, *, now: datetime) -> list[Metric]:
    """Outbox depth and oldest pending age, running bill runs' progress, payment outcomes (all tenants)."""
    outbox = GaugeMetricFamily("cuponera_outbox_messages", "Outbox messages by delivery status.", labels=["status"])
    counts = dict((await session.execute(select(Notification.status, func.count()).group_by(Notification.status))).all())
    for status in ("pending", "sending", "sent", "failed"):
        outbox.add_metric([status], counts.get(status, 0))

    oldest = await session.scalar(
        select(func.min(Notification.created_at)).where(Notification.status.in_(("pending", "sending")))
    )
    age = GaugeMetricFamily(
        "cuponera_outbox_oldest_pending_age_seconds", "Age of the oldest undelivered message (0 when none)."
    )
    age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)

    runs = GaugeMetricFamily(
        "cuponera_billing_run_contracts", "Contracts processed so far by each running bill run, by outcome.",
        labels=["run_id", "tenant_id", "period", "outcome"],
    )
    running = (await session.scalars(select(BillingRun).where(BillingRun.status == "running").order_by(BillingRun.id))).all()
    for run in running:
        for outcome in ("billed", "skipped", "estimated", "flagged", "failed"):
            runs.add_metric([str(run.id), str(run.tenant_id), run.period, outcome], getattr(run, outcome))
    running_count = GaugeMetricFamily("cuponera_billing_runs_running", "Bill runs in progress.")
    running_count.add_metric([], len(running))
    done = GaugeMetricFamily(
        "cuponera_billing_run_progress_contracts", "Contracts done and in all, of each running bill run.",
        labels=["run_id", "tenant_id", "period", "of"],
    )
    for run in running:
        done.add_metric([str(run.id), str(run.tenant_id), run.period, "done"], run.contracts_done)
        if run.contracts_total is not None:
            done.add_metric([str(run.id), str(run.tenant_id), run.period, "total"], run.contracts_total)
    queued = GaugeMetricFamily("cuponera_billing_runs_queued", "Bill runs waiting for a worker (none for long: workers are up).")
    queued.add_metric([], await session.scalar(select(func.count(BillingRun.id)).where(BillingRun.status == "queued")) or 0)

    payments = GaugeMetricFamily(
        "cuponera_payments", "Payments ever recorded, by channel and outcome (use rate() on it).",
        labels=["channel", "status"],
    )
    rows = await session.execute(select(Payment.channel, Payment.status, func.count()).group_by(Payment.channel, Payment.status))
    for channel, status, count in rows.all():
        payments.add_metric([channel, status], count)
    return [outbox, age, runs, running_count, done, queued, payments]


def pool_families(sql: SqlClient) -> list[Metric]:
    """Connections checked out and pool size for this process's engines (read and, on SQLite, write)."""
    in_use = GaugeMetricFamily("cuponera_db_pool_checked_out", "Database connections in use by this process.", labels=["engine"])
    size = GaugeMetricFamily("cuponera_db_pool_size", "Database pool size of this process.", labels=["engine"])
    engines = {"main": sql.engine}
    if sql.write_engine is not sql.engine:
        engines["write"] = sql.write_engine
    for name, engine in engines.items():
        pool = engine.sync_engine.pool
        if isinstance(pool, QueuePool):
            in_use.add_metric([name], pool.checkedout())
            size.add_metric([name], pool.size())
    return [in_use, size]

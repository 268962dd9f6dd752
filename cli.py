"""CLI commands (`.venv/bin/quart --app app <command>`): each parses its options and calls one controller."""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import click
from quart.cli import ScriptInfo
from sqlalchemy.ext.asyncio import AsyncSession

from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from config import Settings
from controllers import (
    auth_controller,
    billing_run_controller,
    collection_controller,
    coupon_controller,
    demo_controller,
    holiday_controller,
    invoice_controller,
    notification_controller,
    tenant_controller,
    user_controller,
    worker_controller,
)
from controllers.errors import DomainError
from domain.country_packs import COUNTRY_PACKS
from domain.coupon_codes import gln_is_valid
from models.base_model import utcnow
from models.billing_model import BillingRun

T = TypeVar("T")


def _settings() -> Settings:
    """The settings of the app this command runs for (the one `--app` names, or a test's)."""
    app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    return app.extensions["cuponera"].settings


def worker_config(settings: Settings) -> worker_controller.WorkerConfig:
    """The worker's intervals and delivery policy from the NOTIFY_* and WORKER_* settings."""
    return worker_controller.WorkerConfig(
        poll_seconds=settings.NOTIFY_POLL_SECONDS,
        jobs_seconds=settings.WORKER_JOBS_SECONDS,
        bill_runs=worker_controller.BillRunPolicy(
            batch_size=settings.BILLING_RUN_BATCH_SIZE,
            stale_after=timedelta(seconds=settings.BILLING_RUN_STALE_SECONDS),
        ),
        policy=notification_controller.DeliveryPolicy(
            base_seconds=settings.NOTIFY_RETRY_BASE_SECONDS,
            max_attempts=settings.NOTIFY_MAX_ATTEMPTS,
            batch_size=settings.NOTIFY_BATCH_SIZE,
            send_concurrency=settings.NOTIFY_SEND_CONCURRENCY,
            lease=timedelta(seconds=settings.NOTIFY_LEASE_SECONDS),
            public_base_url=settings.PUBLIC_BASE_URL,
        ),
    )


def _run_with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one async unit of CLI work on a fresh engine and session; a domain error is a clean CLI error."""
    settings = _settings()

    async def runner() -> T:
        sql = SqlClient(**settings.sql_options)
        try:
            async with sql.session_scope(write=True) as session:
                return await work(session)
        finally:
            await sql.dispose()

    try:
        return asyncio.run(runner())
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc


# Bounds the API would also refuse: a batch holds at least one contract; holiday years the calendar library covers.
BATCH_SIZE = click.IntRange(min=1)
HOLIDAY_YEARS = click.IntRange(holiday_controller.FIRST_YEAR, holiday_controller.LAST_YEAR)


def _email(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """The same email check as the API's (exit status 2 and a line naming --email otherwise)."""
    if not auth_controller.email_looks_valid(value):
        raise click.BadParameter(f"{value!r} is not an email address.")
    return value


@click.command("create-user")
@click.option("--email", required=True, callback=_email, help="Login email.")
@click.option("--role", required=True, type=click.Choice(["customer", "operator", "admin"]))
@click.option("--full-name", default="", help="Display name.")
@click.option("--tenant", "tenant_code", default=None, help="Tenant code (default tenant if omitted).")
@click.option("--customer-id", type=click.IntRange(min=1), default=None, help="The customer record a customer login sees.")
def create_user_command(email: str, role: str, full_name: str, tenant_code: str | None, customer_id: int | None) -> None:
    """Create a login. The password is read from stdin (piped) or a hidden prompt, never an argument."""
    if role == "customer" and customer_id is None:
        raise click.BadParameter("a customer login must name its customer record.", param_hint="'--customer-id'")
    if role != "customer" and customer_id is not None:
        raise click.BadParameter("only a customer login is linked to a customer.", param_hint="'--customer-id'")
    rounds = _settings().BCRYPT_ROUNDS
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise click.ClickException("The passwords differ.")
    else:
        password = sys.stdin.readline().rstrip("\r\n")

    async def work(session: AsyncSession) -> str:
        tenant = await tenant_controller.resolve_public_tenant(session=session, code=tenant_code)
        user = await user_controller.create_user(
            session=session,
            tenant=tenant,
            email=email,
            password=password,
            role=role,
            full_name=full_name,
            customer_id=customer_id,
            rounds=rounds,
        )
        return f"created {user.role} {user.email} (id {user.id}) in tenant {tenant.code}"

    click.echo(_run_with_session(work))


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load demo data once (when DEMO_DATA is on) and print the demo logins."""
    settings = _settings()
    if not settings.demo_data:
        click.echo("DEMO_DATA is off; no demo data loaded.")
        return

    async def work(session: AsyncSession) -> list[str]:
        return await demo_controller.seed_demo(
            session=session,
            var_dir=settings.VAR_DIR,
            rounds=settings.BCRYPT_ROUNDS,
        )

    for line in _run_with_session(work):
        click.echo(line)


TENANT_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


def _tenant_code(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A tenant code as clients send it in X-Tenant-ID: 2-40 lowercase letters, digits and dashes."""
    if not TENANT_CODE.match(value):
        raise click.BadParameter("use 2-40 lowercase letters, digits and dashes.")
    return value


@click.command("create-tenant")
@click.option("--code", required=True, callback=_tenant_code, help="The code clients send in X-Tenant-ID.")
@click.option("--name", required=True, help="The utility's name, as customers see it.")
@click.option("--country", required=True, type=click.Choice(sorted(COUNTRY_PACKS), case_sensitive=False),
              help="Country pack: currency, time zone, locale, ID types, holidays, PQR term.")
@click.option("--gln", required=True, help="The GS1 GLN printed in the coupon barcode (13 digits).")
@click.option("--legal-id", default="", help="The company's tax id (NIT, RUT or CNPJ by country).")
@click.option("--address", default="", help="The company's address for documents.")
def create_tenant_command(code: str, name: str, country: str, gln: str, legal_id: str, address: str) -> None:
    """Create a tenant from its country pack, with this year's and next year's public holidays."""
    if not gln_is_valid(gln):
        raise click.BadParameter("13 digits ending in the GS1 check digit.", param_hint="'--gln'")

    async def work(session: AsyncSession) -> str:
        tenant = await tenant_controller.create_tenant(
            session=session, code=code, name=name, country=country, gln=gln, legal_id=legal_id, address=address
        )
        return (
            f"created tenant {tenant.code} ({tenant.country}, {tenant.currency}, {tenant.timezone}, {tenant.locale}; "
            f"PQR term {tenant.pqr_answer_business_days} business days)"
        )

    click.echo(_run_with_session(work))


@click.command("load-holidays")
@click.option("--year", "years", type=HOLIDAY_YEARS, multiple=True, required=True, help="Year to load; repeatable.")
@click.option("--tenant", "tenant_code", default=None, help="Tenant code (default tenant if omitted).")
def load_holidays_command(years: tuple[int, ...], tenant_code: str | None) -> None:
    """Add the tenant's country's public holidays for the given years (idempotent)."""

    async def work(session: AsyncSession) -> str:
        tenant = await tenant_controller.resolve_public_tenant(session=session, code=tenant_code)
        added = await holiday_controller.load_country_holidays(
            session=session, tenant_id=tenant.id, country=tenant.country, years=years
        )
        return f"added {added} holidays to tenant {tenant.code}"

    click.echo(_run_with_session(work))


@click.command("expire-coupons")
def expire_coupons_command() -> None:
    """Expire active coupons past their expiry and queue the coupon_expired emails."""

    async def work(session: AsyncSession) -> int:
        return await coupon_controller.expire_coupons(session=session, now=utcnow())

    click.echo(f"expired {_run_with_session(work)} coupons")


@click.command("create-bank-key")
@click.option("--tenant", "tenant_code", required=True, help="Tenant code.")
@click.option("--name", required=True, help="Which bank (shown to operators).")
def create_bank_key_command(tenant_code: str, name: str) -> None:
    """Create a bank API key for POST /api/v1/collections; the key is printed once, only its hash is kept."""

    async def work(session: AsyncSession) -> str:
        tenant = await tenant_controller.get_tenant_by_code(session=session, code=tenant_code)
        key, raw_key = await collection_controller.create_bank_key(session=session, tenant=tenant, name=name)
        return f"created bank key {key.id} ({key.name}) for tenant {tenant.code}; store it now, it is not shown again:\n{raw_key}"

    click.echo(_run_with_session(work))


@click.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs and one dispatch, then exit (tests, cron).")
def worker_command(once: bool) -> None:
    """Run queued bill runs, send queued notifications and run the periodic jobs until SIGINT/SIGTERM."""
    settings = _settings()

    async def runner() -> None:
        sql = SqlClient(**settings.sql_options)
        smtp = SmtpClient(settings.smtp)
        try:
            if once:
                config = worker_config(settings)
                runs = await worker_controller.run_bill_runs(sql=sql, policy=config.bill_runs)
                report = await worker_controller.run_cycle(sql=sql, smtp=smtp, config=config)
                finished = f"; bill runs: {', '.join(map(str, runs))}" if runs else ""
                click.echo(f"jobs run: {', '.join(report.jobs_run) or 'none'}; dispatch: {report.dispatch}{finished}")
                return
            stop = asyncio.Event()
            worker_controller.stop_on_signals(stop)
            await worker_controller.run_worker(sql=sql, smtp=smtp, config=worker_config(settings), stop=stop)
        finally:
            await sql.dispose()

    asyncio.run(runner())


@click.command("bill-run")
@click.option("--period", required=True, help="The period to bill, YYYY-MM.")
@click.option("--tenant", "tenant_code", default=None, help="Tenant code (default tenant if omitted).")
@click.option("--batch-size", default=billing_run_controller.DEFAULT_BATCH_SIZE, show_default=True, type=BATCH_SIZE)
def bill_run_command(period: str, tenant_code: str | None, batch_size: int) -> None:
    """Bill every active contract for a period, with a progress bar; safe to re-run after a crash."""
    with click.progressbar(length=0, label=f"Billing {period}", show_pos=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        async def work(session: AsyncSession) -> BillingRun:
            tenant = await tenant_controller.resolve_public_tenant(session=session, code=tenant_code)
            return await billing_run_controller.run_period(
                session=session, tenant=tenant, period=period, batch_size=batch_size, on_progress=progress
            )

        run = _run_with_session(work)
    click.echo(
        f"run {run.id} {run.period} {run.status}: billed {run.billed}, skipped {run.skipped}, "
        f"estimated {run.estimated}, flagged {run.flagged}, failed {run.failed}"
    )


@click.command("mark-overdue")
def mark_overdue_command() -> None:
    """Move issued invoices past their due date (in each tenant's time zone) to overdue."""

    async def work(session: AsyncSession) -> int:
        return await invoice_controller.mark_overdue(session=session)

    click.echo(f"{_run_with_session(work)} invoices are now overdue")


COMMANDS: tuple[click.Command, ...] = (
    create_user_command,
    seed_demo_command,
    create_tenant_command,
    load_holidays_command,
    expire_coupons_command,
    create_bank_key_command,
    worker_command,
    bill_run_command,
    mark_overdue_command,
)

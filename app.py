"""The app factory: the only place that wires settings, clients, blueprints, errors and CLI commands."""

from __future__ import annotations

import asyncio
import getpass
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import click
from quart import Quart, Request, g, has_request_context
from quart_auth import QuartAuth
from quart_cors import cors
from quart_rate_limiter import RateLimiter
from quart_schema import Info, QuartSchema
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import PaymentGateway, SandboxGateway
from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from config import Settings, load_settings
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
    worker_controller,
)
from controllers.errors import DomainError
from models.base_model import utcnow
from models.billing_model import BillingRun
from routes import (
    auth_routes,
    billing_run_routes,
    collection_routes,
    contract_routes,
    coupon_routes,
    customer_routes,
    health_routes,
    invoice_routes,
    lookup_routes,
    me_account_routes,
    meter_routes,
    notification_routes,
    password_reset_routes,
    payment_routes,
    pqr_routes,
    reading_routes,
    registration_routes,
    tariff_routes,
    tenant_routes,
    transaction_routes,
)
from routes.common import close_request_session
from routes.errors import MalformedJson, register_error_handlers
from routes.openapi import CuponeraOpenAPIProvider, IdConverter
from routes.security import CSRF_HEADER, REQUEST_ID_HEADER, install_security

T = TypeVar("T")

API_VERSION = "1.0.0"
MAX_BODY_BYTES = 1024 * 1024


@dataclass
class AppServices:
    """Clients and policies created at startup and handed to controllers by the routes."""

    settings: Settings
    sql: SqlClient | None
    dummy_hash: str
    lockout_policy: auth_controller.LockoutPolicy
    smtp: SmtpClient | None = None
    worker: worker_controller.BackgroundWorker | None = None
    payment_gateway: PaymentGateway | None = None


class CuponeraRequest(Request):
    """A request whose malformed JSON body becomes a 400 problem, not an HTML page."""

    def on_json_loading_failed(self, error: Exception) -> Any:
        """Raise our own BadRequest subclass so the error handler can name it."""
        raise MalformedJson(description="The request body is not valid JSON.")

    async def get_json(self, *args: Any, **kwargs: Any) -> Any:
        """Parse the JSON body; bytes that are not UTF-8 are malformed JSON too, not a crash."""
        try:
            return await super().get_json(*args, **kwargs)
        except UnicodeDecodeError as exc:
            raise MalformedJson(description="The request body is not valid UTF-8 JSON.") from exc


class RequestIdFilter(logging.Filter):
    """Stamp every log record with the request id, when there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` to the record."""
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(level: str) -> None:
    """One console handler with the request id in every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_cuponera", False)]
    handler._cuponera = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())


def create_app(config: Mapping[str, Any] | None = None) -> Quart:
    """Build the Quart app: defaults, then the environment, then `config` overrides."""
    settings = load_settings(config)
    configure_logging(settings.LOG_LEVEL)

    app = Quart(__name__)
    app.request_class = CuponeraRequest
    app.secret_key = settings.SECRET_KEY
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        QUART_AUTH_COOKIE_NAME="cuponera_session",
        QUART_AUTH_COOKIE_SECURE=settings.cookie_secure,
        QUART_AUTH_COOKIE_SAMESITE=settings.COOKIE_SAMESITE,
        QUART_AUTH_COOKIE_HTTP_ONLY=True,
        QUART_AUTH_DURATION=settings.SESSION_HOURS * 3600,
        QUART_AUTH_SALT="cuponera.session",
        QUART_SCHEMA_CONVERSION_PREFERENCE="pydantic",
        # JSON mode: dates and datetimes leave as ISO 8601 and Decimals as strings, not HTTP dates and floats.
        QUART_SCHEMA_PYDANTIC_DUMP_OPTIONS={"mode": "json"},
    )
    services = AppServices(
        settings=settings,
        sql=None,
        dummy_hash=auth_controller.make_dummy_hash(settings.BCRYPT_ROUNDS),
        lockout_policy=auth_controller.LockoutPolicy(
            threshold=settings.LOCKOUT_THRESHOLD,
            window=timedelta(minutes=settings.LOCKOUT_WINDOW_MINUTES),
            lock_for=timedelta(minutes=settings.LOCKOUT_MINUTES),
        ),
    )
    app.extensions["cuponera"] = services

    install_security(app)
    QuartAuth(app)
    QuartSchema(
        app,
        info=Info(title="Cuponera API", version=API_VERSION, description="Utility billing and self-service."),
        openapi_provider_class=CuponeraOpenAPIProvider,
        security_schemes={
            "session": {"type": "apiKey", "in_": "cookie", "name": "cuponera_session"},
            "csrf": {"type": "apiKey", "in_": "header", "name": CSRF_HEADER},
            "bankApiKey": {"type": "http", "scheme": "bearer"},
        },
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # "Núñez", not "N\u00fa\u00f1ez"
    RateLimiter(app, enabled=settings.RATE_LIMIT_ENABLED)
    if settings.CORS_ORIGINS:
        app = cors(
            app,
            allow_origin=list(settings.CORS_ORIGINS),
            allow_credentials=True,
            allow_headers=["Content-Type", CSRF_HEADER, "Idempotency-Key", "X-Tenant-ID", REQUEST_ID_HEADER],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    register_error_handlers(app)
    app.url_map.converters["int"] = IdConverter

    for blueprint in (
        health_routes.bp,
        tenant_routes.bp,
        auth_routes.bp,
        registration_routes.bp,
        customer_routes.bp,
        contract_routes.bp,
        meter_routes.bp,
        reading_routes.bp,
        me_account_routes.bp,
        password_reset_routes.bp,
        notification_routes.bp,
        pqr_routes.bp,
        lookup_routes.bp,
        coupon_routes.bp,
        payment_routes.bp,
        collection_routes.bp,
        transaction_routes.bp,
        tariff_routes.bp,
        billing_run_routes.bp,
        invoice_routes.bp,
    ):
        app.register_blueprint(blueprint)

    @app.before_serving
    async def open_clients() -> None:
        services.sql = SqlClient(settings.DATABASE_URL, schema=settings.DATABASE_SCHEMA)
        services.smtp = SmtpClient(settings.smtp)
        # Only the sandbox exists today; a real gateway implementing PaymentGateway goes here.
        services.payment_gateway = SandboxGateway(webhook_secret=settings.payment_webhook_secret)
        if settings.worker_in_process:
            services.worker = worker_controller.BackgroundWorker.start(
                sql=services.sql, smtp=services.smtp, config=worker_config(settings)
            )

    @app.after_serving
    async def close_clients() -> None:
        if services.worker is not None:
            await services.worker.stop()
            services.worker = None
        if services.sql is not None:
            await services.sql.dispose()
            services.sql = None

    app.teardown_appcontext(close_request_session)
    _register_cli(app, services)
    return app


def worker_config(settings: Settings) -> worker_controller.WorkerConfig:
    """The worker's intervals and delivery policy from the NOTIFY_* and WORKER_* settings."""
    return worker_controller.WorkerConfig(
        poll_seconds=settings.NOTIFY_POLL_SECONDS,
        jobs_seconds=settings.WORKER_JOBS_SECONDS,
        policy=notification_controller.DeliveryPolicy(
            base_seconds=settings.NOTIFY_RETRY_BASE_SECONDS,
            max_attempts=settings.NOTIFY_MAX_ATTEMPTS,
            batch_size=settings.NOTIFY_BATCH_SIZE,
            lease=timedelta(seconds=settings.NOTIFY_LEASE_SECONDS),
            public_base_url=settings.PUBLIC_BASE_URL,
        ),
    )


def _run_with_session(services: AppServices, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one async unit of CLI work on a fresh engine and session; a domain error is a clean CLI error."""

    async def runner() -> T:
        sql = SqlClient(services.settings.DATABASE_URL, schema=services.settings.DATABASE_SCHEMA)
        try:
            async with sql.session_scope(write=True) as session:
                return await work(session)
        finally:
            await sql.dispose()

    try:
        return asyncio.run(runner())
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc


def _register_cli(app: Quart, services: AppServices) -> None:
    """CLI commands: `.venv/bin/quart --app app <command>`."""

    @app.cli.command("create-user")
    @click.option("--email", required=True, help="Login email.")
    @click.option("--role", required=True, type=click.Choice(["customer", "operator", "admin"]))
    @click.option("--full-name", default="", help="Display name.")
    @click.option("--tenant", "tenant_code", default=None, help="Tenant code (default tenant if omitted).")
    def create_user_command(email: str, role: str, full_name: str, tenant_code: str | None) -> None:
        """Create a login. The password is read from stdin (piped) or a hidden prompt, never an argument."""
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Repeat password: ") != password:
                raise click.ClickException("The passwords differ.")
        else:
            password = sys.stdin.readline().rstrip("\r\n")

        async def work(session: AsyncSession) -> str:
            tenant = await tenant_controller.resolve_public_tenant(session=session, code=tenant_code)
            user = await auth_controller.create_user(
                session=session,
                tenant=tenant,
                email=email,
                password=password,
                role=role,
                full_name=full_name,
                rounds=services.settings.BCRYPT_ROUNDS,
            )
            return f"created {user.role} {user.email} (id {user.id}) in tenant {tenant.code}"

        click.echo(_run_with_session(services, work))

    @app.cli.command("seed-demo")
    def seed_demo_command() -> None:
        """Load demo data once (when DEMO_DATA is on) and print the demo logins."""
        if not services.settings.demo_data:
            click.echo("DEMO_DATA is off; no demo data loaded.")
            return

        async def work(session: AsyncSession) -> list[str]:
            return await demo_controller.seed_demo(
                session=session,
                var_dir=services.settings.VAR_DIR,
                rounds=services.settings.BCRYPT_ROUNDS,
            )

        for line in _run_with_session(services, work):
            click.echo(line)

    @app.cli.command("load-holidays")
    @click.option("--year", "years", type=int, multiple=True, required=True, help="Year to load; repeatable.")
    @click.option("--tenant", "tenant_code", default=None, help="Tenant code (default tenant if omitted).")
    def load_holidays_command(years: tuple[int, ...], tenant_code: str | None) -> None:
        """Add the tenant's country's public holidays for the given years (idempotent)."""

        async def work(session: AsyncSession) -> str:
            tenant = await tenant_controller.resolve_public_tenant(session=session, code=tenant_code)
            added = await holiday_controller.load_country_holidays(
                session=session, tenant_id=tenant.id, country=tenant.country, years=years
            )
            return f"added {added} holidays to tenant {tenant.code}"

        click.echo(_run_with_session(services, work))

    @app.cli.command("expire-coupons")
    def expire_coupons_command() -> None:
        """Expire active coupons past their expiry and queue the coupon_expired emails."""

        async def work(session: AsyncSession) -> int:
            return await coupon_controller.expire_coupons(session=session, now=utcnow())

        click.echo(f"expired {_run_with_session(services, work)} coupons")

    @app.cli.command("create-bank-key")
    @click.option("--tenant", "tenant_code", required=True, help="Tenant code.")
    @click.option("--name", required=True, help="Which bank (shown to operators).")
    def create_bank_key_command(tenant_code: str, name: str) -> None:
        """Create a bank API key for POST /api/v1/collections; the key is printed once, only its hash is kept."""

        async def work(session: AsyncSession) -> str:
            tenant = await tenant_controller.get_tenant_by_code(session=session, code=tenant_code)
            key, raw_key = await collection_controller.create_bank_key(session=session, tenant=tenant, name=name)
            return f"created bank key {key.id} ({key.name}) for tenant {tenant.code}; store it now, it is not shown again:\n{raw_key}"

        click.echo(_run_with_session(services, work))

    @app.cli.command("worker")
    @click.option("--once", is_flag=True, help="Run the jobs and one dispatch, then exit (tests, cron).")
    def worker_command(once: bool) -> None:
        """Send queued notifications and run the periodic jobs until SIGINT/SIGTERM."""
        settings = services.settings

        async def runner() -> None:
            sql = SqlClient(settings.DATABASE_URL, schema=settings.DATABASE_SCHEMA)
            smtp = SmtpClient(settings.smtp)
            try:
                if once:
                    report = await worker_controller.run_cycle(sql=sql, smtp=smtp, config=worker_config(settings))
                    click.echo(f"jobs run: {', '.join(report.jobs_run) or 'none'}; dispatch: {report.dispatch}")
                    return
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, stop.set)
                await worker_controller.run_worker(sql=sql, smtp=smtp, config=worker_config(settings), stop=stop)
            finally:
                await sql.dispose()

        asyncio.run(runner())

    @app.cli.command("bill-run")
    @click.option("--period", required=True, help="The period to bill, YYYY-MM.")
    @click.option("--tenant", "tenant_code", default=None, help="Tenant code (default tenant if omitted).")
    @click.option("--batch-size", default=billing_run_controller.DEFAULT_BATCH_SIZE, show_default=True, type=int)
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

            run = _run_with_session(services, work)
        click.echo(
            f"run {run.id} {run.period} {run.status}: billed {run.billed}, skipped {run.skipped}, "
            f"estimated {run.estimated}, flagged {run.flagged}, failed {run.failed}"
        )

    @app.cli.command("mark-overdue")
    def mark_overdue_command() -> None:
        """Move issued invoices past their due date (in each tenant's time zone) to overdue."""

        async def work(session: AsyncSession) -> int:
            return await invoice_controller.mark_overdue(session=session)

        click.echo(f"{_run_with_session(services, work)} invoices are now overdue")

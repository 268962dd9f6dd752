"""The app factory: the only place that wires settings, clients, blueprints, errors and CLI commands."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from quart import Quart
from quart_auth import QuartAuth
from quart_rate_limiter import RateLimiter
from quart_schema import Info, QuartSchema

import cli
from cli import worker_config
from clients.metrics_client import Metrics
from clients.payment_client import PaymentGateway, SandboxGateway
from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from config import ConfigError, Settings, load_settings
from controllers import auth_controller, worker_controller
from routes import BLUEPRINTS, portal_routes
from routes.body_limits import MAX_REQUEST_BYTES, install_body_limits
from routes.common import close_request_session
from routes.cors import install_cors, is_preflight
from routes.errors import CuponeraRequest, register_error_handlers
from routes.json_logs import configure_logging
from routes.metrics_routes import install_metrics
from routes.openapi import CuponeraOpenAPIProvider, IdConverter
from routes.proxies import install_trusted_proxies
from routes.rate_limits import rate_limit_store
from routes.security import CSRF_HEADER, install_security
from routes.unit_of_work import retry_transient_requests

API_VERSION = "1.0.0"


@dataclass
class AppServices:
    """Clients and policies created at startup and handed to controllers by the routes."""

    settings: Settings
    sql: SqlClient | None
    dummy_hash: str
    lockout_policy: auth_controller.LockoutPolicy
    metrics: Metrics = field(default_factory=Metrics)
    smtp: SmtpClient | None = None
    worker: worker_controller.BackgroundWorker | None = None
    payment_gateway: PaymentGateway | None = None


def create_app(config: Mapping[str, Any] | None = None) -> Quart:
    """Build the Quart app: defaults, then the environment, then `config` overrides."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        # One line naming the setting, no traceback: the operator fixes the environment, not the code.
        raise SystemExit(f"Configuration error: {exc}") from None
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)

    app = Quart(__name__)
    app.request_class = CuponeraRequest
    app.secret_key = settings.SECRET_KEY
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY,
        # The largest any route takes (a bank file); each route is held to its own limit (routes/body_limits.py).
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        QUART_AUTH_COOKIE_NAME="cuponera_session",
        QUART_AUTH_COOKIE_SECURE=settings.cookie_secure,
        QUART_AUTH_COOKIE_SAMESITE=settings.COOKIE_SAMESITE,
        QUART_AUTH_COOKIE_HTTP_ONLY=True,
        QUART_AUTH_DURATION=settings.SESSION_HOURS * 3600,
        QUART_AUTH_SALT="cuponera.session",
        QUART_SCHEMA_CONVERSION_PREFERENCE="pydantic",
        # JSON mode: dates and datetimes leave as ISO 8601 and Decimals as strings, not HTTP dates and floats.
        QUART_SCHEMA_PYDANTIC_DUMP_OPTIONS={"mode": "json"},
        # /docs loads Swagger UI from this app, never a CDN, so it works offline.
        QUART_SCHEMA_SWAGGER_JS_URL=portal_routes.SWAGGER_JS_URL,
        QUART_SCHEMA_SWAGGER_CSS_URL=portal_routes.SWAGGER_CSS_URL,
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

    install_metrics(app)  # first, so its timer starts before any other hook can answer
    install_body_limits(app)
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
    RateLimiter(
        app,
        enabled=settings.RATE_LIMIT_ENABLED,
        store=rate_limit_store(settings.REDIS_URL, settings.RATE_LIMIT_KEY_PREFIX),
        skip_function=is_preflight,
    )
    app = install_cors(app, settings.CORS_ORIGINS)
    install_trusted_proxies(
        app, hops=settings.TRUSTED_PROXY_HOPS, mode=settings.TRUSTED_PROXY_MODE, networks=settings.TRUSTED_PROXIES
    )
    register_error_handlers(app)
    app.url_map.converters["int"] = IdConverter

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.before_serving
    async def open_clients() -> None:
        services.sql = SqlClient(**settings.sql_options)
        await services.sql.check_server_settings()
        services.smtp = SmtpClient(settings.smtp)
        # Only the sandbox exists today; a real gateway implementing PaymentGateway goes here.
        services.payment_gateway = SandboxGateway(webhook_secret=settings.payment_webhook_secret)
        if settings.worker_in_process:
            services.worker = worker_controller.BackgroundWorker.start(
                sql=services.sql, smtp=services.smtp, config=worker_config(settings)
            )
        if settings.ENV != "test":
            # Everything start-up made (modules, models, compiled statements, the app) lives as long
            # as the process: out of the cyclic collector's way, its full collections only walk what
            # requests allocate. Not in tests, which build many apps in one process.
            gc.freeze()

    @app.after_serving
    async def close_clients() -> None:
        if services.worker is not None:
            await services.worker.stop()
            services.worker = None
        if services.sql is not None:
            await services.sql.dispose()
            services.sql = None

    app.teardown_appcontext(close_request_session)
    retry_transient_requests(app)
    for command in cli.COMMANDS:
        app.cli.add_command(command)
    return app

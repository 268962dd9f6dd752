"""Typed configuration read from the environment (and an optional `.env` file)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent
DEFAULT_VAR_DIR = ROOT / "var"
DEVELOPMENT = "development"
T = TypeVar("T")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(RuntimeError):
    """The configuration cannot start the app; the message says what to set."""


def _bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"expected a boolean (true/false), got {value!r}")


def _list(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _origins(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Browser origins, exactly as a browser sends them in `Origin`: scheme://host[:port], nothing more.

    Anything else ("https://x.example/", a path, no scheme) never equals an Origin header, which would
    silently turn CORS off, so it stops start-up instead.
    """
    origins = _list(value)
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in {"http", "https"}
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
            or origin != f"{parts.scheme}://{parts.netloc}"
        ):
            raise ConfigError(
                f"{origin!r} is not an origin; write scheme://host[:port] with no path or trailing slash, "
                "e.g. https://pagos.example.com"
            )
    return origins


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to deliver email; host None means write .eml files to mail_dir."""

    host: str | None
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    mail_from: str = "Cuponera <no-reply@cuponera.local>"
    timeout: float = 10.0
    mail_dir: Path = Path("var/mail")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, var_dir: Path) -> SmtpSettings:
        """Read SMTP_* and MAIL_FROM variables; an empty or missing SMTP_HOST selects the .eml drop."""
        defaults = cls(host=None)
        return cls(
            host=environ.get("SMTP_HOST", "").strip() or None,
            port=_parse_number("SMTP_PORT", environ.get("SMTP_PORT"), defaults.port, int, "an integer"),
            username=environ.get("SMTP_USERNAME") or None,
            password=environ.get("SMTP_PASSWORD") or None,
            starttls=_parse_bool("SMTP_STARTTLS", environ.get("SMTP_STARTTLS"), defaults.starttls),
            mail_from=environ.get("MAIL_FROM", "").strip() or defaults.mail_from,
            timeout=_parse_number("SMTP_TIMEOUT", environ.get("SMTP_TIMEOUT"), defaults.timeout, float, "a number"),
            mail_dir=Path(var_dir) / "mail",
        )


def _parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be true/false/1/0, got {raw!r}")


def _parse_number(name: str, raw: str | None, default: T, kind: Callable[[str], T], what: str) -> T:
    if raw is None or not raw.strip():
        return default
    try:
        return kind(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be {what}, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Every setting the app reads, with its default."""

    ENV: str = DEVELOPMENT
    DATABASE_URL: str = ""
    DATABASE_SCHEMA: str | None = None
    # How long a request waits for the database (a pooled connection; on SQLite the write lock) before
    # it is answered 503 `database_busy` with Retry-After.
    DATABASE_BUSY_TIMEOUT_SECONDS: float = 15.0
    SECRET_KEY: str = ""
    PORT: int = 8000
    CORS_ORIGINS: tuple[str, ...] = ()
    COOKIE_SECURE: bool | None = None
    COOKIE_SAMESITE: str = "Lax"
    DEMO_DATA: bool | None = None
    LOG_LEVEL: str = "INFO"
    VAR_DIR: Path = DEFAULT_VAR_DIR
    SESSION_HOURS: int = 12
    RATE_LIMIT_ENABLED: bool = True
    BCRYPT_ROUNDS: int = 12
    LOCKOUT_THRESHOLD: int = 5
    LOCKOUT_WINDOW_MINUTES: int = 15
    LOCKOUT_MINUTES: int = 15
    # Raw SMTP_* / MAIL_FROM values; `smtp` parses them with SmtpSettings.from_env (one set of defaults).
    SMTP_HOST: str | None = None
    SMTP_PORT: str | None = None
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = field(default=None, repr=False)
    SMTP_STARTTLS: str | None = None
    SMTP_TIMEOUT: str | None = None
    MAIL_FROM: str | None = None
    NOTIFY_RETRY_BASE_SECONDS: float = 30.0
    NOTIFY_POLL_SECONDS: float = 5.0
    NOTIFY_MAX_ATTEMPTS: int = 8
    NOTIFY_BATCH_SIZE: int = 50
    NOTIFY_SEND_CONCURRENCY: int = 8
    NOTIFY_LEASE_SECONDS: float = 900.0
    WORKER_JOBS_SECONDS: float = 60.0
    WORKER_IN_PROCESS: bool | None = None
    # Bill runs queued through the API run in the workers, in batches of this many contracts; a run whose
    # heartbeat (one per committed batch) is older than BILLING_RUN_STALE_SECONDS is resumed by another worker.
    BILLING_RUN_BATCH_SIZE: int = 5_000
    BILLING_RUN_STALE_SECONDS: float = 300.0
    # Empty means this server on its own PORT (http://127.0.0.1:PORT); links in emails start here.
    PUBLIC_BASE_URL: str = ""
    PAYMENT_WEBHOOK_SECRET: str = ""
    # Behind a reverse proxy: how many proxies append to X-Forwarded-For / Forwarded (0: trust no header),
    # which header (legacy: X-Forwarded-*, modern: Forwarded) and, optionally, the only peers allowed to send it.
    TRUSTED_PROXY_HOPS: int = 0
    TRUSTED_PROXY_MODE: str = "legacy"
    TRUSTED_PROXIES: tuple[str, ...] = ()
    # Rate limits shared by every process through Redis when set; in process memory otherwise.
    REDIS_URL: str = field(default="", repr=False)
    RATE_LIMIT_KEY_PREFIX: str = "cuponera"
    # Bearer token for GET /metrics; empty means /metrics answers 404.
    METRICS_TOKEN: str = field(default="", repr=False)
    LOG_FORMAT: str = "text"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_development(self) -> bool:
        """True for a local development or test install."""
        return self.ENV in {DEVELOPMENT, "test"}

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.DATABASE_URL.startswith("sqlite")

    @property
    def sql_options(self) -> dict[str, Any]:
        """The arguments of `SqlClient` for this database."""
        return {"url": self.DATABASE_URL, "schema": self.DATABASE_SCHEMA, "busy_timeout": self.DATABASE_BUSY_TIMEOUT_SECONDS}

    @property
    def cookie_secure(self) -> bool:
        """Secure cookies everywhere but local development, unless set explicitly."""
        return (not self.is_development) if self.COOKIE_SECURE is None else self.COOKIE_SECURE

    @property
    def payment_webhook_secret(self) -> str:
        """The gateway's webhook signing secret; derived from SECRET_KEY when not set (the sandbox)."""
        if self.PAYMENT_WEBHOOK_SECRET:
            return self.PAYMENT_WEBHOOK_SECRET
        return hmac.new(self.SECRET_KEY.encode(), b"cuponera.payment-webhook", hashlib.sha256).hexdigest()

    @property
    def demo_data(self) -> bool:
        """Demo data is on by default for the embedded SQLite database only."""
        return self.is_sqlite if self.DEMO_DATA is None else self.DEMO_DATA

    @property
    def worker_in_process(self) -> bool:
        """Run the notification worker inside the web server: on for development and embedded SQLite, never in tests."""
        if self.WORKER_IN_PROCESS is not None:
            return self.WORKER_IN_PROCESS
        return self.ENV != "test" and (self.ENV == DEVELOPMENT or self.is_sqlite)

    @property
    def smtp(self) -> SmtpSettings:
        """SMTP settings; no SMTP_HOST means .eml files under VAR_DIR/mail."""
        names = ("SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_STARTTLS", "SMTP_TIMEOUT", "MAIL_FROM")
        environ = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        return SmtpSettings.from_env(environ, var_dir=self.VAR_DIR)


_CONVERTERS = {
    "PORT": int,
    "SESSION_HOURS": int,
    "BCRYPT_ROUNDS": int,
    "LOCKOUT_THRESHOLD": int,
    "LOCKOUT_WINDOW_MINUTES": int,
    "LOCKOUT_MINUTES": int,
    "CORS_ORIGINS": _origins,
    "COOKIE_SECURE": _bool,
    "DEMO_DATA": _bool,
    "RATE_LIMIT_ENABLED": _bool,
    "VAR_DIR": Path,
    "SMTP_HOST": str,
    "SMTP_PORT": str,
    "SMTP_USERNAME": str,
    "SMTP_PASSWORD": str,
    "SMTP_STARTTLS": str,
    "SMTP_TIMEOUT": str,
    "MAIL_FROM": str,
    "NOTIFY_RETRY_BASE_SECONDS": float,
    "NOTIFY_POLL_SECONDS": float,
    "NOTIFY_MAX_ATTEMPTS": int,
    "NOTIFY_BATCH_SIZE": int,
    "NOTIFY_SEND_CONCURRENCY": int,
    "NOTIFY_LEASE_SECONDS": float,
    "WORKER_JOBS_SECONDS": float,
    "WORKER_IN_PROCESS": _bool,
    "BILLING_RUN_BATCH_SIZE": int,
    "DATABASE_BUSY_TIMEOUT_SECONDS": float,
    "BILLING_RUN_STALE_SECONDS": float,
    "TRUSTED_PROXY_HOPS": int,
    "TRUSTED_PROXIES": _list,
}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    read_dotenv: bool = True,
) -> Settings:
    """Build the settings: defaults, then `.env` and the environment, then the caller's overrides."""
    if environ is None:
        if read_dotenv:
            from dotenv import dotenv_values

            file_values = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}
            environ = {**file_values, **os.environ}
        else:
            environ = dict(os.environ)
    known = {f.name for f in fields(Settings)} - {"extra"}
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for source in (environ, overrides or {}):
        for key, raw in source.items():
            if key in known:
                convert = _CONVERTERS.get(key)
                try:
                    values[key] = convert(raw) if convert and raw is not None else raw
                except (ValueError, ConfigError) as exc:
                    raise ConfigError(f"{key}: {exc}") from exc
            elif source is not environ:
                extra[key] = raw
    if "ENV" not in values and "APP_ENV" in environ:
        values["ENV"] = environ["APP_ENV"]
    settings = Settings(**values, extra=extra)
    if settings.COOKIE_SAMESITE not in {"Lax", "Strict", "None"}:
        raise ConfigError("COOKIE_SAMESITE must be Lax, Strict or None")
    if not settings.DATABASE_URL:
        db_file = settings.VAR_DIR / "cuponera.db"
        settings = replace(settings, DATABASE_URL=f"sqlite+aiosqlite:///{db_file}")
    if not settings.PUBLIC_BASE_URL:
        settings = replace(settings, PUBLIC_BASE_URL=f"http://127.0.0.1:{settings.PORT}")
    if not settings.SECRET_KEY:
        settings = replace(settings, SECRET_KEY=_development_secret(settings))
    if settings.COOKIE_SAMESITE == "None" and not settings.cookie_secure:
        raise ConfigError("COOKIE_SAMESITE=None needs COOKIE_SECURE=true (browsers reject it otherwise)")
    try:
        settings.smtp  # noqa: B018 - parse once so a bad SMTP_PORT stops startup, not the first email
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if settings.NOTIFY_MAX_ATTEMPTS < 1 or settings.NOTIFY_POLL_SECONDS <= 0 or settings.NOTIFY_BATCH_SIZE < 1:
        raise ConfigError("NOTIFY_MAX_ATTEMPTS and NOTIFY_BATCH_SIZE must be at least 1, NOTIFY_POLL_SECONDS positive")
    if not 1 <= settings.NOTIFY_SEND_CONCURRENCY <= 100:
        raise ConfigError("NOTIFY_SEND_CONCURRENCY must be from 1 to 100 (SMTP connections a worker opens at once)")
    if settings.DATABASE_BUSY_TIMEOUT_SECONDS <= 0:
        raise ConfigError("DATABASE_BUSY_TIMEOUT_SECONDS must be positive")
    if settings.BILLING_RUN_BATCH_SIZE < 1 or settings.BILLING_RUN_STALE_SECONDS <= 0:
        raise ConfigError("BILLING_RUN_BATCH_SIZE must be at least 1 and BILLING_RUN_STALE_SECONDS positive")
    if settings.TRUSTED_PROXY_HOPS < 0 or settings.TRUSTED_PROXY_MODE not in {"legacy", "modern"}:
        raise ConfigError("TRUSTED_PROXY_HOPS must be 0 or more and TRUSTED_PROXY_MODE legacy or modern")
    try:
        for network in settings.TRUSTED_PROXIES:
            ipaddress.ip_network(network, strict=False)
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES: {exc}") from exc
    if settings.LOG_FORMAT not in {"text", "json"}:
        raise ConfigError("LOG_FORMAT must be text or json")
    return settings


def _development_secret(settings: Settings) -> str:
    """In development, generate a key once and keep it under var/; elsewhere refuse to start."""
    if not settings.is_development:
        raise ConfigError(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random value "
            "(for example the output of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
        )
    key_file = settings.VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key

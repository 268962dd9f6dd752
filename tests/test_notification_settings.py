"""Notification and worker settings: SMTP_* parsing, retry policy values and when the worker runs in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from cli import worker_config
from config import ConfigError, load_settings


def test_notification_defaults(tmp_path: Path) -> None:
    settings = load_settings({"VAR_DIR": tmp_path}, environ={})

    assert settings.smtp.host is None
    assert settings.smtp.mail_dir == tmp_path / "mail"
    assert (settings.NOTIFY_RETRY_BASE_SECONDS, settings.NOTIFY_POLL_SECONDS, settings.NOTIFY_MAX_ATTEMPTS) == (30, 5, 8)
    assert settings.PUBLIC_BASE_URL == "http://127.0.0.1:8000"
    config = worker_config(settings)
    assert (config.poll_seconds, config.jobs_seconds) == (5, 60)
    assert (config.policy.base_seconds, config.policy.max_attempts, config.policy.batch_size) == (30, 8, 50)
    assert config.policy.send_concurrency == 8
    assert worker_config(load_settings({"VAR_DIR": tmp_path}, environ={"NOTIFY_SEND_CONCURRENCY": "3"})).policy.send_concurrency == 3


def test_smtp_variables_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {"VAR_DIR": tmp_path},
        environ={
            "SMTP_HOST": "smtp.example.co", "SMTP_PORT": "2525", "SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "s3cret",
            "SMTP_STARTTLS": "false", "MAIL_FROM": "EPM <avisos@epm.example>", "NOTIFY_RETRY_BASE_SECONDS": "10",
        },
    )

    smtp = settings.smtp
    assert (smtp.host, smtp.port, smtp.username, smtp.password, smtp.starttls) == ("smtp.example.co", 2525, "mailer", "s3cret", False)
    assert smtp.mail_from == "EPM <avisos@epm.example>"
    assert settings.NOTIFY_RETRY_BASE_SECONDS == 10
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    "environ",
    [
        {"SMTP_PORT": "smtp"}, {"SMTP_STARTTLS": "maybe"}, {"NOTIFY_MAX_ATTEMPTS": "0"}, {"NOTIFY_SEND_CONCURRENCY": "0"},
        {"NOTIFY_SEND_CONCURRENCY": "101"},
    ],
)
def test_bad_notification_settings_stop_startup(tmp_path: Path, environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings({"VAR_DIR": tmp_path}, environ=environ)


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, True),  # development on the embedded SQLite: `make run` needs one command
        ({"ENV": "test"}, False),
        ({"ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "postgresql+asyncpg://u@h/db"}, False),
        ({"ENV": "production", "SECRET_KEY": "s" * 40}, True),
        ({"ENV": "test", "WORKER_IN_PROCESS": "1"}, True),
        ({"WORKER_IN_PROCESS": "off"}, False),
    ],
)
def test_when_the_worker_runs_inside_the_web_server(tmp_path: Path, environ: dict[str, str], expected: bool) -> None:
    assert load_settings({"VAR_DIR": tmp_path}, environ=environ).worker_in_process is expected


def test_the_app_builds_with_an_smtp_host(tmp_path: Path) -> None:
    app = create_app({"ENV": "test", "SECRET_KEY": "k", "VAR_DIR": tmp_path, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": 2525})

    assert app.extensions["cuponera"].settings.smtp.port == 2525

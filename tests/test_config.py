"""Configuration: defaults, environment, overrides and the production secret rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings


def test_defaults_use_embedded_sqlite_under_var(tmp_path: Path) -> None:
    settings = load_settings({"VAR_DIR": tmp_path}, environ={})
    assert settings.DATABASE_URL == f"sqlite+aiosqlite:///{tmp_path}/cuponera.db"
    assert settings.PORT == 8000
    assert settings.demo_data is True
    assert settings.cookie_secure is False
    assert settings.COOKIE_SAMESITE == "Lax"


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"VAR_DIR": tmp_path}, environ={})
    second = load_settings({"VAR_DIR": tmp_path}, environ={})
    assert len(first.SECRET_KEY) >= 48
    assert first.SECRET_KEY == second.SECRET_KEY
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_missing_secret_outside_development_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_settings({"VAR_DIR": tmp_path}, environ={"ENV": "production"})


def test_environment_values_are_typed(tmp_path: Path) -> None:
    settings = load_settings(
        {"VAR_DIR": tmp_path},
        environ={
            "ENV": "production",
            "SECRET_KEY": "s" * 40,
            "DATABASE_URL": "postgresql+asyncpg://u@h/db",
            "PORT": "9000",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "COOKIE_SECURE": "true",
            "COOKIE_SAMESITE": "None",
            "DEMO_DATA": "0",
        },
    )
    assert settings.PORT == 9000
    assert settings.CORS_ORIGINS == ("https://a.example", "https://b.example")
    assert settings.cookie_secure is True
    assert settings.COOKIE_SAMESITE == "None"
    assert settings.demo_data is False
    assert settings.is_development is False


def test_production_cookies_are_secure_by_default(tmp_path: Path) -> None:
    settings = load_settings({"VAR_DIR": tmp_path}, environ={"ENV": "production", "SECRET_KEY": "s" * 40})
    assert settings.cookie_secure is True
    assert settings.demo_data is True or settings.is_sqlite


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"COOKIE_SECURE": "maybe"}, "COOKIE_SECURE"),
        ({"COOKIE_SAMESITE": "Sometimes"}, "COOKIE_SAMESITE"),
        ({"COOKIE_SAMESITE": "None", "COOKIE_SECURE": "false"}, "COOKIE_SECURE=true"),
    ],
)
def test_bad_values_are_startup_errors(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"VAR_DIR": tmp_path}, environ=environ)


def test_overrides_win_over_environment(tmp_path: Path) -> None:
    settings = load_settings({"VAR_DIR": tmp_path, "PORT": 8123}, environ={"PORT": "9000"})
    assert settings.PORT == 8123


def test_proxy_redis_metrics_and_log_settings_are_typed_and_checked(tmp_path: Path) -> None:
    environ = {"TRUSTED_PROXY_HOPS": "2", "TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8", "REDIS_URL": "redis://127.0.0.1:6379/0",
               "METRICS_TOKEN": "s3cret-token", "LOG_FORMAT": "json"}
    settings = load_settings({"VAR_DIR": tmp_path}, environ=environ)
    assert (settings.TRUSTED_PROXY_HOPS, settings.TRUSTED_PROXIES) == (2, ("10.0.0.0/8", "fd00::/8"))
    assert settings.TRUSTED_PROXY_MODE == "legacy" and settings.LOG_FORMAT == "json"
    assert "s3cret-token" not in repr(settings) and "redis://" not in repr(settings)
    for bad, message in (
        ({"TRUSTED_PROXY_HOPS": "-1"}, "TRUSTED_PROXY_HOPS"),
        ({"TRUSTED_PROXY_MODE": "rfc"}, "TRUSTED_PROXY_MODE"),
        ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_settings({"VAR_DIR": tmp_path}, environ=bad)


def test_public_base_url_follows_port_unless_set(tmp_path) -> None:
    assert load_settings({"VAR_DIR": tmp_path}, environ={"PORT": "8106"}).PUBLIC_BASE_URL == "http://127.0.0.1:8106"
    assert load_settings({"VAR_DIR": tmp_path}, environ={}).PUBLIC_BASE_URL == "http://127.0.0.1:8000"
    chosen = load_settings({"VAR_DIR": tmp_path}, environ={"PORT": "8106", "PUBLIC_BASE_URL": "https://pagos.example.co"})
    assert chosen.PUBLIC_BASE_URL == "https://pagos.example.co"

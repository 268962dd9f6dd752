"""CORS: only configured origins, with credentials; free preflights, readable headers, explained 401s, strict origins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import ROOT, ConfigError, load_settings
from routes.cors import PARTNER_DOCS
from routes.rate_limits import LOGIN_PER_MINUTE
from tests.conftest import ApiClient


@pytest.fixture
def app_overrides() -> dict[str, object]:
    return {"CORS_ORIGINS": "https://partner.example.com"}


async def test_cors_allows_configured_origin_with_credentials(client: ApiClient) -> None:
    response = await client.raw.options(
        "/api/v1/auth/login",
        headers={
            "Origin": "https://partner.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-csrf-token",
        },
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://partner.example.com"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "x-csrf-token" in response.headers["Access-Control-Allow-Headers"].lower()


async def test_cors_ignores_other_origins(client: ApiClient) -> None:
    response = await client.get("/api/v1/tenant", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_preflights_never_count_against_rate_limits(client: ApiClient) -> None:
    preflight = {"Origin": "https://partner.example.com", "Access-Control-Request-Method": "POST"}
    for _ in range(LOGIN_PER_MINUTE + 5):
        response = await client.raw.options("/api/v1/auth/login", headers=preflight)
        assert response.status_code == 200
    # The login limit is untouched: a real attempt is judged on its credentials, not refused with 429.
    login = await client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong password"})
    assert login.status_code == 401
    assert login.headers["RateLimit-Remaining"] == str(LOGIN_PER_MINUTE - 1)


async def test_rate_limit_and_download_headers_are_readable_by_partner_javascript(client: ApiClient) -> None:
    response = await client.get("/api/v1/invoice-lookup?contract_number=404", headers={"Origin": "https://partner.example.com"})
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after", "content-disposition",
            "idempotent-replayed", "x-request-id"} <= exposed


async def test_a_partner_call_without_the_session_cookie_explains_why(client: ApiClient) -> None:
    response = await client.get("/api/v1/auth/me", headers={"Origin": "https://partner.example.com"})
    assert response.status_code == 401
    body = await response.get_json()
    assert body["code"] == "not_authenticated"
    assert "from https://partner.example.com carried no session cookie" in body["detail"]
    assert "backend-for-frontend" in body["detail"]
    assert PARTNER_DOCS in body["detail"]
    assert (ROOT / "README.md").read_text().count("## Partner frontends: same site only") == 1


async def test_a_plain_unauthenticated_call_keeps_the_short_answer(client: ApiClient) -> None:
    for headers in ({}, {"Origin": "https://evil.example.com"}):
        response = await client.get("/api/v1/auth/me", headers=headers)
        assert (await response.get_json())["detail"] == "Log in to use this endpoint."


@pytest.mark.parametrize(
    "origin", ["https://partner.example/", "partner.example", "https://partner.example/app", "https://partner.example?x=1", "*", "ftp://partner.example"]
)
def test_a_malformed_cors_origin_stops_start_up(tmp_path: Path, origin: str) -> None:
    with pytest.raises(ConfigError, match="is not an origin"):
        load_settings({"VAR_DIR": tmp_path}, environ={"CORS_ORIGINS": f"https://ok.example, {origin}"})


def test_well_formed_origins_are_kept(tmp_path: Path) -> None:
    settings = load_settings({"VAR_DIR": tmp_path}, environ={"CORS_ORIGINS": "http://127.0.0.1:8080,https://pagos.example.com"})
    assert settings.CORS_ORIGINS == ("http://127.0.0.1:8080", "https://pagos.example.com")


def test_the_start_up_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    environment = {**os.environ, "CORS_ORIGINS": "https://partner.example/", "VAR_DIR": str(tmp_path), "ENV": "test"}
    result = subprocess.run(
        [sys.executable, "-c", "from app import create_app; create_app()"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        (
            "Configuration error: CORS_ORIGINS: 'https://partner.example/' is not an origin; write scheme://host[:port] "
            "with no path or trailing slash, e.g. https://pagos.example.com"
        )
    ]

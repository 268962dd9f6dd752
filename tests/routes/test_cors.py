"""CORS: only configured origins, with credentials."""

from __future__ import annotations

import pytest

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

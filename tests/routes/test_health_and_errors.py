"""Health probes, problem+json errors, OpenAPI, security headers and CORS."""

from __future__ import annotations

from pathlib import Path

import pytest
from quart import Quart, session
from quart.sessions import NullSession

from app import create_app
from domain.json_limits import json_nesting_exceeds
from tests.conftest import ApiClient, TestDatabase, app_config


async def test_healthz_is_ok(client: ApiClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}


async def test_readyz_checks_the_database(client: ApiClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}


async def test_readyz_is_503_problem_when_database_is_gone(tmp_path: Path, test_database: TestDatabase) -> None:
    broken_url = "postgresql+asyncpg://nobody@127.0.0.1:1/none" if test_database.schema else f"sqlite+aiosqlite:///{tmp_path}/missing/dir/db.sqlite"
    application = create_app(app_config(broken_url, test_database, tmp_path))
    async with application.test_app():
        response = await application.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.content_type == "application/problem+json"
        body = await response.get_json()
        assert body["code"] == "database_unavailable"
        assert body["status"] == 503


async def test_unknown_route_is_404_problem(client: ApiClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    body = await response.get_json()
    assert body["code"] == "not_found"
    assert body["title"] == "Not Found"
    assert body["status"] == 404
    assert "request_id" in body


async def test_wrong_method_is_405_problem_with_allow(client: ApiClient) -> None:
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert response.content_type == "application/problem+json"
    assert (await response.get_json())["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


async def test_malformed_json_is_400_problem(client: ApiClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", data=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert (await response.get_json())["code"] == "malformed_json"


async def test_schema_errors_are_422_with_field_errors(client: ApiClient) -> None:
    response = await client.post("/api/v1/auth/login", json={"email": "not-an-email"})
    assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] == "validation_error"
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"email", "password"}


async def test_oversized_body_is_413_problem(client: ApiClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", data=b"x" * (1024 * 1024 + 10), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert (await response.get_json())["code"] == "payload_too_large"


async def test_unexpected_error_is_500_problem_without_internals(
    app: Quart, client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internals: password=hunter2")

    response = await client.get("/boom", headers={"X-Request-ID": "req-12345678"})
    assert response.status_code == 500
    assert response.content_type == "application/problem+json"
    body = await response.get_json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == "req-12345678"
    assert "hunter2" not in await response.get_data(as_text=True)
    assert response.headers["X-Request-ID"] == "req-12345678"
    record = next(r for r in caplog.records if r.name == "cuponera.errors")
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])
    assert "req-12345678" in record.getMessage()


async def test_security_headers_on_api_responses(client: ApiClient) -> None:
    response = await client.get("/api/v1/tenant")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert len(response.headers["X-Request-ID"]) >= 8


async def test_no_framework_session_is_kept(app: Quart, client: ApiClient) -> None:
    # A login is quart-auth's own cookie: Quart's `session` is the null session (writing to it
    # raises), so no request reads, verifies or sets a `session` cookie, not even a forged one.
    async with app.test_request_context("/api/v1/tenant"):
        assert isinstance(session, NullSession)
        with pytest.raises(RuntimeError):
            session["kept"] = "anything"

    response = await client.get("/api/v1/tenant", headers={"Cookie": "session=forged.cookie.value"})

    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []


async def test_tenant_profile_for_the_frontend(client: ApiClient) -> None:
    response = await client.get("/api/v1/tenant")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["currency"] == "COP"
    assert body["country"] == "CO"
    assert body["timezone"] == "America/Bogota"
    assert body["locale"] == "es"
    assert body["gln"] == "7709998000018"
    assert body["name"].startswith("Empresa de Servicios Públicos")


async def test_unknown_tenant_header_is_404(client: ApiClient) -> None:
    response = await client.get("/api/v1/tenant", headers={"X-Tenant-ID": "nope"})
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "tenant_not_found"


async def test_openapi_documents_routes_and_their_statuses(client: ApiClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = await response.get_json()
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert set(login["responses"]) >= {"200", "400", "401", "422", "423", "429", "500"}
    # Errors share one problem+json response by reference (routes/openapi.py).
    assert login["responses"]["401"] == {"$ref": "#/components/responses/Problem"}
    assert "application/problem+json" in spec["components"]["responses"]["Problem"]["content"]
    logout = spec["paths"]["/api/v1/auth/logout"]["post"]
    assert "content" not in logout["responses"]["204"]
    assert set(logout["responses"]) >= {"204", "401", "403", "500"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert "500" in operation["responses"], f"{method} {path}"


async def test_docs_page_is_served(client: ApiClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in (await response.get_data(as_text=True)).lower()


async def test_body_that_is_not_utf8_is_malformed_json(client: ApiClient) -> None:
    response = await client.post("/api/v1/auth/login", data=b"\xaf\xff", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "malformed_json"


async def test_json_keeps_accents_readable(client: ApiClient) -> None:
    response = await client.get("/api/v1/tenant")
    assert "Públicos" in await response.get_data(as_text=True)


async def test_openapi_declares_the_session_cookie(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert spec["components"]["securitySchemes"]["session"] == {"type": "apiKey", "in": "cookie", "name": "cuponera_session"}
    assert spec["paths"]["/api/v1/auth/me"]["get"]["security"] == [{"session": []}]
    assert "security" not in spec["paths"]["/api/v1/auth/login"]["post"]


async def test_ids_beyond_the_integer_range_are_404_not_500(operator_client: ApiClient) -> None:
    response = await operator_client.get(f"/api/v1/pqrs/{2**63}")
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "pqr_not_found"
    spec = await (await operator_client.get("/openapi.json")).get_json()
    parameter = spec["paths"]["/api/v1/pqrs/{pqr_id}"]["get"]["parameters"][0]
    assert parameter["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    patch = await operator_client.patch(f"/api/v1/pqrs/{2**40}", json={"status": "in_progress"})
    assert patch.status_code == 404


@pytest.mark.parametrize("levels", [33, 1_000, 100_000])
@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/coupons", "/api/v1/payments", "/api/v1/no-such-route"])
async def test_deeply_nested_json_is_a_400_problem_before_parsing(client: ApiClient, path: str, levels: int) -> None:
    for body in (b"[" * levels + b"]" * levels, b'{"email": ' + b'{"a": ' * levels + b"1" + b"}" * levels + b"}"):
        response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.content_type == "application/problem+json"
        assert (await response.get_json())["code"] == "json_too_deep"


async def test_brackets_inside_strings_do_not_count_as_nesting(client: ApiClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": "x@example.com", "password": '[{"\\' * 250}
    )
    assert response.status_code == 401  # parsed and checked as credentials, not refused as too deep


def test_json_nesting_is_measured_without_recursion() -> None:
    assert not json_nesting_exceeds(b"[" * 32 + b"]" * 32, 32)
    assert json_nesting_exceeds(b"[" * 33 + b"]" * 33, 32)
    assert not json_nesting_exceeds(b'["[[[[", {"k": "\\"{{{{"}]', 2)
    assert json_nesting_exceeds(b"{" * 1_000_000, 32)

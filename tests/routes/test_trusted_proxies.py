"""The client address behind a reverse proxy: headers count only under TRUSTED_PROXY_*, for limits and logs alike."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import create_app
from routes.proxies import forwarded_address
from routes.rate_limits import LOGIN_PER_MINUTE
from tests.conftest import TestDatabase, app_config
from tests.served_app import served_in_process


async def login(client: httpx.AsyncClient, forwarded: dict[str, str]) -> int:
    response = await client.post(
        "/api/v1/auth/login", json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong"}, headers=forwarded
    )
    return response.status_code


def login_peers(log: Path) -> list[str]:
    """The client address hypercorn's access log wrote for each login request, in order."""
    return re.findall(r"\[INFO\] (\S+) /api/v1/auth/login$", log.read_text(), re.MULTILINE)


def served(database_url: str, test_database: TestDatabase, tmp_path: Path, log: Path, **settings: Any) -> Any:
    application = create_app(app_config(database_url, test_database, tmp_path, **settings))
    return served_in_process(application, accesslog=str(log), access_log_format="%(h)s %(U)s")


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7:8080", "203.0.113.7"),
        ('"[2001:db8::1]:4711"', "2001:db8::1"),
        ("2001:db8::2", "2001:db8::2"),
        ("unknown", None),
        ("<script>", None),
        ("", None),
    ],
)
def test_forwarded_address_accepts_only_ip_addresses(value: str, address: str | None) -> None:
    assert forwarded_address(value) == address


async def test_without_the_setting_forged_headers_change_nothing(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    async with served(database_url, test_database, tmp_path, log) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        statuses = [
            await login(client, {"X-Forwarded-For": f"198.51.100.{n}", "Forwarded": f"for=192.0.2.{n}"})
            for n in range(LOGIN_PER_MINUTE + 1)
        ]
    assert statuses == [401] * LOGIN_PER_MINUTE + [429]
    assert [peer.rsplit(":", 1)[0] for peer in login_peers(log)] == ["127.0.0.1"] * (LOGIN_PER_MINUTE + 1)


async def test_two_clients_behind_a_trusted_proxy_have_separate_limits_and_addresses(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    async with (
        served(database_url, test_database, tmp_path, log, TRUSTED_PROXY_HOPS=1) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        # The client's own (forged) first value is ignored: one hop back is what the proxy appended.
        first = {"X-Forwarded-For": "10.9.9.9, 203.0.113.7"}
        second = {"X-Forwarded-For": "203.0.113.8"}
        statuses = [await login(client, first) for _ in range(LOGIN_PER_MINUTE + 1)]
        other = await login(client, second)
    assert statuses == [401] * LOGIN_PER_MINUTE + [429]
    assert other == 401
    assert login_peers(log) == ["203.0.113.7:0"] * (LOGIN_PER_MINUTE + 1) + ["203.0.113.8:0"]


async def test_modern_mode_reads_the_forwarded_header(database_url: str, test_database: TestDatabase, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    async with (
        served(database_url, test_database, tmp_path, log, TRUSTED_PROXY_HOPS=1, TRUSTED_PROXY_MODE="modern") as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        assert await login(client, {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}) == 401
        assert await login(client, {"Forwarded": "for=unknown"}) == 401
        assert await login(client, {"X-Forwarded-For": "203.0.113.9"}) == 401
    peers = login_peers(log)
    assert peers[0] == "2001:db8::1:0"
    assert [peer.rsplit(":", 1)[0] for peer in peers[1:]] == ["127.0.0.1", "127.0.0.1"]


async def test_headers_from_a_peer_outside_trusted_proxies_are_ignored(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    settings = {"TRUSTED_PROXY_HOPS": 1, "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.0/16"}
    async with served(database_url, test_database, tmp_path, log, **settings) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        assert await login(client, {"X-Forwarded-For": "203.0.113.7"}) == 401
    assert [peer.rsplit(":", 1)[0] for peer in login_peers(log)] == ["127.0.0.1"]
